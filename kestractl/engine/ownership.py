"""Executors side by side on one database (Kestra's JDBC executors): an owning loop drives only the executions it
claimed (`executions.owner`, its EXECUTOR service instance id), takes over those whose executor stopped
heartbeating, persists decisions only about what it still owns, and may hand its runs to worker processes
(`QueueWorkers`). A loop without an owner (the CLI, a server on its own SQLite file) drives whatever it is given."""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import TYPE_CHECKING

from kestractl.engine.active import Active
from kestractl.engine.executor import Step
from kestractl.engine.loop import Loop, NotOwned, log
from kestractl.model import Execution, State

if TYPE_CHECKING:
    from kestractl.engine.queue_workers import QueueWorkers

# How often an owning loop looks for executions to claim: at once while it finds some, then slower (seconds).
CLAIM_SECONDS = (0.025, 0.5)
# Executions claimed at most per look (Kestra's `poll-size`), so that executors starting together share them.
CLAIM_BATCH = 100


class OwnedLoop(Loop):
    """The loop's ownership of executions; the runner says how much room it has and how it drives one."""

    # The EXECUTOR service instance whose executions this loop drives (None: any), the worker queue it hands runs
    # to, and when it next claims executions.
    owner: str | None = None
    _queue: QueueWorkers | None = None
    _claim_wait, _next_claim = CLAIM_SECONDS[0], 0.0

    @abstractmethod
    def _room_for_claims(self) -> int:
        """How many more executions the loop may take on."""

    def own(self, owner: str, worker_queue: bool) -> None:
        """Drive only the executions `owner` claims, beside other executors on the same database; `worker_queue`:
        runs go to worker processes (`server worker`) instead of this process's threads."""
        from kestractl.engine.queue_workers import QueueWorkers

        self.owner = owner
        if worker_queue:
            self._queue = QueueWorkers(self.store, self._inbox, self._apply_result, owner)
            self._workers = self._queue

    def settle(self) -> None:
        """Stopping an executor whose runs are in worker processes: take no more results, decide on those taken,
        start nothing new (the runs it would have started are recovered by the next owner)."""
        if self._queue is not None:
            self._queue.close()
        self._stopping = True
        while self._dirty or self._inbox.pending():
            self._iterate(idle_wait=False)
        self.logs.flush()

    def release(self) -> None:
        """Stopping cleanly: the executions this loop owns are anyone's again (runs in worker processes go on)."""
        if self.owner is not None:
            self.store.release_executions(self.owner)

    def _reread_owned(self) -> None:
        """The executions this loop owns, as stored (after an outage); their runs in worker processes are those the
        rows say are queued (a job written by a transaction that failed was never queued: its run gets a new
        attempt)."""
        assert self.owner is not None
        if self._queue is not None:
            for run_id in self._queue.forget():
                self._inflight.pop(run_id, None)
        for execution in self.store.load_executions(self.store.owned_executions(self.owner)):
            self._take_over(execution)

    def _claim_executions(self) -> None:
        """Claim the executions nobody drives (created by other processes, or left by an executor that stopped
        heartbeating) while there is room, polling adaptively; those already started are taken over."""
        if self.owner is None or time.monotonic() < self._next_claim:
            return
        room = min(CLAIM_BATCH, self._room_for_claims())
        ids = self.store.claim_executions(self.owner, room) if room > 0 else []
        self._claim_wait = CLAIM_SECONDS[0] if ids else min(CLAIM_SECONDS[1], self._claim_wait * 2)
        self._next_claim = time.monotonic() + self._claim_wait
        for execution in self.store.load_executions(ids):
            self._take_over(execution)

    def _take_over(self, execution: Execution) -> None:
        """Drive a claimed execution; of its runs left running, those with a job or a result in the worker queue
        are waited for, the others (lost with their process) get a new attempt."""
        queue = self._queue
        pending = self.store.pending_task_runs(execution.id) if queue is not None else set()
        self._drive(execution.id, recover=execution.state.current != State.CREATED, fresh=execution, keep=pending)
        if queue is not None and execution.id in self._active:
            for run_id in pending:
                self._inflight[run_id] = queue.adopt(execution.id, run_id)

    def _fenced(self, decided: list[tuple[Active, Step, bool]]) -> list[tuple[Active, Step, bool]]:
        """An owning loop persists only decisions about executions it still owns (their rows held meanwhile):
        judged dead while it was only slow, it forgets those another executor took over."""
        if self.owner is None:
            return decided
        owned = set(self.store.still_owned(self.owner, [active.execution.id for active, _, _ in decided]))
        for active, _, _ in decided:
            if active.execution.id not in owned:
                log.warning("execution %s was taken over by another executor: forgotten here", active.execution.id)
                self._forget(active.execution.id)
        return [decision for decision in decided if decision[0].execution.id in owned]

    def _claim(self, execution_id: str) -> None:
        if self.owner is not None and not self.store.own_executions(self.owner, [execution_id]):
            raise NotOwned(f"execution {execution_id} is driven by another executor")
