"""The executor loop: decide, persist, act, for every execution one runner drives.

It owns the in-memory executions it activated: it steps them (group commit: one transaction for many
decisions), hands runnable task runs to its workers (see `dispatch`), applies their results, fires timers and
kills. Workers and other threads only put work into its inbox; only the loop writes state. What spans
executions (concurrency, ends, resume and restart, subflows) is the runner's (`runner.Runner`).
"""

from __future__ import annotations

import copy
import functools
import heapq
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from kestractl.engine.active import Active
from kestractl.engine.contexts import Contexts, LogBuffer
from kestractl.engine.control import fail_flowless, recover_interrupted
from kestractl.engine.creation import merge_labels
from kestractl.engine.dispatch import LocalWorkers, Workers
from kestractl.engine.executor import Executor, Step
from kestractl.engine.flows import FlowRepository
from kestractl.engine.inbox import GROUP_COMMIT, Inbox, Work
from kestractl.engine.retry import next_delay
from kestractl.engine.services import StoreServices
from kestractl.engine.worker import AttemptResult, run_attempt
from kestractl.errors import ConflictError, KestraError, NotFoundError, StoreError
from kestractl.model import Attempt, Execution, Flow, LogEntry, State, StateInfo, TaskRun, utcnow
from kestractl.storage import Storage
from kestractl.store import Delay, Store
from kestractl.tasks.base import ExecutionUpdate, FlowableTask, RunContext, RunnableTask, Task

POLL_SECONDS = 0.2
# Decisions in one group at most: an execution of many runs that only compute is decided again and again (see
# `_run_now`), and its commit must not wait for all of them.
MAX_GROUP_DECISIONS = 4 * GROUP_COMMIT
RETRY = "RETRY"
# A flow test's fixtures (kestractl.testing): the result a task run ends with instead of running, None: it runs.
Mock = Callable[[Execution, TaskRun], AttemptResult | None]
log = logging.getLogger("kestractl.engine")


class NotOwned(ConflictError):
    """The execution is driven by another executor (see `ownership.OwnedLoop`)."""


def _alive(ref: weakref.ref[Active]) -> Active:
    active = ref()
    assert active is not None, "a context was asked for after its execution was dropped"
    return active


