"""`kestractl executions …`: list, show, logs, restart, resume, kill."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kestractl.cli.execute import finish
from kestractl.cli.output import duration, echo, execution_tree, log_line, print_json, state_text, table
from kestractl.cli.state import handles_errors, state
from kestractl.model import LOG_LEVELS, State

if TYPE_CHECKING:
    from kestractl.cli.backend import Watch

app = typer.Typer(
    help="Inspect and control executions.  Example: kestractl executions list --flow hello-world",
    no_args_is_help=True,
)

ExecutionId = Annotated[str, typer.Argument(help="The execution id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the execution as JSON.")]


@app.command("list")
@handles_errors
def list_executions(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow id.")] = None,
    state_filter: Annotated[list[str] | None, typer.Option("--state", help="Only these states (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List executions, newest first.  Example: kestractl executions list --state FAILED"""
    states = [s.upper() for s in state_filter or []]
    unknown = [s for s in states if s not in State.__members__]
    if unknown:
        raise typer.BadParameter(f"unknown state {', '.join(unknown)}; one of {', '.join(State.__members__)}")
    found = state.backend().executions(namespace, flow, states, limit)
    if as_json:
        print_json([e.to_api() for e in found])
        return
    rows = [
        [
            e.id,
            f"{e.namespace}.{e.flow_id}",
            str(e.flow_revision),
            state_text(e.state.current),
            (e.state.to_api()["startDate"] or "")[:19],
            duration(e.state),
        ]
        for e in found
    ]
    table(["ID", "FLOW", "REV", "STATE", "STARTED", "DURATION"], rows)


@app.command()
@handles_errors
def show(execution_id: ExecutionId, as_json: AsJson = False) -> None:
    """Show an execution as a tree of task runs.  Example: kestractl executions show 4wjtkzwVGBM9yKnjm3yv8r"""
    execution = state.backend().execution(execution_id)
    if as_json:
        print_json(execution.to_api())
    else:
        execution_tree(execution)


@app.command()
@handles_errors
def logs(
    execution_id: ExecutionId,
    level: Annotated[str, typer.Option(help="Minimum level: TRACE, DEBUG, INFO, WARN, ERROR.")] = "TRACE",
    task: Annotated[str | None, typer.Option(help="Only this task id.")] = None,
) -> None:
    """Print an execution's logs.  Example: kestractl executions logs 4wjtkzwVGBM9yKnjm3yv8r --level WARN"""
    if level.upper().replace("WARNING", "WARN") not in LOG_LEVELS:
        raise typer.BadParameter(f"unknown level {level}; one of {', '.join(LOG_LEVELS)}", param_hint="--level")
    for entry in state.backend().logs(execution_id, level.upper(), task):
        log_line(entry)


def _watch(as_json: bool) -> Watch:
    """Log lines as they come, on stderr when stdout is for JSON."""
    from kestractl.cli.backend import Watch

    return Watch(lambda entry: log_line(entry, stderr=as_json))


@app.command()
@handles_errors
def restart(execution_id: ExecutionId, as_json: AsJson = False) -> None:
    """Restart a failed execution: failed task runs get a new attempt.  Example: kestractl executions restart ID"""
    finish(state.backend().restart(execution_id, _watch(as_json)), as_json)


@app.command()
@handles_errors
def resume(execution_id: ExecutionId, as_json: AsJson = False) -> None:
    """Resume a PAUSED execution and run it on.  Example: kestractl executions resume ID"""
    finish(state.backend().resume(execution_id, _watch(as_json)), as_json)


@app.command()
@handles_errors
def kill(execution_id: ExecutionId, as_json: AsJson = False) -> None:
    """Kill a running or paused execution (and its subflows).  Example: kestractl executions kill ID"""
    execution = state.backend().kill(execution_id, _watch(as_json))
    if as_json:
        print_json(execution.to_api())
    else:
        echo(f"{execution.id}  {execution.state.current.value}")


@app.command()
@handles_errors
def files(execution_id: ExecutionId) -> None:
    """List an execution's files in internal storage.  Example: kestractl executions files ID"""
    found = state.backend().execution_files(execution_id)
    table(["URI", "BYTES"], [[uri, str(size)] for uri, size in found])


@app.command()
@handles_errors
def file(
    execution_id: ExecutionId,
    uri: Annotated[str, typer.Argument(help="A kestra:/// URI of this execution.")],
    to: Annotated[Path | None, typer.Option("--to", help="Write it to this path instead of stdout.")] = None,
) -> None:
    """Print (or save) one of an execution's files.  Example: kestractl executions file ID kestra:///…/out.csv"""
    data = state.backend().execution_file(execution_id, uri)
    if to is not None:
        to.write_bytes(data)
        echo(f"{len(data)} bytes written to {to}")
    else:
        sys.stdout.buffer.write(data)
