"""The runner: the executor loop's public face, and what spans executions.

One runner serves the CLI's synchronous `execute` and the server. Its loop (`loop.Loop`) decides, persists and
acts; here are the entry points (run, resume, restart, kill; submit and serve for the server) and what links
executions to each other: a flow's concurrency limit, an execution's end (its parent told, a queued one
started), resume and restart, and subflow children with the window of executions driven at once.
"""

from __future__ import annotations

import functools
import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from kestractl.engine.active import Active
from kestractl.engine.control import RESUMABLE, kill, kill_offline, restart_rows, resume_runs
from kestractl.engine.creation import ExecutionCreator
from kestractl.engine.inbox import Work
from kestractl.engine.loop import POLL_SECONDS, NotOwned, final_state, log
from kestractl.engine.ownership import OwnedLoop
from kestractl.errors import ConflictError, KestraError, StoreError
from kestractl.model import Execution, Flow, LogEntry, State, TaskRun
from kestractl.storage import Storage
from kestractl.store import Store
from kestractl.tasks.base import ExecutableTask, RunContext

# Executions one runner drives at once; subflow children beyond it wait as CREATED rows (see _activate_waiting).
ACTIVE_WINDOW = 1_000
# Waiting children kept in memory besides their rows (13 MB for 10,000), so that they are not read back when they start.
WAITING_KEPT = 10_000
# States of an execution that count against its flow's concurrency limit.
_OCCUPYING = [s.value for s in (State.RUNNING, State.PAUSED, State.RESTARTED, State.KILLING)]
# The longest wait between two tries to reach a database that went away.
OUTAGE_BACKOFF_SECONDS = 5.0

# (level, message): how a server says what happens to it.
Say = Callable[[str, str], None]


