"""Task type names (current and legacy) → task classes.

Every name Kestra ever accepted for a type resolves here, so old flows deploy unchanged.
Task modules register themselves with `@register`; so do third-party plugins, whose modules are named by the
`kestractl.plugins` entry-point group and imported the first time a flow uses a type the index does not know
(never at the start of a command that does not need them). `resolve` imports only the module that `_index.MODULES`
names for a type (a Log task loads core.py, not the HTTP or DuckDB tasks); `all_types` discovers every
module of this package. `python -m kestractl.tasks.registry` rewrites the index from that discovery, and a
test fails when the two disagree, so a new task module cannot be missed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kestractl.errors import PluginError
from kestractl.tasks._index import MODULES
from kestractl.tasks.base import Task
from kestractl.tasks.properties import Declared

if TYPE_CHECKING:
    from kestractl.triggers.conditions import Condition
    from kestractl.triggers.polling import PollingTrigger

D = TypeVar("D", bound=Declared)
_TYPES: dict[str, type[Declared]] = {}
# kestractl's own polling triggers, by type name → the module that registers them.
TRIGGER_MODULES = {
    "io.kestra.plugin.core.http.Trigger": "kestractl.triggers.http",
    "io.kestra.plugin.fs.http.Trigger": "kestractl.triggers.http",
}
ENTRY_POINTS = "kestractl.plugins"
# Modules of this package that hold no task types.
_SUPPORT = frozenset({"base", "registry", "flowable", "splitter", "reference", "properties"})
INDEX = Path(__file__).with_name("_index.py")
_loaded = False
_plugins_loaded = False


def register(cls: type[D]) -> type[D]:
    """Class decorator: make a task, a polling trigger or a condition reachable by its type name and every alias;
    a name another class already holds is an error naming both (a plugin never silently replaces another's)."""
    for name in (cls.type_name, *cls.aliases):
        held = _TYPES.get(name)
        if held is not None and origin(held) != origin(cls):
            raise PluginError(f"task type `{name}` is registered twice: by {origin(held)} and by {origin(cls)}")
        _TYPES[name] = cls
    return cls


def origin(cls: type[Declared]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_plugins() -> None:
    """Import every installed plugin's module once (its `@register`s fill the registry)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINTS):
        try:
            entry.load()
        except PluginError:
            raise
        except Exception as error:  # a broken plugin is named, not a traceback
            raise PluginError(f"plugin `{entry.name}` ({entry.value}) cannot be loaded: {error}") from error


def _load() -> None:
    global _loaded
    if not _loaded:
        import pkgutil

        import kestractl.tasks as package

        for module in pkgutil.iter_modules(package.__path__):
            if module.name not in _SUPPORT and not module.name.startswith("_"):
                importlib.import_module(f"kestractl.tasks.{module.name}")
        _loaded = True


def resolve(type_name: str) -> type[Task] | None:
    """The task class of a type name, importing the one module that holds it (or the installed plugins, for a
    name kestractl does not have); None for an unknown name."""
    module = MODULES.get(type_name)
    found = _find(type_name, f"kestractl.tasks.{module}" if module else None)
    return found if isinstance(found, type) and issubclass(found, Task) else None


def resolve_trigger(type_name: str) -> type[PollingTrigger] | None:
    """The polling-trigger class of a type name (kestractl's HTTP Trigger, or a plugin's); None otherwise."""
    from kestractl.triggers.polling import PollingTrigger

    found = _find(type_name, TRIGGER_MODULES.get(type_name))
    return found if isinstance(found, type) and issubclass(found, PollingTrigger) else None


def resolve_condition(type_name: str) -> type[Condition] | None:
    """A plugin's condition class (kestractl's own conditions are a table in `triggers.conditions`)."""
    from kestractl.triggers.conditions import Condition

    found = _find(type_name, None)
    return found if isinstance(found, type) and issubclass(found, Condition) else None


def _find(type_name: str, module: str | None) -> type[Declared] | None:
    if type_name not in _TYPES:
        importlib.import_module(module) if module else _load_plugins()
    return _TYPES.get(type_name)


def all_types(plugins: bool = False) -> dict[str, type[Task]]:
    """Every task type name (aliases included) → its class: kestractl's core tasks, and with `plugins` the
    installed plugins' too."""
    _load()
    if plugins:
        _load_plugins()
    tasks = {name: cls for name, cls in _TYPES.items() if issubclass(cls, Task)}
    return {n: c for n, c in tasks.items() if plugins or c.__module__.startswith(f"{__package__}.")}


def every_type() -> dict[str, type[Declared]]:
    """Every name a flow may use (tasks, polling triggers, plugin conditions; aliases included) → its class."""
    all_types(plugins=True)
    for module in set(TRIGGER_MODULES.values()):
        importlib.import_module(module)
    return dict(_TYPES)


def resolve_any(type_name: str) -> type[Declared] | None:
    """The class of a task, polling trigger or plugin condition type name."""
    return resolve(type_name) or resolve_trigger(type_name) or resolve_condition(type_name)


def index_source() -> str:
    """The text of `_index.py` for the types that `all_types` discovers."""
    rows = [f'    "{name}": "{cls.__module__.rpartition(".")[2]}",' for name, cls in sorted(all_types().items())]
    return "\n".join(
        [
            '"""Task type name → the module of `kestractl.tasks` that registers it.',
            "",
            "Generated by `python -m kestractl.tasks.registry`: do not edit.",
            '"""',
            "",
            "MODULES: dict[str, str] = {",
            *rows,
            "}",
            "",
        ]
    )


if __name__ == "__main__":  # run as a script, this file is a second module: the task modules fill the first
    from kestractl.tasks import registry

    INDEX.write_text(registry.index_source())
    sys.stdout.write(f"wrote {INDEX}\n")
