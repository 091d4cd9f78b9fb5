"""`kestractl execute NS ID`: create an execution and run it to its end, in this process or on `--server`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kestractl.cli.output import BatchProgress, echo, execution_summary, fancy, log_line, print_json
from kestractl.cli.state import handles_errors, state
from kestractl.model import Execution, State

HELP = (
    "Run a flow now and stream its logs; exit 0 on SUCCESS/WARNING/PAUSED, 1 on FAILED/KILLED, 2 when refused.\n\n"
    "Example: kestractl execute dev hello-world --input greeting=hey"
)


def pairs(values: list[str] | None, option: str) -> list[tuple[str, str]]:
    """`KEY=VALUE` options as pairs; a missing `=` is a usage error."""
    out = []
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got `{item}`", param_hint=option)
        if option == "--label" and key.startswith("system."):
            raise typer.BadParameter(f"labels starting with `system.` are reserved, got `{key}`", param_hint=option)
        out.append((key, value))
    return out


def exit_code(execution: Execution) -> int:
    return 1 if execution.state.current in (State.FAILED, State.KILLED, State.CANCELLED) else 0


def finish(execution: Execution, as_json: bool) -> None:
    """Print the execution (JSON on stdout, or a summary on stderr) and exit with its code."""
    if as_json:
        print_json(execution.to_api())
    else:
        echo(execution_summary(execution), err=True)
    raise typer.Exit(exit_code(execution))


@handles_errors
def execute(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace.")],
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="An input as KEY=VALUE (repeatable; FILE inputs take a local path)."),
    ] = None,
    revision: Annotated[int | None, typer.Option(help="Run this revision (default: the latest).")] = None,
    labels: Annotated[list[str] | None, typer.Option("--label", "-l", help="A label KEY=VALUE (repeatable).")] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the finished execution as JSON on stdout; logs go to stderr."),
    ] = False,
) -> None:
    from kestractl.cli.backend import ExecuteRequest, Watch

    request = ExecuteRequest(namespace, flow_id, dict(pairs(inputs, "--input")), pairs(labels, "--label"), revision)
    progress = BatchProgress() if fancy(sys.stderr) else None
    colour = fancy(sys.stderr if as_json else sys.stdout)
    watch = Watch(lambda entry: log_line(entry, stderr=as_json, colour=colour), progress.update if progress else None)
    try:
        ended = state.backend().execute(request, watch)
    finally:
        if progress is not None:
            progress.close()
    finish(ended, as_json)
