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
from kestractl.engine.loop import POLL_SECONDS, Loop, NotOwned, log
from kestractl.errors import NotFoundError
from kestractl.model import Execution, Flow, State

if TYPE_CHECKING:
    from kestractl.engine.queue_workers import QueueWorkers

# How often an owning loop looks for executions to claim: at once while it finds some, then slower (seconds).
CLAIM_SECONDS = (0.025, 0.5)
# Executions claimed at most per look (Kestra's `poll-size`), so that executors starting together share them.
CLAIM_BATCH = 100
# Subflow ends taken at most per look for the parents this executor owns.
ENDS_BATCH = 500


class OwnedLoop(Loop):
    """The loop's ownership of executions; the runner says how much room it has and how it drives one."""

    # The EXECUTOR service instance whose executions this loop drives (None: any), the worker queue it hands runs
    # to, and when it next claims executions.
    owner: str | None = None
    _queue: QueueWorkers | None = None
    _claim_wait, _next_claim = CLAIM_SECONDS[0], 0.0
    # When the loop next looks for messages (subflow ends, queued executions); parent id -> the children whose
    # ends were recorded on it, their rows dropped when its decision is committed (see `_fenced`).
    _next_poll = 0.0
    _told: dict[str, list[str]]

    @abstractmethod
    def _room_for_claims(self) -> int:
        """How many more executions the loop may take on."""

    @abstractmethod
    def _tell_parent(self, child: Execution) -> bool:
        """Record an ended child on its parent's waiting run (the parent driven here); False: nothing waits."""

    @abstractmethod
    def _dequeue(self, flow: Flow) -> None:
        """Start the flow's oldest QUEUED execution if a concurrency slot is free."""

    def own(self, owner: str, worker_queue: bool) -> None:
        """Drive only the executions `owner` claims, beside other executors on the same database; `worker_queue`:
        runs go to worker processes (`server worker`) instead of this process's threads."""
        from kestractl.engine.queue_workers import QueueWorkers

        self.owner = owner
        self._told = {}
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
        self._told.clear()  # not committed: their rows are read again
        if self._queue is not None:
            for run_id in self._queue.forget():
                self._inflight.pop(run_id, None)
        for execution in self.store.load_executions(self.store.owned_executions(self.owner)):
            self._take_over(execution)

    def _wait_limit(self) -> float:
        """Not past the next claim: executions that only compute end within the decisions that claimed them, and
        then nothing wakes the loop but its own polls (it waited out POLL_SECONDS between claims: 320/s, not 530)."""
        if self.owner is None:
            return super()._wait_limit()
        return max(0.0, min(super()._wait_limit(), self._next_claim - time.monotonic()))

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
        judged dead while it was only slow, it forgets those another executor took over. The ends of children
        whose parent is not driven here become rows for the parent's owner, and the ends recorded on the parents
        decided are dropped, all in the transaction persisting the decisions."""
        if self.owner is None:
            return decided
        parents = {
            a.execution.parent_id or "" for a, _, before in decided if _ends_child(a, before)
        } & self._active.keys()
        ids = {active.execution.id for active, _, _ in decided} | parents
        owned = set(self.store.still_owned(self.owner, sorted(ids)))
        for execution_id in ids - owned:
            log.warning("execution %s was taken over by another executor: forgotten here", execution_id)
            self._forget(execution_id)
        kept = [decision for decision in decided if decision[0].execution.id in owned]
        self._send_ends([active for active, _, before in kept if _ends_child(active, before)])
        told = [child for active, _, _ in kept for child in self._told.pop(active.execution.id, [])]
        if told:
            self.store.drop_subflow_ends(told)
        return kept

    def _send_ends(self, ended: list[Active]) -> None:
        """Inside the transaction ending them: the ends of children whose parent is not driven here, as rows."""
        ends = [
            (a.execution.parent_id or "", a.execution.id) for a in ended if a.execution.parent_id not in self._active
        ]
        if ends and self.owner is not None:
            self.store.send_subflow_ends(ends)

    def _poll_messages(self) -> None:
        """Now and then: the ends of children of the parents owned here, and queued executions a lost end left
        waiting (its executor died before it started them)."""
        if self.owner is None or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + POLL_SECONDS
        told = {child for children in self._told.values() for child in children}
        ends = [(p, c) for p, c in self.store.subflow_ends(self.owner, ENDS_BATCH) if c not in told]
        done = [child.id for child in self.store.load_executions([c for _, c in ends]) if not self._told_parent(child)]
        if done:
            self.store.drop_subflow_ends(done)
        for namespace, flow_id in self.store.queued_flows():
            try:
                flow = self.flows.get(namespace, flow_id)
            except NotFoundError:  # deleted: its queued executions fail when next driven
                continue
            self._dequeue(flow)

    def _told_parent(self, child: Execution) -> bool:
        """Whether the child's end waits for its parent's decision to be dropped (False: drop it now)."""
        try:
            recorded = self._tell_parent(child)
        except NotOwned:  # taken over meanwhile: its new owner takes it
            return True
        if recorded:
            self._told.setdefault(child.parent_id or "", []).append(child.id)
        return recorded

    def _forget(self, execution_id: str) -> None:
        super()._forget(execution_id)
        if self.owner is not None:
            self._told.pop(execution_id, None)

    def _claim(self, execution_id: str) -> None:
        if self.owner is not None and not self.store.own_executions(self.owner, [execution_id]):
            raise NotOwned(f"execution {execution_id} is driven by another executor")


def _ends_child(active: Active, ended_before: bool) -> bool:
    """The decision ends a subflow child (one its parent waits for)."""
    execution = active.execution
    return execution.state.current.is_terminated() and not ended_before and execution.parent_task_run_id is not None
