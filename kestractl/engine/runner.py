"""Drives executions to their end: executor steps, worker threads, timers, kills and subflows.

One loop serves the CLI's synchronous `execute` and, later, the server: it owns the in-memory
executions it activated, persists every decision in one transaction, and runs runnable task runs
on a thread pool. Workers only report results through a queue; only the loop writes state.
"""

from __future__ import annotations

import base64
import heapq
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kestractl.engine.executor import Executor, Step
from kestractl.engine.retry import next_delay
from kestractl.engine.variables import build_variables, value_path
from kestractl.engine.worker import AttemptResult, run_attempt
from kestractl.errors import ConflictError, KestraError, StorageError, TaskError
from kestractl.expressions import render_value
from kestractl.inputs import resolve_inputs
from kestractl.model import (
    Execution,
    Flow,
    LogEntry,
    State,
    StateInfo,
    TaskRun,
    new_id,
    utcnow,
)
from kestractl.parser import parse_flow
from kestractl.storage import Storage, execution_prefix
from kestractl.store import Delay, Store
from kestractl.tasks.base import ExecutableTask, RunContext, RunnableTask, Task

POLL_SECONDS = 0.2


class FlowRepository:
    """Parsed flows by namespace, id and revision; each revision is parsed once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str, int], Flow] = {}

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow:
        row = self.store.flow_revision(namespace, flow_id, revision)
        key = (row.namespace, row.id, row.revision)
        if key not in self._cache:
            flow = parse_flow(row.source, f"{namespace}.{flow_id}")
            flow.revision = row.revision
            self._cache[key] = flow
        return self._cache[key]


@dataclass
class Active:
    """An execution this runner drives, with its flow and executor."""

    execution: Execution
    flow: Flow
    executor: Executor
    positions: dict[str, int] = field(default_factory=dict)
    dirty: bool = True
    # The first step after activation looks at every run; later ones only at what changed.
    full: bool = True


class Runner:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        on_log: Callable[[LogEntry], None] | None = None,
        workers: int = 8,
    ) -> None:
        self.store = store
        self.storage = storage
        self.flows = FlowRepository(store)
        self.on_log = on_log
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="worker")
        self._results: queue.Queue[tuple[str, str, AttemptResult]] = queue.Queue()
        self._active: dict[str, Active] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._timers: list[tuple[datetime, str, str, str]] = []
        self._logs: list[LogEntry] = []
        self._log_lock = threading.Lock()
        self._workdirs: dict[str, str] = {}

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
        if flow.disabled:
            raise ConflictError(f"flow {flow.namespace}.{flow.id} is disabled")
        execution = Execution(
            id=new_id(),
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=flow.revision,
            state=StateInfo.new(State.CREATED),
            trigger=trigger,
        )
        prefix = execution_prefix(flow.namespace, flow.id, execution.id)

        def store_file(input_id: str, path: Path) -> str:
            return self.storage.put(f"{prefix}/inputs/{input_id}/{path.name}", path)

        try:
            execution.inputs = (
                resolve_inputs(flow.inputs, inputs or {}, store_file=store_file)
                if validate_inputs
                else dict(inputs or {})
            )
        except KestraError:
            shutil.rmtree(self.storage.local_path("kestra://" + prefix), ignore_errors=True)
            raise
        correlation = execution.id
        if parent is not None:
            parent_execution, parent_run = parent
            execution.parent_id = parent_execution.id
            execution.parent_task_run_id = parent_run.id
            correlation = parent_execution.labels_map().get("system.correlationId", parent_execution.id)
        execution.labels = _merge_labels([*flow.labels, *(labels or []), ("system.correlationId", correlation)])
        with self.store.transaction():
            self.store.save_execution(execution)
        return execution

    # ---- driving ------------------------------------------------------------------------------

    def run(self, execution_id: str) -> Execution:
        """Drive the execution (and the subflows it starts) until it ends or waits for a resume."""
        self._activate(execution_id)
        self._loop()
        return self.store.load_execution(execution_id)

    def resume(self, execution_id: str) -> Execution:
        execution = self.store.load_execution(execution_id)
        if execution.state.current != State.PAUSED:
            raise ConflictError(f"execution {execution_id} is {execution.state.current.value}, not PAUSED")
        with self.store.transaction():
            for run in execution.task_runs:
                if run.state.current == State.PAUSED:
                    run.data["resumed"] = True
                    run.state.moved(State.RUNNING)
                    for kind in ("RESUME", "PAUSE_TIMEOUT"):
                        self.store.remove_delay(execution.id, run.id, kind)
            execution.state.moved(State.RESTARTED)
            self._save_all(execution)
        return self.run(execution_id)

    def restart(self, execution_id: str) -> Execution:
        """Kestra's restart: same id; failed runs and their parents get a new attempt."""
        execution = self.store.load_execution(execution_id)
        if not (execution.state.current.is_terminated() or execution.state.current == State.PAUSED):
            raise ConflictError(
                f"execution {execution_id} is {execution.state.current.value}; only ended executions restart"
            )
        flow = self.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
        error_ids = _error_task_ids(flow)
        by_id = {r.id: r for r in execution.task_runs}
        removed = [r.id for r in execution.task_runs if r.task_id in error_ids or _under(r, error_ids, by_id, flow)]
        execution.task_runs = [r for r in execution.task_runs if r.id not in removed]
        by_id = {r.id: r for r in execution.task_runs}
        for run in execution.task_runs:
            if run.state.current in (State.FAILED, State.KILLED, State.PAUSED):
                run.state.moved(State.RESTARTED)
                parent = by_id.get(run.parent_task_run_id or "")
                while parent is not None:
                    parent.state.moved(State.RESTARTED)
                    parent = by_id.get(parent.parent_task_run_id or "")
        execution.state.moved(State.RESTARTED)
        execution.attempt_number += 1
        execution.outputs = None
        with self.store.transaction():
            self.store.delete_task_runs(removed)
            self._save_all(execution)
        return self.run(execution_id)

    def kill(self, execution_id: str, wait_seconds: float = 5.0) -> Execution:
        """Ask the runner that owns the execution to kill it; finish the job if none answers."""
        execution = self.store.load_execution(execution_id)
        if execution.state.current.is_terminated():
            raise ConflictError(f"execution {execution_id} already ended {execution.state.current.value}")
        if execution.state.current.is_running():
            self.store.set_execution_state(execution_id, State.KILLING)
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline:
                if self.store.execution_state(execution_id).is_terminated():
                    return self.store.load_execution(execution_id)
                time.sleep(POLL_SECONDS / 2)
        self._kill_offline(execution_id)
        return self.store.load_execution(execution_id)

    def _kill_offline(self, execution_id: str) -> None:
        """Nobody drives this execution (paused, queued or its process died): end it here."""
        for child_id in self.store.child_execution_ids(execution_id):
            if not self.store.execution_state(child_id).is_terminated():
                self._kill_offline(child_id)
        execution = self.store.load_execution(execution_id)
        if execution.state.current.is_terminated():
            return
        for run in execution.task_runs:
            if not run.state.current.is_terminated():
                run.state.moved(State.KILLED)
                for attempt in run.attempts:
                    if not attempt.state.current.is_terminated():
                        attempt.state.moved(State.KILLED)
        execution.state.moved(State.KILLED)
        with self.store.transaction():
            for delay in self.store.delays(execution_id):
                self.store.remove_delay(delay.execution_id, delay.task_run_id, delay.kind)
            self._save_all(execution)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- the loop -----------------------------------------------------------------------------

    def _activate(self, execution_id: str) -> Active:
        if execution_id in self._active:
            return self._active[execution_id]
        execution = self.store.load_execution(execution_id)
        flow = self.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
        active = Active(execution, flow, Executor(flow, lambda task, run: self._context(active, task, run)))
        active.positions = {r.id: i for i, r in enumerate(execution.task_runs)}
        self._active[execution_id] = active
        for delay in self.store.delays(execution_id):
            heapq.heappush(self._timers, (delay.due, delay.execution_id, delay.task_run_id, delay.kind))
        return active

    def _loop(self) -> None:
        last_poll = 0.0
        while True:
            for active in [a for a in self._active.values() if a.dirty]:
                self._advance(active)
            if not self._inflight and not self._timers and not any(a.dirty for a in self._active.values()):
                break
            self._wait_for_work()
            self._fire_timers()
            if time.monotonic() - last_poll >= POLL_SECONDS:
                self._poll_kills()
                last_poll = time.monotonic()
        self._flush_logs()

    def _wait_for_work(self) -> None:
        timeout = POLL_SECONDS
        if self._timers:
            timeout = max(0.0, min(timeout, (self._timers[0][0] - utcnow()).total_seconds()))
        try:
            item = self._results.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._apply_result(*item)
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return

    def _advance(self, active: Active, touched: list[TaskRun] | None = None) -> None:
        active.dirty = False
        execution = active.execution
        step = active.executor.step(execution, None if active.full else (touched or []))
        active.full = False
        for run in touched or []:
            step.touch(run)
        self._persist(active, step)
        for run in step.dispatch:
            self._dispatch(active, run)
        for run in step.subflows:
            self._start_subflow(active, run)
        if execution.state.current.is_terminated():
            self._finish(active)

    def _persist(self, active: Active, step: Step) -> None:
        execution = active.execution
        for run in step.changed.values():
            if run.id not in active.positions:
                active.positions[run.id] = len(active.positions)
        with self.store.transaction():
            self.store.save_task_runs(execution.id, ((active.positions[r.id], r) for r in step.changed.values()))
            self.store.save_execution(execution)
            for run_id, kind, due in step.timers:
                self.store.set_delay(Delay(execution.id, run_id, kind, due))
                heapq.heappush(self._timers, (due, execution.id, run_id, kind))
            self._flush_logs()

    def _save_all(self, execution: Execution) -> None:
        self.store.save_task_runs(execution.id, enumerate(execution.task_runs))
        self.store.save_execution(execution)

    def _dispatch(self, active: Active, run: TaskRun) -> None:
        task = active.executor.tasks[run.task_id]
        assert isinstance(task, RunnableTask)
        ctx = self._context(active, task, run)
        self._inflight[run.id] = ctx.stop
        execution_id = active.execution.id

        def work() -> None:
            result = run_attempt(task, ctx)
            self._results.put((execution_id, run.id, result))

        self._pool.submit(work)

    def _apply_result(self, execution_id: str, run_id: str, result: AttemptResult) -> None:
        self._inflight.pop(run_id, None)
        active = self._active[execution_id]
        run = active.execution.run(run_id)
        task = active.executor.tasks[run.task_id]
        now = utcnow()
        run.attempts[-1].state.moved(result.state, now)
        if result.outputs is not None:
            run.outputs = result.outputs
        delay = None
        if result.state == State.FAILED and active.execution.state.current != State.KILLING:
            first = run.attempts[0].state.start_date or now
            delay = next_delay(task.retry or active.flow.retry, len(run.attempts), first, now)
        if delay is not None:
            run.state.moved(State.RETRYING, now)
            with self.store.transaction():
                self.store.set_delay(Delay(execution_id, run.id, "RETRY", now + delay))
            heapq.heappush(self._timers, (now + delay, execution_id, run.id, "RETRY"))
        else:
            run.state.moved(_final_state(task, run, result.state), now)
        self._advance(active, [run])

    def _fire_timers(self) -> None:
        now = utcnow()
        while self._timers and self._timers[0][0] <= now:
            _, execution_id, run_id, kind = heapq.heappop(self._timers)
            active = self._active.get(execution_id)
            if active is None:
                continue
            with self.store.transaction():
                self.store.remove_delay(execution_id, run_id, kind)
            self._on_timer(active, active.execution.run(run_id), kind, now)

    def _on_timer(self, active: Active, run: TaskRun, kind: str, now: datetime) -> None:
        execution = active.execution
        if kind == "RETRY" and run.state.current == State.RETRYING:
            run.attempts.append(_running_attempt(now))
            run.state.moved(State.RUNNING, now)
            self._advance(active, [run])
            self._dispatch(active, run)
            return
        if run.state.current != State.PAUSED:
            return
        if kind == "RESUME":
            run.data["resumed"] = True
            run.state.moved(State.RUNNING, now)
        else:
            run.state.moved(State.FAILED, now)
        if execution.state.current == State.PAUSED:
            execution.state.moved(State.RUNNING, now)
        self._advance(active, [run])

    def _poll_kills(self) -> None:
        for active in list(self._active.values()):
            execution = active.execution
            if execution.state.current.is_terminated() or execution.state.current == State.KILLING:
                continue
            if self.store.execution_state(execution.id) == State.KILLING:
                self._kill_active(active)

    def _kill_active(self, active: Active) -> None:
        execution = active.execution
        execution.state.moved(State.KILLING)
        for run in execution.task_runs:
            stop = self._inflight.get(run.id)
            if stop is not None:
                stop.set()
        for child in self._active.values():
            if child.execution.parent_id == execution.id and not child.execution.state.current.is_terminated():
                self._kill_active(child)
        self._timers = [t for t in self._timers if t[1] != execution.id]
        heapq.heapify(self._timers)
        active.dirty = True

    def _finish(self, active: Active) -> None:
        execution = active.execution
        for run in execution.task_runs:
            path = self._workdirs.pop(run.id, None)
            if path:
                shutil.rmtree(path, ignore_errors=True)
        parent = self._active.get(execution.parent_id or "")
        if parent is None or execution.parent_task_run_id is None:
            return
        run = parent.execution.run(execution.parent_task_run_id)
        if run.state.current.is_terminated():
            return
        task = parent.executor.tasks[run.task_id]
        assert isinstance(task, ExecutableTask)
        state, outputs = task.subflow_result(execution, self._context(active, None, None))
        run.outputs = outputs
        run.attempts[-1].state.moved(state)
        run.state.moved(state)
        self._advance(parent, [run])

    # ---- subflows -----------------------------------------------------------------------------

    def _start_subflow(self, active: Active, run: TaskRun) -> None:
        task = active.executor.tasks[run.task_id]
        assert isinstance(task, ExecutableTask)
        ctx = self._context(active, task, run)
        try:
            request = task.subflow_request(ctx)
            flow = self.flows.get(request["namespace"], request["flowId"], request.get("revision"))
            labels = list(request.get("labels") or [])
            if request.get("inheritLabels"):
                labels = [
                    *[(k, v) for k, v in active.execution.labels if k != "system.correlationId"],
                    *labels,
                ]
            trigger = {
                "id": task.id,
                "type": task.type,
                "variables": {
                    "executionId": active.execution.id,
                    "namespace": active.execution.namespace,
                    "flowId": active.execution.flow_id,
                    "flowRevision": active.execution.flow_revision,
                },
            }
            child = self.create_execution(
                flow, request.get("inputs") or {}, labels, trigger, parent=(active.execution, run)
            )
        except KestraError as exc:
            ctx.error(exc.message)
            run.attempts[-1].state.moved(State.FAILED)
            run.state.moved(_final_state(task, run, State.FAILED))
            self._advance(active, [run])
            return
        if not request.get("wait", True):
            run.outputs = {"executionId": child.id}
            run.attempts[-1].state.moved(State.SUCCESS)
            run.state.moved(State.SUCCESS)
            self._advance(active, [run])
        self._activate(child.id)

    # ---- run contexts -------------------------------------------------------------------------

    def _context(self, active: Active, task: Task | None, run: TaskRun | None) -> RunContext:
        execution, flow = active.execution, active.flow
        functions = self._functions(execution, run)
        return RunContext(
            flow=flow,
            execution=execution,
            task=task,
            task_run=run,
            variables=build_variables(flow, execution, task, run, functions),
            renderer=render_value,
            storage=self.storage,
            log_sink=self._log,
            working_dir=self._workdir(active, run),
        )

    def _functions(self, execution: Execution, run: TaskRun | None) -> dict[str, Callable[..., Any]]:
        by_id = {r.id: r for r in execution.task_runs}
        path = value_path(run, by_id) if run is not None else []

        def current_each_output(outputs: Any) -> Any:
            for value in path:
                if isinstance(outputs, Mapping) and value in outputs:
                    outputs = outputs[value]
            return outputs

        def error_logs() -> list[dict[str, Any]]:
            self._flush_logs()
            return [e.to_api() for e in self.store.logs(execution, "ERROR") if e.level == "ERROR"]

        return {
            "read": lambda uri: self._read(execution, str(uri)),
            "errorLogs": error_logs,
            "currentEachOutput": current_each_output,
            "secret": _secret,
            "fileSize": lambda uri: self.storage.local_path(str(uri)).stat().st_size,
        }

    def _read(self, execution: Execution, uri: str) -> str:
        """`read()`: files of this execution, or of the parent that started it."""
        allowed = [execution_prefix(execution.namespace, execution.flow_id, execution.id)]
        variables = (execution.trigger or {}).get("variables") or {}
        if variables.get("executionId") and variables.get("namespace") and variables.get("flowId"):
            allowed.append(execution_prefix(variables["namespace"], variables["flowId"], variables["executionId"]))
        if not uri.startswith("kestra://"):
            raise StorageError(f"Unable to read `{uri}`: only kestra:/// URIs of this execution can be read")
        path = "/" + uri[len("kestra://") :].lstrip("/")
        if not any(path.startswith(prefix + "/") for prefix in allowed):
            raise StorageError(f"Unable to read the file '{uri}' as it didn't belong to the current execution")
        return self.storage.read_bytes(uri).decode("utf-8")

    def _workdir(self, active: Active, run: TaskRun | None) -> Path | None:
        """The directory shared by the children of the nearest WorkingDirectory ancestor."""
        by_id = {r.id: r for r in active.execution.task_runs}
        parent = by_id.get(run.parent_task_run_id or "") if run else None
        while parent is not None:
            if active.executor.tasks[parent.task_id].shares_working_directory:
                if parent.id not in self._workdirs:
                    self._workdirs[parent.id] = tempfile.mkdtemp(prefix="kestractl-wd-")
                return Path(self._workdirs[parent.id])
            parent = by_id.get(parent.parent_task_run_id or "")
        return None

    # ---- logs ---------------------------------------------------------------------------------

    def _log(self, entry: LogEntry) -> None:
        with self._log_lock:
            self._logs.append(entry)
        if self.on_log is not None:
            self.on_log(entry)

    def _flush_logs(self) -> None:
        with self._log_lock:
            pending, self._logs = self._logs, []
        if pending:
            with self.store.transaction():
                self.store.append_logs(pending)


