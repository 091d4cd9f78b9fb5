"""The `kestractl` command: a thin Typer layer over the engine. This is the one place that turns a
`KestraError` into an exit code and a one-line message."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kestractl import __version__
from kestractl.cli import execute as execute_cmd
from kestractl.cli import executions, flow, kv, namespace, server
from kestractl.cli.state import state

app = typer.Typer(
    name="kestractl",
    help="Kestra's workflow engine as one command: deploy, run and inspect Kestra flows locally.\n\n"
    "Example: kestractl flow deploy flows/ && kestractl execute dev hello-world --input greeting=hey",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(flow.app, name="flow")
app.add_typer(executions.app, name="executions")
app.add_typer(server.app, name="server")
app.add_typer(kv.app, name="kv")
app.add_typer(namespace.app, name="namespace")
app.command("execute", help=execute_cmd.HELP)(execute_cmd.execute)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kestractl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            help="State folder (default: $KESTRACTL_HOME or the user data dir).",
            envvar="KESTRACTL_HOME",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options."""
    state.home_option = home


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    try:
        return app(args=argv)
    except KeyboardInterrupt:
        sys.exit(130)
