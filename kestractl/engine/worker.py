"""Runs one attempt of a runnable task: the timeout, the logs of a failure, the outcome.

It never touches the store or the execution: it gets a `RunContext`, returns an `AttemptResult`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kestractl.errors import KestraError
from kestractl.model import State, iso_duration
from kestractl.tasks.base import ExecutionUpdate, Killed, RunContext, RunnableTask


@dataclass
class AttemptResult:
    state: State
    outputs: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # What a successful task asked of its execution (labels, vars, exit, kill, resume): the runner applies it.
    update: ExecutionUpdate | None = None


def run_attempt(task: RunnableTask, ctx: RunContext) -> AttemptResult:
    timed_out = threading.Event()
    timer = None
    if task.timeout is not None:

        def expire() -> None:
            timed_out.set()
            ctx.stop.set()

        timer = threading.Timer(task.timeout.total_seconds(), expire)
        timer.daemon = True
        timer.start()
    try:
        outputs = task.run(ctx)
        if timed_out.is_set():
            raise Killed()
        state = State.WARNING if ctx.warning else State.SUCCESS
        return AttemptResult(state, outputs, ctx.metrics, ctx.update if ctx.update else None)
    except Killed:
        if timed_out.is_set():
            assert task.timeout is not None
            ctx.error(f"Timeout after {iso_duration(task.timeout)}")
            return AttemptResult(State.FAILED, None, ctx.metrics)
        ctx.log("WARN", "Killed")
        return AttemptResult(State.KILLED, None, ctx.metrics)
    except KestraError as exc:
        ctx.error(exc.message)
        return AttemptResult(State.FAILED, None, ctx.metrics)
    except Exception as exc:  # a task bug must fail the task, not the engine
        ctx.error(f"{type(exc).__name__}: {exc}")
        return AttemptResult(State.FAILED, None, ctx.metrics)
    finally:
        if timer is not None:
            timer.cancel()
        ctx.close()
