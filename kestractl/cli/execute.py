"""`kestractl execute NS ID`: create an execution and run it to its end in this process."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from kestractl.cli.output import BatchProgress, echo, error, execution_summary, fancy, log_line, print_json
from kestractl.cli.state import handles_errors, state
from kestractl.model import Execution, State

if TYPE_CHECKING:
    from kestractl.store import Store

# How often `execute` copies the WAL into the database (see `_checkpoints`).
CHECKPOINT_SECONDS = 0.25
# Allocations between two looks of the cyclic garbage collector at young objects while `execute` runs (see
# `_fewer_collections`): about what a flow of 5,000 tasks keeps alive (10,000 still made 2 collections per 1,000
# tasks, 3-20 ms each, 5-25% of a task's cost on a loaded machine).
COLLECT_EVERY = 100_000

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
    from kestractl.engine.runner import Runner
    from kestractl.errors import KestraError, ValidationError

    store, storage = state.open(background_checkpoints=True)  # see `_checkpoints`
    progress = BatchProgress() if fancy(sys.stderr) else None
    colour = fancy(sys.stderr if as_json else sys.stdout)
    runner = Runner(
        store,
        storage,
        on_log=lambda entry: log_line(entry, stderr=as_json, colour=colour),
        on_change=progress.update if progress else None,
    )
    try:
        flow = runner.flows.get(namespace, flow_id, revision)
        execution = runner.create_execution(flow, dict(pairs(inputs, "--input")), pairs(labels, "--label"))
    except KestraError as exc:
        raise ValidationError(exc.message, getattr(exc, "problems", None)) from None
    try:
        with _checkpoints(store), _fewer_collections():
            ended = runner.run(execution.id)
    finally:
        runner.close()
        if progress is not None:
            progress.close()
    finish(ended, as_json)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector looks at every young object every COLLECT_EVERY allocations, instead of 700:
    with 700 it went over the executions the runner drives (a window of 1,000 ForEachItem children) again and again,
    15% of the run. The engine's objects are freed by reference counting (an execution and its runner hold no cycle),
    so garbage waits no longer for it; the previous setting is restored after the run."""
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _checkpoints(store: Store) -> Iterator[None]:
    """The WAL is copied into the database on a thread of its own while the execution runs, as in the server:
    a commit that checkpointed itself (every 4 MB of WAL) cost a long flow 10-25% of its time."""
    stop = threading.Event()
    thread = threading.Thread(
        target=store.checkpoint_every, args=(CHECKPOINT_SECONDS, stop, lambda exc: error(exc.message)), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
