"""Where a runnable task run goes once the executor decided it: the seam between executor and workers.

Today `LocalWorkers`: a thread pool in this process, each result handed back through the loop's inbox. A
worker fleet on a shared database replaces it (the run becomes a row that a worker process claims), the loop
unchanged. Inline runs (tasks that change their execution) never come here: the executor runs them itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from kestractl.engine.inbox import Inbox, Work
from kestractl.engine.variables import snapshot
from kestractl.engine.worker import AttemptResult, run_attempt
from kestractl.model import TaskRun
from kestractl.tasks.base import RunContext, RunnableTask

# What the loop does with a result, inside the loop: (execution id, task run id, result).
OnResult = Callable[[str, str, AttemptResult], None]
# The run's context, made only where the attempt runs in this process (a worker process builds its own).
ContextOf = Callable[[], RunContext]


class Workers(Protocol):
    # Whether runs are handed over inside the transaction that stores the decision (rows), or after it (threads).
    in_transaction: bool

    def send(self, run: TaskRun, task: RunnableTask, context: ContextOf) -> threading.Event:
        """Have the run's attempt run somewhere; its result comes back to the loop. Returns what stops it."""

    def close(self) -> None: ...


class LocalWorkers:
    """Worker threads of this process; results go into the loop's inbox as work about their execution."""

    in_transaction = False

    def __init__(self, inbox: Inbox, on_result: OnResult, threads: int) -> None:
        self._inbox = inbox
        self._on_result = on_result
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker")
        self._running: set[threading.Event] = set()  # what stops each attempt handed over and not ended

    def send(self, run: TaskRun, task: RunnableTask, context: ContextOf) -> threading.Event:
        """`context` is made here, in the loop's thread; the worker reads a snapshot of its variables."""
        execution_id, run_id = run.execution_id, run.id
        ctx = context()
        ctx.variables = snapshot(ctx.variables)

        stop = ctx.stop
        self._running.add(stop)

        def work() -> None:
            try:
                result = run_attempt(task, ctx)
            finally:
                self._running.discard(stop)
            self._inbox.put(Work(execution_id, lambda: self._on_result(execution_id, run_id, result)))

        self._pool.submit(work)
        return stop

    def close(self) -> None:
        """What still runs is asked to stop: the pool's threads are joined when the process exits, and one left
        sleeping (a run the loop no longer waited for) kept a stopped server alive for the rest of its task."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for stop in list(self._running):
            stop.set()
