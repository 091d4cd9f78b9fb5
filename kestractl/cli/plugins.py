"""`kestractl plugins …`: the task types kestractl has, its own and the installed plugins', and their docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kestractl.cli.output import echo, print_json, table
from kestractl.cli.state import handles_errors

if TYPE_CHECKING:
    from kestractl.tasks.base import Task

app = typer.Typer(
    help="Task types and plugins.  Example: kestractl plugins doc io.kestra.plugin.core.log.Log", no_args_is_help=True
)


def _package(cls: type[Task]) -> tuple[str, str]:
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
    """Every task type (aliases included), with the package that provides it.  Example: kestractl plugins list"""
    from kestractl.tasks import registry

    rows = [[name, *_package(cls)] for name, cls in sorted(registry.all_types(plugins=True).items()) if "$" not in name]
    if as_json:
        print_json([{"type": t, "package": p, "version": v} for t, p, v in rows])
    else:
        table(["type", "package", "version"], rows)


@app.command()
@handles_errors
def doc(type_name: Annotated[str, typer.Argument(help="A task type, e.g. io.kestra.plugin.core.log.Log.")]) -> None:
    """A task type's properties, outputs and an example.

    Example: kestractl plugins doc io.kestra.plugin.core.log.Log"""
    from kestractl.errors import NotFoundError, unknown_type
    from kestractl.tasks import reference, registry

    cls = registry.resolve(type_name)
    if cls is None:
        raise NotFoundError(unknown_type("task", type_name))
    echo(reference.doc(cls))
