"""Runs one attempt of a runnable task: the timeout, the logs of a failure, the outcome.

It never touches the store or the execution: it gets a `RunContext`, returns an `AttemptResult`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kestractl.errors import KestraError
from kestractl.model import Attempt, State, iso_duration
from kestractl.tasks.base import ExecutionUpdate, Killed, RunContext, RunnableTask


@dataclass
class AttemptResult:
    state: State
    outputs: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # What a successful task asked of its execution (labels, vars, exit, kill, resume): the runner applies it.
    update: ExecutionUpdate | None = None
    # The attempt as a worker process ran it (its worker, its dates), to stand for the executor's; with
    # `resubmitted`, the worker died holding it and the run gets a new attempt (see `QueueWorkers`).
    attempt: Attempt | None = None
    resubmitted: bool = False


class _Deadline:
    """The task's `timeout` (rendered first when it is an expression): asks the run to stop once it passes."""

    def __init__(self) -> None:
        self.passed = False  # set by the timer's thread; read once the task returns or stops
        self.duration: timedelta | None = None
        self._timer: threading.Timer | None = None

    def start(self, task: RunnableTask, ctx: RunContext) -> None:
        raw = task.spec.get("timeout")
        self.duration = task.timeout or (ctx.render_duration(raw, "timeout") if raw is not None else None)
        if self.duration is None:
            return

        def expire() -> None:
            self.passed = True
            ctx.stop.set()

        self._timer = threading.Timer(self.duration.total_seconds(), expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def run_attempt(task: RunnableTask, ctx: RunContext) -> AttemptResult:
    deadline = _Deadline()
    try:
        deadline.start(task, ctx)
        outputs = task.run(ctx)
        if deadline.passed:
            raise Killed()
        ctx.publish_files()
        state = State.WARNING if ctx.warning else State.SUCCESS
        return AttemptResult(state, outputs, ctx.metrics, ctx.update if ctx.update else None)
    except Killed:
        if deadline.passed and deadline.duration is not None:
            ctx.error(f"Timeout after {iso_duration(deadline.duration)}")
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
        deadline.cancel()
        ctx.close()