def _final_state(task: Task, run: TaskRun, state: State) -> State:
    """A task's own allowFailure / warningOnRetry / allowWarning applied to its last attempt."""
    if state == State.FAILED and task.allow_failure:
        state = State.WARNING
    if state == State.SUCCESS and len(run.attempts) > 1 and (task.retry or {}).get("warningOnRetry"):
        state = State.WARNING
    if state == State.WARNING and task.allow_warning:
        state = State.SUCCESS
    return state


def _running_attempt(now: datetime) -> Any:
    from kestractl.model import Attempt

    return Attempt(StateInfo.new(State.RUNNING, now))


def _merge_labels(labels: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Later labels override earlier ones with the same key; order of first appearance kept."""
    merged: dict[str, str] = {}
    for key, value in labels:
        merged[key] = value
    return list(merged.items())


def _secret(key: str) -> str:
    """Kestra OSS secrets: env var `SECRET_<KEY>`, base64-encoded."""
    raw = os.environ.get(f"SECRET_{key}")
    if raw is None:
        raise TaskError(f"Cannot find secret for key '{key}'")
    try:
        return base64.b64decode(raw).decode("utf-8")
    except ValueError:
        return raw


def _error_task_ids(flow: Flow) -> set[str]:
    ids = {t.id for top in flow.errors for t in top.walk()}
    for top in [*flow.tasks, *flow.errors]:
        for task in top.walk():
            ids |= {t.id for e in task.children.get("errors", []) for t in e.walk()}
    return ids


def _under(run: TaskRun, ids: set[str], by_id: dict[str, TaskRun], flow: Flow) -> bool:
    parent = by_id.get(run.parent_task_run_id or "")
    while parent is not None:
        if parent.task_id in ids:
            return True
        parent = by_id.get(parent.parent_task_run_id or "")
    return False
