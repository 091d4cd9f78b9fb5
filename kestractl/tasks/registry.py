"""Task type names (current and legacy) → task classes.

Every name Kestra ever accepted for a type resolves here, so old flows deploy unchanged.
Task modules register themselves with `@register`; `resolve` imports every module of this package on
first use, so a new task module needs no entry anywhere else (modules import heavy libraries lazily).
"""

from __future__ import annotations

import importlib
import pkgutil

from kestractl.tasks.base import Task

_TYPES: dict[str, type[Task]] = {}
# Modules of this package that hold no task types.
_SUPPORT = frozenset({"base", "registry", "flowable", "splitter", "reference"})
_loaded = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task reachable by its type name and every alias."""
    for name in (cls.type_name, *cls.aliases):
        _TYPES[name] = cls
    return cls


def _load() -> None:
    global _loaded
    if not _loaded:
        import kestractl.tasks as package

        for module in pkgutil.iter_modules(package.__path__):
            if module.name not in _SUPPORT and not module.name.startswith("_"):
                importlib.import_module(f"kestractl.tasks.{module.name}")
        _loaded = True


def resolve(type_name: str) -> type[Task] | None:
    _load()
    return _TYPES.get(type_name)


def all_types() -> dict[str, type[Task]]:
    """Every registered name (aliases included) → its class."""
    _load()
    return dict(_TYPES)