class Runner(OwnedLoop):
    """One loop that owns its active executions; other threads talk to it through the inbox."""

    def __init__(
        self,
        store: Store,
        storage: Storage,
        on_log: Callable[[LogEntry], None] | None = None,
        workers: int = 8,
        on_end: Callable[[Execution], None] | None = None,
        on_change: Callable[[Execution, list[TaskRun]], None] | None = None,
    ) -> None:
        super().__init__(store, storage, on_log, workers, on_end, on_change)
        self.creator = ExecutionCreator(store, storage)
        # (execution id, parent id) of CREATED executions waiting for room in the window.
        self._waiting: deque[tuple[str, str | None]] = deque()
        self._kept: dict[str, Execution] = {}  # the first WAITING_KEPT of them, as created
        # How many times the executions were read again from the store (see `_reload`).
        self._reloads = 0

    # ---- creating executions ---------------------------------------------------------------

    def create_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        labels: list[tuple[str, str]] | None = None,
        trigger: dict[str, Any] | None = None,
        parent: tuple[Execution, TaskRun] | None = None,
        validate_inputs: bool = True,
    ) -> Execution:
        """A new CREATED execution with typed inputs (files copied into storage), persisted."""
        return self.creator.create_execution(flow, inputs, labels, trigger, parent, validate_inputs)

    # ---- driving (CLI: synchronous) ---------------------------------------------------------

    def run(self, execution_id: str) -> Execution:
        """Drive the execution (and the subflows it starts) until it ends or waits for a resume."""
        self._activate(execution_id)
        self._loop()
        return self.store.load_execution(execution_id)

    def resume(self, execution_id: str) -> Execution:
        self._resume(execution_id)
        self._loop()
        return self.store.load_execution(execution_id)

    def restart(self, execution_id: str) -> Execution:
        self._restart(execution_id)
        self._loop()
        return self.store.load_execution(execution_id)

    def kill(self, execution_id: str, wait_seconds: float = 5.0) -> Execution:
        """Ask the process that drives the execution to kill it; finish the job if none answers."""
        return kill(self.store, execution_id, wait_seconds, POLL_SECONDS / 2)

    def close(self) -> None:
        self._workers.close()
        if self._local_workers is not self._workers:
            self._local_workers.close()

    # ---- driving (server: a loop that never ends until told) ----------------------------------

    def submit(self, execution_id: str, fresh: Execution | None = None) -> None:
        """Thread-safe: have the loop pick up an execution created elsewhere; `fresh`, the one just created
        and handed over (the caller no longer reads it), spares reading it back."""
        reloads = self._reloads
        self._inbox.put(Work(execution_id, lambda: self._activate_quietly(execution_id, fresh, reloads)))

    def _activate_quietly(self, execution_id: str, fresh: Execution | None, reloads: int) -> None:
        """`fresh` is not used after a reload in between: the store may have it further on (see `_reload`)."""
        try:
            self._activate(execution_id, fresh=fresh if reloads == self._reloads else None)
        except NotOwned:  # another executor claimed it first: it drives it
            pass

    def call(self, action: Callable[[], Any]) -> Future[Any]:
        """Thread-safe: run `action` inside the loop (resume, restart …); the future carries its result."""
        future: Future[Any] = Future()

        def work() -> None:
            try:
                future.set_result(action())
            except BaseException as exc:  # handed to the caller, who reports it
                future.set_exception(exc)

        self._inbox.put(work)
        return future

    def submit_resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> Future[Any]:
        """`inputs`: the paused task's `onResume` inputs, already validated."""
        return self.call(lambda: self._resume(execution_id, inputs))

    def submit_restart(self, execution_id: str) -> Future[Any]:
        return self.call(lambda: self._restart(execution_id))

    def serve(self, stop: threading.Event, tick: Callable[[], None] | None = None, say: Say | None = None) -> None:
        """Run every execution handed in until `stop` is set; `tick` runs between iterations. An owning runner
        claims the executions to drive as it goes (see `_claim_executions`). The database going away (a restart)
        is said once through `say`, and waited for (see `_ride_out`)."""
        self._load_from_store()
        while not stop.is_set():
            try:
                self._iterate()
                self._claim_executions()
                self._poll_messages()
            except StoreError as exc:
                self._ride_out(exc, stop, say or _log)
                continue
            if tick is not None:
                tick()

    def _load_from_store(self) -> None:
        """Drive what the store holds: started executions (their interrupted runs get a new attempt), then the
        CREATED ones, oldest first, as the window allows. An owning runner, those it owns (after an outage)."""
        if self.owner is not None:
            self._reread_owned()
            return
        started = [s.value for s in RESUMABLE if s != State.CREATED]
        for execution_id in self.store.find_execution_ids(states=started, limit=1_000_000):
            self._drive(execution_id, recover=True)
        created = self.store.find_execution_ids(states=[State.CREATED.value], limit=10_000_000)
        self._waiting.extend((execution_id, None) for execution_id in reversed(created))  # oldest first
        self._activate_waiting()

    def _ride_out(self, error: StoreError, stop: threading.Event, say: Say) -> None:
        """The database went away: say it once, then try again, waiting longer each time (up to
        OUTAGE_BACKOFF_SECONDS), until the executions are read again (or the server stops)."""
        say("ERROR", f"executor: {error.message}; waiting for the database")
        delay = 0.1
        while not stop.wait(delay):
            try:
                self._reload()
            except StoreError:
                delay = min(delay * 2, OUTAGE_BACKOFF_SECONDS)
                continue
            say("INFO", "executor: the database answers again; executions read again from it")
            return

    def _reload(self) -> None:
        """Forget every execution held in memory and read them again from the store, so that a decision half-made
        is made again from what was committed; then apply again what was applied in memory since the last commit
        (results, fired timers), each once (see `_take_result`). Task runs still in flight here go on."""
        self._reloads += 1
        self._active.clear()
        self._dirty.clear()
        self._timers.clear()
        self._waiting.clear()
        self._kept.clear()
        self._load_from_store()
        for _, again in self._uncommitted:
            again()
        for active in list(self._active.values()):
            if active.execution.state.current == State.KILLING:  # asked before the database went away
                self._kill_active(active)

    def drain(self, grace_seconds: float) -> None:
        """Stop gracefully: start nothing new, let running task runs finish for a while, then stop
        them and leave them RESTARTED, so the next start gives them a new attempt."""
        self._stopping = True
        deadline = time.monotonic() + grace_seconds
        while self._inflight and time.monotonic() < deadline:
            self._iterate()
        for run_id in list(self._inflight):
            self._stop(run_id).set()
        deadline = time.monotonic() + 5
        while self._inflight and time.monotonic() < deadline:
            self._iterate()
        self.logs.flush()

    def stop_gracefully(self, grace_seconds: float, say: Say) -> None:
        """`drain` (with runs in worker processes: `settle`), then hand the owned executions back; with the database
        away, what runs is left RUNNING in the store for the next start (or the next owner) to recover."""
        try:
            if self._queue is not None:
                self.settle()
            else:
                self.drain(grace_seconds)
            self.release()
        except StoreError as exc:
            say("ERROR", f"executor: {exc.message}; running task runs are recovered at the next start")

    def _admitted(self, active: Active) -> bool:
        """Kestra's flow `concurrency`: a new execution starts only below the limit of running ones, counted in the
        store under the flow's lock and occupied (RUNNING) in the same transaction, so executors side by side keep
        the limit; over it, it waits QUEUED (until one ends, see `_dequeue`), or ends CANCELLED or FAILED. A
        starting execution of a flow with an `sla` says, once, that it is not enforced here."""
        execution, concurrency = active.execution, active.flow.concurrency
        if active.flow.sla and execution.state.current == State.CREATED:
            self._context(active, None, None).log("WARN", "The flow's `sla` is not enforced by kestractl")
        if concurrency is None or execution.state.current not in (State.CREATED, State.QUEUED):
            return True
        with self.store.transaction():
            self.store.lock_flow(execution.namespace, execution.flow_id)
            if self.owner is not None and not self.store.still_owned(self.owner, [execution.id]):
                self._forget(execution.id)  # queued here, started by another executor meanwhile
                return False
            if self._occupied(execution, concurrency["limit"]):
                return True
            if concurrency["behavior"] == "QUEUE":
                if execution.state.moved(State.QUEUED):
                    self.store.save_execution(execution)
                self._active.pop(execution.id, None)
                return False
            ending = State.CANCELLED if concurrency["behavior"] == "CANCEL" else State.FAILED
            self._context(active, None, None).log("WARN", f"Flow is {ending.value} due to concurrency limit exceeded")
            execution.state.moved(ending)
            self.store.save_execution(execution)
            self._send_ends([active])
        self._finish(active)
        return False

    def _occupied(self, execution: Execution, limit: int) -> bool:
        """Under the flow's lock: the execution takes a free slot (stored RUNNING), or there is none."""
        running = self.store.flow_execution_ids(execution.namespace, execution.flow_id, _OCCUPYING)
        if len([i for i in running if i != execution.id]) >= limit:
            return False
        if execution.state.moved(State.RUNNING):
            self.store.save_execution(execution)
        return True

    def _dequeue(self, flow: Flow) -> None:
        """A slot of a flow with a concurrency limit may be free: its oldest queued execution takes it, whichever
        executor queued it (this one drives it from now on)."""
        if flow.concurrency is None:
            return
        with self.store.transaction():
            self.store.lock_flow(flow.namespace, flow.id)
            queued = self.store.flow_execution_ids(flow.namespace, flow.id, [State.QUEUED.value], True)
            execution = self.store.load_execution(queued[0]) if queued else None
            if execution is None or not self._occupied(execution, flow.concurrency["limit"]):
                return
            if self.owner is not None:
                self.store.take_execution(self.owner, execution.id)
        self._drive(execution.id, fresh=execution)

    def _finish(self, active: Active) -> None:
        execution = active.execution
        self.contexts.release(execution)
        self._active.pop(execution.id, None)
        self.logs.flush()
        self._dequeue(active.flow)
        if self.on_end is not None:
            self.on_end(execution)
        if execution.parent_id is None or execution.parent_task_run_id is None:
            return
        parent = self._active.get(execution.parent_id)
        if parent is None:
            if self.owner is not None:  # its end went to the parent's owner as a row (see `_fenced`)
                return
            if self.store.execution_state(execution.parent_id).is_terminated():
                return
            try:
                parent = self._activate(execution.parent_id)
            except NotOwned:  # its executor claimed the parent and its children together (see `_start_subflow`)
                return
        self._record_end(parent, execution, lambda: self._context(active, None, None))

    def _tell_parent(self, child: Execution) -> bool:
        """A child's end that another executor wrote for this one (it owns the parent)."""
        assert child.parent_id is not None
        if child.parent_id not in self._active and self.store.execution_state(child.parent_id).is_terminated():
            return False  # it no longer waits (killed, or a child it did not wait for)
        flow = self.flows.get(child.namespace, child.flow_id, child.flow_revision)
        parent = self._activate(child.parent_id)
        return self._record_end(parent, child, lambda: self.contexts.make(flow, child, flow.tasks_by_id, None, None))

    def _record_end(self, parent: Active, child: Execution, child_ctx: Callable[[], RunContext]) -> bool:
        """The child's end on the parent's run waiting for it; False: the run no longer waits."""
        assert child.parent_task_run_id is not None
        run = parent.execution.run(child.parent_task_run_id)
        if run.state.current.is_terminated():
            return False
        task = parent.executor.tasks[run.task_id]
        assert isinstance(task, ExecutableTask)
        ctx = functools.cache(lambda: self._context(parent, task, run))
        try:
            state = task.subflow_ended(run, child, ctx, child_ctx)
        except Exception as exc:  # a task bug fails its run, not the loop
            log.exception("task %s failed to take the end of %s", run.task_id, child.id)
            ctx().error(f"{type(exc).__name__}: {exc}")
            state = State.FAILED
        if state is None:
            parent.touch(run)
        else:
            self._end_run(parent, run, final_state(task, run, state, parent.flow))
        return True

    # ---- resume and restart (inside the loop) -------------------------------------------------

    def _resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> Execution:
        """Resume a PAUSED execution (checked before this runner takes it over); `inputs` go to the paused runs."""
        known = self._active.get(execution_id)
        current = known.execution.state.current if known else self.store.execution_state(execution_id)
        if current != State.PAUSED:
            raise ConflictError(f"execution {execution_id} is {current.value}, not PAUSED")
        active = self._activate(execution_id)
        execution = active.execution
        with self.store.transaction():
            for delay in self.store.delays(execution.id):
                self.store.remove_delay(delay.execution_id, delay.task_run_id, delay.kind)
        self._timers = [t for t in self._timers if t[1] != execution.id]
        heapq.heapify(self._timers)
        for run in resume_runs(execution, active.executor.tasks, inputs):
            active.touch(run)
        self._advance(active)
        return execution

    def _restart(self, execution_id: str) -> Execution:
        """Kestra's restart: same id; failed runs and their parents get a new attempt."""
        active = self._activate(execution_id)
        execution = active.execution
        restart_rows(self.store, execution, active.flow)
        active.positions = {r.id: i for i, r in enumerate(execution.task_runs)}
        active.full = True
        active.row_changed()
        self._advance(active)
        return execution

    # ---- subflows -----------------------------------------------------------------------------

    def _start_subflow(self, active: Active, run: TaskRun) -> None:
        task = active.executor.tasks[run.task_id]
        assert isinstance(task, ExecutableTask)
        ctx = self._context(active, task, run)
        try:
            flow_of = functools.cache(self.flows.get)  # "the latest" read once per start, not once per child
            with self.store.transaction():  # all children or none
                child_ids, kept = self.creator.create_children(
                    active.execution, task, run, task.subflow_requests(ctx), flow_of, WAITING_KEPT - len(self._kept)
                )
                if self.owner is not None:  # no other executor may claim them: their ends come back here
                    self.store.own_executions(self.owner, child_ids)
            state = task.subflows_started(run, child_ids)
        except StoreError:
            raise
        except Exception as exc:  # a bad request fails this task run, never the loop
            ctx.error(exc.message if isinstance(exc, KestraError) else f"{type(exc).__name__}: {exc}")
            self._end_run(active, run, final_state(task, run, State.FAILED, active.flow))
            return
        if state is not None:
            self._end_run(active, run, state)
        else:
            active.touch(run)
        self._waiting.extend((child_id, active.execution.id) for child_id in child_ids)
        self._kept.update((child.id, child) for child in kept)

    def _activate_waiting(self) -> None:
        """Drive waiting executions (subflow children, CREATED rows) while fewer than ACTIVE_WINDOW are driven:
        100,000 ForEachItem children are rows that start as others end, not 100,000 executions in memory. Called
        once per loop iteration, so the children whose places a group of ends freed are read together."""
        room = min(len(self._waiting), ACTIVE_WINDOW - len(self._active))
        if room > 0:
            ids = [self._waiting.popleft()[0] for _ in range(room)]
            for execution in self._waiting_executions(ids):
                self._drive(execution.id, fresh=execution)

    def _waiting_executions(self, ids: list[str]) -> list[Execution]:
        """The waiting executions, in order: those kept as created whose rows still say CREATED (nothing killed or
        deleted them meanwhile), the others read."""
        kept = {i: e for i in ids if (e := self._kept.pop(i, None)) is not None}
        unchanged = self.store.still_created(list(kept)) if kept else set()
        read = {e.id: e for e in self.store.load_executions([i for i in ids if i not in unchanged])}
        found = [kept[i] if i in unchanged else read.get(i) for i in ids]
        return [execution for execution in found if execution is not None]

    def _room_for_waiting(self) -> bool:
        return bool(self._waiting) and len(self._active) < ACTIVE_WINDOW

    def _room_for_claims(self) -> int:
        return ACTIVE_WINDOW - len(self._active) - len(self._waiting)

    def _kill_waiting(self, parent_id: str) -> None:
        """Children of a killed execution that never started end KILLED where they are, in the store."""
        killed = [child for child, parent in self._waiting if parent == parent_id]
        if killed:
            self._waiting = deque((c, p) for c, p in self._waiting if p != parent_id)
            for child_id in killed:
                self._kept.pop(child_id, None)
                kill_offline(self.store, child_id)


def _log(level: str, message: str) -> None:
    log.log(logging.getLevelName(level), message)