class Loop(ABC):
    """The loop's state and its steps; the runner adds what spans executions (the abstract methods below)."""

    def __init__(
        self,
        store: Store,
        storage: Storage,
        on_log: Callable[[LogEntry], None] | None = None,
        workers: int = 8,
        on_end: Callable[[Execution], None] | None = None,
        on_change: Callable[[Execution, list[TaskRun]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_change = on_change
        self.storage = storage
        self.flows = FlowRepository(store)
        self.on_end = on_end
        self.logs = LogBuffer(store, on_log)
        self.contexts = Contexts(store, storage, self.logs, StoreServices(store, storage, self.logs, self.flows.get))
        self._inbox = Inbox()
        self._workers: Workers = LocalWorkers(self._inbox, self._apply_result, workers)
        self._local_workers = self._workers
        self._active: dict[str, Active] = {}
        # Runs handed out, with what stops them; None: an inline run's, made when it is asked to stop (see `_stop`).
        self._inflight: dict[str, threading.Event | None] = {}
        self._timers: list[tuple[datetime, str, str, str]] = []
        self._dirty: dict[str, None] = {}
        self._stopping = False
        self._last_kill_poll = 0.0
        self.mock: Mock | None = None
        # The attempt each run in flight was handed out for: its result is taken for that attempt only.
        self._numbers: dict[str, int] = {}
        # What was applied in memory since the last commit (results, fired timers), by task run: applied again
        # over the stored executions if the database goes away before it is committed (see `Runner._reload`).
        self._uncommitted: list[tuple[str, Callable[[], None]]] = []

    # ---- what the runner adds: concurrency, ends, resume, subflows and the window of active executions --------

    @abstractmethod
    def _claim(self, execution_id: str) -> None:
        """Make the execution this runner's to drive, or raise (another executor drives it)."""

    @abstractmethod
    def _fenced(self, decided: list[tuple[Active, Step, bool]]) -> list[tuple[Active, Step, bool]]:
        """Inside the transaction persisting them: the decisions about executions still this runner's."""

    @abstractmethod
    def _admitted(self, active: Active) -> bool:
        """Whether the execution may be stepped now (its flow's concurrency limit)."""

    @abstractmethod
    def _finish(self, active: Active) -> None:
        """The execution ended: release it, tell whoever waits for it (a parent, a queued execution)."""

    @abstractmethod
    def _start_subflow(self, active: Active, run: TaskRun) -> None:
        """Create the executions a subflow task run asked for."""

    @abstractmethod
    def _resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> Execution:
        """Resume a PAUSED execution (a Resume task asks for it)."""

    @abstractmethod
    def _activate_waiting(self) -> None:
        """Drive waiting executions while there is room."""

    @abstractmethod
    def _room_for_waiting(self) -> bool:
        """Whether an execution waits and there is room to drive it."""

    @abstractmethod
    def _kill_waiting(self, parent_id: str) -> None:
        """End KILLED the waiting children of a killed execution."""

    # ---- the loop -----------------------------------------------------------------------------

    def _activate(
        self, execution_id: str, recover: bool = False, fresh: Execution | None = None, keep: Collection[str] = ()
    ) -> Active:
        """Drive an execution from here on; `fresh` is the execution as stored, just created or read with others
        (no need to read it); `keep`, with `recover`: runs still running elsewhere (worker processes)."""
        if execution_id in self._active:
            return self._active[execution_id]
        self._claim(execution_id)
        execution = fresh or self.store.load_execution(execution_id)
        flow = self.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
        # The executor reaches its Active through a weak reference: a cycle would keep every ended execution
        # (runs, index, outputs) in memory until the cyclic collector ran, 60 MB for 10,000 children.
        executor = Executor(flow, lambda task, run: self._context(_alive(this), task, run))
        active = Active(execution, flow, executor, self._dirty)
        this = weakref.ref(active)
        if fresh is not None:
            active.row_changed()  # as stored
        active.positions = {r.id: i for i, r in enumerate(execution.task_runs)}
        self._active[execution_id] = active
        # A CREATED execution (a waiting subflow child) was never stepped: it has no timers to read.
        for delay in [] if execution.state.current == State.CREATED else self.store.delays(execution_id):
            heapq.heappush(self._timers, (delay.due, delay.execution_id, delay.task_run_id, delay.kind))
        if recover:
            recover_interrupted(execution, active.executor.tasks, {*self._running_here(), *keep})
        active.mark()
        if recover:
            self._start_orphaned_subflows(active)
        return active

    def _start_orphaned_subflows(self, active: Active) -> None:
        """Subflow runs left RUNNING without their children (the process or the database went away between the
        decision and the children's creation) create them now; a run whose children exist is left waiting."""
        tasks = active.executor.tasks
        waiting = [
            r for r in active.execution.task_runs if r.state.current == State.RUNNING and tasks[r.task_id].is_executable
        ]
        started = self.store.subflow_runs_started(active.execution.id) if waiting else set()
        for run in waiting:
            if run.id not in started:
                self._start_subflow(active, run)

    def _drive(
        self, execution_id: str, recover: bool = False, fresh: Execution | None = None, keep: Collection[str] = ()
    ) -> None:
        """Activate an execution of the store; one whose flow was deleted meanwhile ends FAILED."""
        try:
            self._activate(execution_id, recover, fresh, keep)
        except NotFoundError as exc:
            fail_flowless(self.store, fresh or self.store.load_execution(execution_id), exc.message)
        except NotOwned:  # another executor claimed it first: it drives it
            pass

    def _loop(self) -> None:
        while self._inflight or self._timers or self._dirty or self._inbox.pending() or self._room_for_waiting():
            self._iterate(idle_wait=False)
        self.logs.flush()

    def _iterate(self, idle_wait: bool = True) -> None:
        """Step what changed, then wait for a result, a timer or new work (not when there is none)."""
        self._activate_waiting()
        while self._dirty:
            self._advance_group()
        self._uncommitted.clear()  # every decision is committed: nothing to apply again
        if idle_wait or self._inflight or self._timers or self._inbox.pending():
            self._wait_for_work()
        self._fire_timers()
        if time.monotonic() - self._last_kill_poll >= POLL_SECONDS:
            self._poll_kills()
            self._poll_restarts()
            self._last_kill_poll = time.monotonic()

    def _wait_for_work(self) -> None:
        """Run the inbox's next group (see `Inbox.take`): at most one result per execution till its decision.
        Logs are stored in batches while the loop is busy (see `LogBuffer.flush_due`), and all before it waits."""
        if not self._inbox.pending():  # the loop may wait: what was logged is stored first
            self.logs.flush()
        timeout = self._wait_limit()
        if self._timers:
            timeout = max(0.0, min(timeout, (self._timers[0][0] - utcnow()).total_seconds()))
        for work in self._inbox.take(timeout, self._dirty):
            try:
                work()
            except StoreError:  # the database is away: the runner waits for it, then reloads (see `serve`)
                raise
            except Exception:  # one broken execution must not stop the loop that serves the others
                log.exception("unexpected error in the executor loop")

    def _wait_limit(self) -> float:
        """How long the loop may wait for its inbox when it has nothing to do."""
        return POLL_SECONDS

    def _advance_group(self) -> None:
        """Group commit: decide for up to GROUP_COMMIT executions, persist every decision in one transaction,
        then act on them (dispatch, subflows, ends), so nothing acts on a decision before it is committed."""
        decided: list[tuple[Active, Step, bool]] = []
        again: str | None = None  # an execution whose run was just made (see `_run_now`): decided again at once
        executions = 0
        while (again or self._dirty) and executions < GROUP_COMMIT and len(decided) < MAX_GROUP_DECISIONS:
            execution_id = again or next(iter(self._dirty))
            executions += again is None
            self._dirty.pop(execution_id, None)
            active = self._active.get(execution_id)
            decision = self._decide(active) if active is not None else None
            again = execution_id if decision is not None and self._run_now(*decision[:2]) else None
            if decision is not None:
                decided.append(decision)
        self._commit(_merged(decided))

    def _run_now(self, active: Active, step: Step) -> bool:
        """A run that only computes (Return, Log …) runs before its decision is stored, and the execution is decided
        again at once: both steps are committed together. Its result is not kept apart (see `_uncommitted`): if the
        commit fails, the decision that started it is lost with it, and made again."""
        if self._stopping or self.mock is not None:
            return False
        tasks = active.executor.tasks
        run = next((r for r in step.dispatch if _computes_only(tasks[r.task_id])), None)
        if run is None:
            return False
        step.dispatch.remove(run)
        task = tasks[run.task_id]
        assert isinstance(task, RunnableTask)
        self._take_result(active.execution.id, run.id, 0, run_attempt(task, self._context(active, task, run)))
        return True

    def _advance(self, active: Active) -> None:
        """One executor step over what changed; follow-ups are queued as touches, never recursed into."""
        decision = self._decide(active)
        if decision is not None:
            self._commit([decision])

    def _commit(self, decided: list[tuple[Active, Step, bool]]) -> None:
        """Persist the decisions in one transaction, then act on them."""
        with self.store.transaction():
            decided = self._fenced(decided)
            for active, step, _ in decided:
                self._persist(active, step)
            self._hand_over(decided, committed=False)
        self._hand_over(decided, committed=True)
        for active, step, ended_before in decided:
            self._act(active, step, ended_before)

    def _hand_over(self, decided: list[tuple[Active, Step, bool]], committed: bool) -> None:
        """Dispatch the runs decided: a worker queue's jobs inside the decision's transaction (the decision and its
        jobs are stored together), this process's threads once it is committed."""
        for active, step, _ in [] if self._stopping else decided:  # left RUNNING: recovered at the next start
            for run in step.dispatch:
                if self._workers_for(active, run).in_transaction != committed:
                    self._dispatch(active, run)

    def _decide(self, active: Active) -> tuple[Active, Step, bool] | None:
        """The executor's step over what changed (None: not admitted yet), and whether it had already ended."""
        execution = active.execution
        ended_before = execution.state.current.is_terminated() and not active.ended_by_task
        if not self._admitted(active):
            return None
        touched, active.touched = active.touched, []
        try:
            step = active.executor.step(execution, None if active.full else touched)
        except StoreError:
            raise
        except Exception:  # an engine bug fails this execution, not the loop serving the others
            log.exception("executor step failed for execution %s", execution.id)
            step = Step()
            execution.state.moved(State.FAILED)
        active.full = False
        for run in touched:
            step.touch(run)
        return active, step, ended_before

    def _act(self, active: Active, step: Step, ended_before: bool) -> None:
        """What a persisted step asks for besides its dispatched runs: start subflows, finish the execution."""
        execution = active.execution
        for run in step.subflows:
            if not self._mocked(active, run):
                self._start_subflow(active, run)
        if execution.state.current.is_terminated():
            if ended_before:  # nothing new: an ended execution was looked at again
                self._active.pop(execution.id, None)
            else:
                self._finish(active)

    def _persist(self, active: Active, step: Step) -> None:
        execution = active.execution
        for run in step.changed.values():
            if run.id not in active.positions:
                active.positions[run.id] = len(active.positions)
        with self.store.transaction():
            self.store.save_task_runs(execution.id, ((active.positions[r.id], r) for r in step.changed.values()))
            row_written = active.row_changed() or step.execution_changed
            if row_written:
                self.store.save_execution(execution)
            for run_id, kind, due in step.timers:
                self.store.set_delay(Delay(execution.id, run_id, kind, due))
                heapq.heappush(self._timers, (due, execution.id, run_id, kind))
            if row_written:  # a new execution state (ended, paused …) is stored with every line logged before it
                self.logs.flush()
            else:
                self.logs.flush_due()
        if self.on_change is not None and step.changed:
            self.on_change(execution, list(step.changed.values()))

    def _dispatch(self, active: Active, run: TaskRun) -> None:
        task = active.executor.tasks[run.task_id]
        assert isinstance(task, RunnableTask)
        execution_id = active.execution.id
        if self._mocked(active, run):
            return
        self._numbers[run.id] = len(run.attempts)
        if task.runs_inline:  # queued like a worker's result, so each is decided on before the next runs
            self._inflight[run.id] = None
            self._inbox.put(Work(execution_id, lambda: self._run_inline(execution_id, run.id)))
            return
        context = functools.partial(self._context, active, task, run)
        self._inflight[run.id] = self._workers_for(active, run).send(run, task, context)

    def _workers_for(self, active: Active, run: TaskRun) -> Workers:
        """This process's threads for a run inside a WorkingDirectory (its tasks share a folder here, as Kestra runs
        a WorkingDirectory on one worker), else the workers in use."""
        if self._local_workers is self._workers or not self._in_working_directory(active, run):
            return self._workers
        return self._local_workers

    @staticmethod
    def _in_working_directory(active: Active, run: TaskRun) -> bool:
        tasks = active.executor.tasks
        if not any(task.shares_working_directory for task in tasks.values()):
            return False
        by_id, node = active.execution.runs_by_id(), run
        while node.parent_task_run_id is not None:
            node = by_id[node.parent_task_run_id]
            if tasks[node.task_id].shares_working_directory:
                return True
        return False

    def _mocked(self, active: Active, run: TaskRun) -> bool:
        """A flow test's mocked run (see `Mock`) is never run: its fixture's result comes back as a worker's would."""
        result = self.mock(active.execution, run) if self.mock is not None else None
        if result is not None:
            self._inflight[run.id] = None
            apply = functools.partial(self._apply_result, active.execution.id, run.id, result)
            self._inbox.put(Work(active.execution.id, apply))
        return result is not None

    def _stop(self, run_id: str) -> threading.Event:
        """What stops a run in flight. An inline run's is made on first use: an Event (a Condition and its lock)
        for each of them cost as much as a task's log line, and almost none is ever stopped."""
        stop = self._inflight[run_id]
        if stop is None:
            stop = self._inflight[run_id] = threading.Event()
        return stop

    def _run_inline(self, execution_id: str, run_id: str) -> None:
        """Its context is made only now: 10,000 children queued at once must not hold 10,000 contexts."""
        active = self._active.get(execution_id)
        if active is None:  # forgotten meanwhile (another process took it over)
            self._inflight.pop(run_id, None)
            return
        run = active.execution.run(run_id)
        task = active.executor.tasks[run.task_id]
        assert isinstance(task, RunnableTask)
        ctx = self._context(active, task, run)
        stop = self._inflight.get(run_id)
        if stop is not None:  # asked to stop while queued
            ctx.stop = stop
        self._apply_result(execution_id, run_id, run_attempt(task, ctx))

    def _apply_result(self, execution_id: str, run_id: str, result: AttemptResult) -> None:
        """A run's result, for the attempt it was handed out for; kept until the decision it leads to is
        committed (see `_uncommitted`)."""
        if result.attempt is not None and run_id not in self._inflight:
            return  # a worker process's result for a run this loop does not wait for (see `_take_over`)
        self._inflight.pop(run_id, None)
        take = functools.partial(self._take_result, execution_id, run_id, self._numbers.pop(run_id, 0), result)
        self._uncommitted.append((run_id, take))
        take()

    def _take_result(self, execution_id: str, run_id: str, number: int, result: AttemptResult) -> None:
        active = self._active.get(execution_id)
        if active is None:
            self._late_result(execution_id, run_id, result)
            return
        run = active.execution.run(run_id)
        if number and (len(run.attempts) != number or run.attempts[-1].state.current.is_terminated()):
            return  # taken already (committed before the database went away), or of an attempt superseded
        if result.resubmitted:
            self._resubmit(active, run, result)
            return
        task = active.executor.tasks[run.task_id]
        now = utcnow()
        state, update = self._outcome(active, task, run, result)
        if result.attempt is not None:  # as the worker ran it
            run.attempts[-1] = result.attempt
        run.attempts[-1].state.moved(state, now)
        if self._stopping and result.state == State.KILLED:  # stopped by shutdown: run it again later
            run.state.moved(State.RESTARTED, now)
            with self.store.transaction():
                self.store.save_task_runs(execution_id, [(active.positions[run.id], run)])
                self.logs.flush()
            return
        if result.outputs is not None:
            run.outputs = result.outputs
        delay = None
        if state == State.FAILED and update is None and active.execution.state.current != State.KILLING:
            first = run.attempts[0].state.start_date or now
            delay = next_delay(task.retry or active.flow.retry, len(run.attempts), first, now)
        if delay is not None:
            run.state.moved(State.RETRYING, now)
            with self.store.transaction():
                self.store.set_delay(Delay(execution_id, run.id, RETRY, now + delay))
            heapq.heappush(self._timers, (now + delay, execution_id, run.id, RETRY))
        else:
            run.state.moved(final_state(task, run, state, active.flow), now)
            if update is not None:
                self._end_by_update(active, run, update)
        active.touch(run)

    def _resubmit(self, active: Active, run: TaskRun, result: AttemptResult) -> None:
        """Kestra's re-emission: the worker holding the run stopped heartbeating; its attempt ends KILLED and the
        run starts again (a new attempt, on any live worker: at-least-once)."""
        lost = result.attempt
        assert lost is not None
        run.attempts[-1] = lost
        message = f"Re-emitting WorkerTask {run.task_id}: its worker {lost.worker_id} stopped heartbeating"
        self._context(active, active.executor.tasks[run.task_id], run).log("WARN", message)
        run.state.moved(State.RESTARTED)
        active.touch(run)

    def _late_result(self, execution_id: str, run_id: str, result: AttemptResult) -> None:
        """A branch that was still running when an Exit ended its execution: its result is recorded (Kestra does
        not stop it). Only when the stored execution has ended: otherwise another process drives it."""
        execution = self.store.load_execution(execution_id)
        seq, run = next((i, r) for i, r in enumerate(execution.task_runs) if r.id == run_id)
        if not execution.state.current.is_terminated() or run.state.current.is_terminated():
            return
        run.attempts[-1].state.moved(result.state)
        run.state.moved(result.state)
        run.outputs = result.outputs if result.outputs is not None else run.outputs
        with self.store.transaction():
            self.store.save_task_runs(execution_id, [(seq, run)])
            self.logs.flush()

    def _outcome(
        self, active: Active, task: Task, run: TaskRun, result: AttemptResult
    ) -> tuple[State, ExecutionUpdate | None]:
        """The attempt's state once what it asked of the execution is applied (or refused: FAILED)."""
        update = result.update
        if update is None:
            return result.state, None
        if not self._take_update(active, task, run, update):
            return State.FAILED, None
        return update.end_state or result.state, update

    def _take_update(self, active: Active, task: Task, run: TaskRun, update: ExecutionUpdate) -> bool:
        """Apply what the task asked of its execution (Kestra runs these tasks in the executor); a refusal
        (an existing variable, a target that is not paused …) fails the task run and changes nothing."""
        execution = active.execution
        try:
            variables = None
            if update.variables:
                variables = copy.deepcopy(active.flow.variables if execution.variables is None else execution.variables)
                for edit in update.variables:
                    edit(variables)
            if update.resume is not None:
                self._resume(*update.resume)
        except StoreError:
            raise
        except KestraError as exc:
            self._context(active, task, run).error(exc.message)
            return False
        if variables is not None:
            execution.variables = variables
        if update.labels:
            execution.labels = merge_labels([*execution.labels, *update.labels])
        active.row_dirty = True
        return True

    def _end_by_update(self, active: Active, run: TaskRun, update: ExecutionUpdate) -> None:
        """Kill: the execution is killed as a user would. Exit: the run's parents and the execution end in its
        state at once; branches still running are not stopped (Kestra's Exit)."""
        if update.kill is not None:
            self._kill_active(active, cascade=update.kill)
            return
        if update.end_state is None:
            return
        by_id = active.execution.runs_by_id()
        parent = by_id.get(run.parent_task_run_id or "")
        while parent is not None:
            parent.state.moved(update.end_state)
            active.touch(parent)
            parent = by_id.get(parent.parent_task_run_id or "")
        active.execution.state.moved(update.end_state)
        active.ended_by_task = True

    def _fire_timers(self) -> None:
        if not self._timers:  # the loop's every iteration: no clock read for nothing
            return
        now = utcnow()
        while self._timers and self._timers[0][0] <= now:
            _, execution_id, run_id, kind = heapq.heappop(self._timers)
            active = self._active.get(execution_id)
            if active is None:
                continue
            with self.store.transaction():
                claimed = self.store.remove_delay(execution_id, run_id, kind)
            if not claimed:  # another process resumed or killed it: our copy is stale
                self._forget(execution_id)
                continue
            # Claimed, so gone from the store: applied again (its attempt not handed out twice) if need be.
            self._uncommitted.append((run_id, functools.partial(self._refire, execution_id, run_id, kind, now)))
            self._on_timer(active, active.execution.run(run_id), kind, now)

    def _refire(self, execution_id: str, run_id: str, kind: str, now: datetime) -> None:
        active = self._active.get(execution_id)
        if active is not None:
            self._on_timer(active, active.execution.run(run_id), kind, now, dispatch=False)

    def _on_timer(self, active: Active, run: TaskRun, kind: str, now: datetime, dispatch: bool = True) -> None:
        """Retries are the engine's own timers; any other kind belongs to the task that asked for it."""
        execution = active.execution
        if kind == RETRY:
            if run.state.current == State.RETRYING:
                run.attempts.append(Attempt(StateInfo.new(State.RUNNING, now)))
                run.state.moved(State.RUNNING, now)
                active.touch(run)
                if dispatch:
                    self._dispatch(active, run)
            return
        task = active.executor.tasks[run.task_id]
        if run.state.current not in (State.PAUSED, State.RUNNING) or not isinstance(task, FlowableTask):
            return
        run.state.moved(task.on_timer(run, kind), now)
        if execution.state.current == State.PAUSED:
            execution.state.moved(State.RUNNING, now)
        active.touch(run)

    def _running_here(self) -> set[str]:
        """Task runs of this process not to recover: in flight, or with a result not committed yet."""
        return {*self._inflight, *(run_id for run_id, _ in self._uncommitted)}

    def _forget(self, execution_id: str) -> None:
        """Stop driving an execution that another process changed under us."""
        self._active.pop(execution_id, None)
        self._timers = [t for t in self._timers if t[1] != execution_id]
        heapq.heapify(self._timers)

    def _poll_kills(self) -> None:
        for execution_id in self.store.find_execution_ids(states=[State.KILLING.value], limit=1_000_000):
            active = self._active.get(execution_id)
            if active is not None and active.execution.state.current != State.KILLING:
                self._kill_active(active)

    def _poll_restarts(self) -> None:
        """Executions another process (a webserver) restarted or resumed on their rows: read again and driven."""
        for execution_id in self.store.find_execution_ids(states=[State.RESTARTED.value], limit=1_000_000):
            active = self._active.get(execution_id)
            if active is not None and active.execution.state.current == State.RESTARTED:
                continue  # restarted here, being decided
            self._forget(execution_id)
            self._drive(execution_id)

    def _kill_active(self, active: Active, cascade: bool = True) -> None:
        """Stop what runs and end the rest KILLED; `cascade`: the subflow executions it started too."""
        execution = active.execution
        execution.state.moved(State.KILLING)
        for run in execution.task_runs:
            if run.id in self._inflight:
                self._stop(run.id).set()
        for child in list(self._active.values()) if cascade else []:
            if child.execution.parent_id == execution.id and not child.execution.state.current.is_terminated():
                self._kill_active(child)
        if cascade:
            self._kill_waiting(execution.id)
        self._timers = [t for t in self._timers if t[1] != execution.id]
        heapq.heapify(self._timers)
        active.mark()

    def _end_run(self, active: Active, run: TaskRun, state: State) -> None:
        run.attempts[-1].state.moved(state)
        run.state.moved(state)
        active.touch(run)

    # ---- run contexts -------------------------------------------------------------------------

    def _context(self, active: Active, task: Task | None, run: TaskRun | None) -> RunContext:
        return self.contexts.make(active.flow, active.execution, active.executor.tasks, task, run)


def _computes_only(task: Task) -> bool:
    return isinstance(task, RunnableTask) and task.computes_only


def _merged(decided: list[tuple[Active, Step, bool]]) -> list[tuple[Active, Step, bool]]:
    """The decisions of a group, one per execution: an execution decided again after a run made now has its steps
    joined (the rows they changed written once)."""
    by_id: dict[str, tuple[Active, Step, bool]] = {}
    for active, step, ended_before in decided:
        first = by_id.get(active.execution.id)
        if first is None:
            by_id[active.execution.id] = (active, step, ended_before)
            continue
        joined = first[1]
        joined.changed.update(step.changed)
        joined.dispatch += step.dispatch
        joined.subflows += step.subflows
        joined.timers += step.timers
        joined.execution_changed |= step.execution_changed
    return list(by_id.values())


def final_state(task: Task, run: TaskRun, state: State, flow: Flow) -> State:
    """A task's own allowFailure / warningOnRetry / allowWarning applied to its last attempt."""
    if state == State.FAILED and task.allow_failure:
        state = State.WARNING
    retry = task.retry or flow.retry or {}
    if state == State.SUCCESS and len(run.attempts) > 1 and retry.get("warningOnRetry"):
        state = State.WARNING
    if state == State.WARNING and task.allow_warning:
        state = State.SUCCESS
    return state
