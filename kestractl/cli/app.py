"""The `kestractl` command: a thin Typer layer over the engine. This is the one place that turns a
`KestraError` into an exit code and a one-line message.

Typer reads the signature of every command it is given at every start, so `main` builds the app with only
the command on the line (`kestractl execute …` never imports or inspects the `flow` or `server` commands);
help, completion and anything unknown get the whole app, which `app` also is.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from kestractl import __version__
from kestractl.cli.state import state

# Each command → the module of `kestractl.cli` that defines it (a sub-app, or `execute` itself), in help order.
COMMANDS = {
    "flow": "flow",
    "executions": "executions",
    "server": "server",
    "kv": "kv",
    "namespace": "namespace",
    "plugins": "plugins",
    "execute": "execute",
    "test": "test_cmd",
}
# The global options that take a value (the word after them is not a command; see `command_of`).
GLOBAL_OPTIONS = ("--home", "--database", "--storage", "--server", "--user")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kestractl {__version__}")
        raise typer.Exit()


def main_options(
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            help="State folder (default: $KESTRACTL_HOME or the user data dir).",
            envvar="KESTRACTL_HOME",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="postgresql://user:pass@host:5432/db or sqlite:///path (default: the SQLite file in the home).",
            envvar="KESTRACTL_DATABASE_URL",
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Internal storage: file:///folder or s3://bucket/prefix (default: the home's storage folder).",
            envvar="KESTRACTL_STORAGE_URL",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(help="Send the command to this Kestra API instead of the local store.", envvar="KESTRACTL_SERVER"),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="The server's basic auth as user:password.", envvar="KESTRACTL_USER")
    ] = None,
) -> None:
    """Global options."""
    state.home_option, state.database_option, state.server, state.user = home, database, server, user
    state.storage_option = storage


def build(only: str | None = None) -> typer.Typer:
    """The app with every command, or with `only` (one of `COMMANDS`)."""
    app = typer.Typer(
        name="kestractl",
        help="Kestra's workflow engine as one command: deploy, run and inspect Kestra flows locally.\n\n"
        "Example: kestractl flow deploy flows/ && kestractl execute dev hello-world --input greeting=hey",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main_options)
    for name in [only] if only else COMMANDS:
        module = importlib.import_module(f"kestractl.cli.{COMMANDS[name]}")
        if name in ("execute", "test"):  # commands of their own, not groups
            app.command(name, help=module.HELP)(getattr(module, name))
        else:
            app.add_typer(module.app, name=name)
    return app


def command_of(args: list[str]) -> str | None:
    """The command named after the global options, if it is one of ours and no other option comes first."""
    rest = iter(args)
    for arg in rest:
        if arg in GLOBAL_OPTIONS:
            next(rest, None)
        elif not arg.startswith(tuple(f"{option}=" for option in GLOBAL_OPTIONS)):
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    """`app`: the whole app, built when asked for (tests and tools that walk every command)."""
    if name == "app":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return build(command_of(args))(args=args)
    except KeyboardInterrupt:
        sys.exit(130)
