"""`QueueWorkers`: the executor's side of worker processes (`server worker`) sharing its database. A runnable task
run becomes a `worker_jobs` row written in the transaction that persists the decision; a thread of this process
takes the results of the executions this executor owns from `worker_results` (polling adaptively, as Kestra's JDBC
queue: fast while results come, slower when none do) and hands them to the loop's inbox like a local worker's."""

from __future__ import annotations

import functools
import logging
import threading

from kestractl.engine.dispatch import ContextOf, OnResult
from kestractl.engine.inbox import Inbox, Work
from kestractl.engine.worker import AttemptResult
from kestractl.errors import KestraError
from kestractl.model import Attempt, State, StateInfo, TaskRun, utcnow
from kestractl.store import Store
from kestractl.store.queue import WorkerJob, WorkerResult
from kestractl.tasks.base import RunnableTask

# Kestra's `kestra.jdbc.queues` min and max poll intervals (seconds).
MIN_POLL_SECONDS = 0.025
MAX_POLL_SECONDS = 0.5
# Results taken in one read.
POLL_SIZE = 500
log = logging.getLogger("kestractl.engine")


def attempt_result(result: WorkerResult) -> AttemptResult:
    """A worker's result as the loop applies it: its attempt (worker, start and end) stands for the executor's."""
    attempt = Attempt(StateInfo.new(State.RUNNING, result.started or utcnow()), result.worker_id)
    attempt.state.moved(result.state, result.ended)
    return AttemptResult(result.state, result.outputs, result.metrics, None, attempt, result.resubmitted)


class QueueWorkers:
    """Runs go to the `worker_jobs` rows; results come back from `worker_results` rows of `owner`'s executions."""

    # Jobs are written inside the decision's transaction (see `Loop._hand_over`).
    in_transaction = True

    def __init__(self, store: Store, inbox: Inbox, on_result: OnResult, owner: str) -> None:
        self.store, self._inbox, self._on_result, self.owner = store, inbox, on_result, owner
        # Runs handed out whose result has not come back: their execution, and what withdraws them.
        self._stops: dict[str, tuple[str, threading.Event]] = {}
        self._withdrawn: set[str] = set()  # stopped runs whose job was tried once (a claimed one: its worker stops it)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._trouble = ""
        self._thread = threading.Thread(target=self._poll, name="worker-results", daemon=True)
        self._thread.start()

    def send(self, run: TaskRun, task: RunnableTask, context: ContextOf) -> threading.Event:
        """The job row (its context is made by the worker that claims it); the returned event, once set, withdraws
        it while no worker has claimed it (a worker stops a claimed one when it sees its execution killed)."""
        with self.store.transaction():
            self.store.enqueue_worker_jobs([WorkerJob(run, len(run.attempts))], utcnow())
        return self.adopt(run.execution_id, run.id)

    def adopt(self, execution_id: str, run_id: str) -> threading.Event:
        """Wait for the result of a run handed out before (by the executor this one took the execution over from)."""
        stop = threading.Event()
        with self._lock:
            self._stops[run_id] = (execution_id, stop)
        return stop

    def forget(self) -> list[str]:
        """Forget the runs handed out (after an outage the rows say which are still queued, see
        `OwnedLoop._reread_owned`); returns their ids."""
        with self._lock:
            run_ids, self._stops = list(self._stops), {}
            self._withdrawn.clear()
        return run_ids

    def close(self) -> None:
        """Stop taking results (those not taken wait in their rows for whoever owns the executions next)."""
        self._closed.set()
        self._thread.join()

    def _poll(self) -> None:
        wait = MIN_POLL_SECONDS
        while not self._closed.wait(wait):
            try:
                found = self._take()
            except KestraError as exc:  # the database away: said once, tried again later
                if exc.message != self._trouble:
                    log.error("taking worker results: %s", exc.message)
                self._trouble, found = exc.message, False
            wait = MIN_POLL_SECONDS if found else min(MAX_POLL_SECONDS, wait * 2)
        self.store.close()

    def _take(self) -> bool:
        """Withdraw the unclaimed jobs asked to stop, then take the results waiting; whether any came."""
        self._withdraw_stopped()
        results = self.store.take_worker_results(self.owner, POLL_SIZE)
        for result in results:
            self._deliver(result.execution_id, result.task_run_id, attempt_result(result))
        return bool(results)

    def _withdraw_stopped(self) -> None:
        with self._lock:
            stopped = [(r, e) for r, (e, stop) in self._stops.items() if stop.is_set() and r not in self._withdrawn]
            self._withdrawn.update(r for r, _ in stopped)
        for run_id, execution_id in stopped:
            if self.store.cancel_worker_job(run_id):
                self._deliver(execution_id, run_id, AttemptResult(State.KILLED))

    def _deliver(self, execution_id: str, run_id: str, result: AttemptResult) -> None:
        with self._lock:
            self._stops.pop(run_id, None)
            self._withdrawn.discard(run_id)
        self._inbox.put(Work(execution_id, functools.partial(self._on_result, execution_id, run_id, result)))
