"""Task type names (current and legacy) → task classes.

Every name Kestra ever accepted for a type resolves here, so old flows deploy unchanged.
Task modules register themselves with `@register`; `resolve` loads them on first use.
"""

from __future__ import annotations

import importlib

from kestractl.tasks.base import Task

_TYPES: dict[str, type[Task]] = {}
_MODULES = (
    "kestractl.tasks.core",
    "kestractl.tasks.flow",
    "kestractl.tasks.scripts",
    "kestractl.tasks.duckdb",
    "kestractl.tasks.foreachitem",
)
_loaded = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task reachable by its type name and every alias."""
    for name in (cls.type_name, *cls.aliases):
        _TYPES[name] = cls
    return cls


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(module)
        _loaded = True


def resolve(type_name: str) -> type[Task] | None:
    _load()
    return _TYPES.get(type_name)
