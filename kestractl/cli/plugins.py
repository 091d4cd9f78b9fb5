"""`kestractl plugins …`: the task types kestractl has, its own and the installed plugins', and their docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kestractl.cli.output import echo, print_json, table
from kestractl.cli.state import handles_errors

if TYPE_CHECKING:
    from kestractl.tasks.properties import Declared

app = typer.Typer(
    help="Task types and plugins.  Example: kestractl plugins doc io.kestra.plugin.core.log.Log", no_args_is_help=True
)


def _package(cls: type[Declared]) -> tuple[str, str]:
    """The distribution that provides a task class, and its version."""
    from importlib.metadata import packages_distributions, version

    top = cls.__module__.split(".")[0]
    name = (packages_distributions().get(top) or [top])[0]
    try:
        return name, version(name)
    except Exception:  # a module on the path without installed metadata
        return name, "-"


@app.command("list")
@handles_errors
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False) -> None:
    """Every task, polling trigger and plugin condition type (aliases included), with the package that provides
    it.  Example: kestractl plugins list"""
    from kestractl.tasks import registry

    types = sorted(registry.every_type().items())
    rows = [[name, _kind(cls), *_package(cls)] for name, cls in types if "$" not in name]
    if as_json:
        print_json([{"type": t, "kind": k, "package": p, "version": v} for t, k, p, v in rows])
    else:
        table(["type", "kind", "package", "version"], rows)


def _kind(cls: type[Declared]) -> str:
    from kestractl.tasks.base import Task
    from kestractl.triggers.polling import PollingTrigger

    return "task" if issubclass(cls, Task) else "trigger" if issubclass(cls, PollingTrigger) else "condition"


@app.command()
@handles_errors
def doc(type_name: Annotated[str, typer.Argument(help="A task type, e.g. io.kestra.plugin.core.log.Log.")]) -> None:
    """A type's properties, outputs and an example (tasks, polling triggers, plugin conditions).

    Example: kestractl plugins doc io.kestra.plugin.core.log.Log"""
    from kestractl.errors import NotFoundError, unknown_type
    from kestractl.tasks import reference, registry

    cls = registry.resolve_any(type_name)
    if cls is None:
        raise NotFoundError(unknown_type("task", type_name))
    echo(reference.doc(cls))
