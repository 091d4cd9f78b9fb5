"""Operations on a stored execution from outside its normal flow: restart, kill with nobody driving
it, and recovery of task runs a stopped process left behind."""

from __future__ import annotations

import time
from collections.abc import Container, Mapping
from typing import Any

from kestractl.errors import ConflictError
from kestractl.model import Execution, Flow, LogEntry, State, TaskRun
from kestractl.store import Store
from kestractl.tasks.base import FlowableTask, Task

# States an execution can be left in by a process that stopped; a server resumes them at start.
RESUMABLE = (State.CREATED, State.RESTARTED, State.RUNNING, State.PAUSED, State.QUEUED, State.KILLING)


def prepare_restart(execution: Execution, flow: Flow) -> list[str]:
    """Kestra's restart on the rows: `errors` runs go, failed runs and their parents become RESTARTED.

    Returns the ids of the removed task runs.
    """
    error_ids = _error_task_ids(flow)
    by_id = {r.id: r for r in execution.task_runs}
    removed = [r.id for r in execution.task_runs if r.task_id in error_ids or _under(r, error_ids, by_id)]
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
    return removed


def restart_rows(store: Store, execution: Execution, flow: Flow) -> None:
    """Restart an ended (or paused) execution on its rows (see `prepare_restart`); whoever drives it goes on."""
    if not (execution.state.current.is_terminated() or execution.state.current == State.PAUSED):
        raise ConflictError(
            f"execution {execution.id} is {execution.state.current.value}; only ended executions restart"
        )
    removed = prepare_restart(execution, flow)
    with store.transaction():
        store.delete_task_runs(removed)
        store.save_task_runs(execution.id, enumerate(execution.task_runs), renumbered=True)
        store.save_execution(execution)


def resume_runs(execution: Execution, tasks: Mapping[str, Task], inputs: dict[str, Any] | None) -> list[TaskRun]:
    """A PAUSED execution goes on: its paused runs take the `onResume` inputs; returns the runs changed."""
    if execution.state.current != State.PAUSED:
        raise ConflictError(f"execution {execution.id} is {execution.state.current.value}, not PAUSED")
    changed = []
    for run in execution.task_runs:
        task = tasks.get(run.task_id)
        if run.state.current == State.PAUSED and isinstance(task, FlowableTask):
            run.state.moved(task.on_resume(run, inputs))
            changed.append(run)
    execution.state.moved(State.RESTARTED)
    return changed


def resume_rows(store: Store, execution: Execution, flow: Flow, inputs: dict[str, Any] | None) -> None:
    """Resume a PAUSED execution on its rows, its timers claimed (a pause's timeout no longer fires): the
    executor driving it sees it RESTARTED and reads it again (see `Loop._poll_changes`)."""
    with store.transaction():
        for delay in store.delays(execution.id):
            store.remove_delay(delay.execution_id, delay.task_run_id, delay.kind)
        runs = resume_runs(execution, flow.tasks_by_id, inputs)
        positions = {r.id: i for i, r in enumerate(execution.task_runs)}
        store.save_task_runs(execution.id, ((positions[r.id], r) for r in runs))
        store.save_execution(execution)


def kill(store: Store, execution_id: str, wait_seconds: float, poll_seconds: float) -> Execution:
    """Ask the process that drives the execution to kill it (KILLING, which it polls); finish the job on the
    rows if none answers within `wait_seconds`."""
    execution = store.load_execution(execution_id)
    if execution.state.current.is_terminated():
        raise ConflictError(f"execution {execution_id} already ended {execution.state.current.value}")
    if execution.state.current.is_running():
        store.set_execution_state(execution_id, State.KILLING)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if store.execution_state(execution_id).is_terminated():
                return store.load_execution(execution_id)
            time.sleep(poll_seconds)
    kill_offline(store, execution_id)
    return store.load_execution(execution_id)


def recover_interrupted(execution: Execution, tasks: Mapping[str, Task], running: Container[str] = ()) -> None:
    """Runnable runs that were running when their process stopped get a new attempt; not those of `running`
    (this process still runs them: the database, not the process, went away)."""
    if execution.state.current.is_terminated() or execution.state.current == State.KILLING:
        return
    for run in execution.task_runs:
        task = tasks.get(run.task_id)
        if task is None or task.is_flowable or task.is_executable or run.id in running:
            continue
        if run.state.current == State.RUNNING or (run.state.current == State.KILLED and run.attempts):
            for attempt in run.attempts:
                if not attempt.state.current.is_terminated():
                    attempt.state.moved(State.KILLED)
            run.state.moved(State.RESTARTED)


def kill_offline(store: Store, execution_id: str) -> None:
    """Nobody drives this execution (paused, queued, or its process died): end it here, children first."""
    for child_id in store.child_execution_ids(execution_id):
        if not store.execution_state(child_id).is_terminated():
            kill_offline(store, child_id)
    execution = store.load_execution(execution_id)
    if not execution.state.current.is_terminated():
        _end_offline(store, execution, State.KILLED)


def fail_flowless(store: Store, execution: Execution, reason: str) -> None:
    """An execution whose flow (revision) is gone cannot be driven: it ends FAILED, saying why, instead of
    stopping the server that found it."""
    message = f"{reason}: the execution cannot go on without its flow"
    store.append_logs([LogEntry(execution.id, execution.namespace, execution.flow_id, "ERROR", message)])
    _end_offline(store, execution, State.FAILED)


def _end_offline(store: Store, execution: Execution, state: State) -> None:
    for run in execution.task_runs:
        if not run.state.current.is_terminated():
            run.state.moved(state)
            for attempt in run.attempts:
                if not attempt.state.current.is_terminated():
                    attempt.state.moved(state)
    execution.state.moved(state)
    execution_id = execution.id
    with store.transaction():
        for delay in store.delays(execution_id):
            store.remove_delay(delay.execution_id, delay.task_run_id, delay.kind)
        store.save_task_runs(execution.id, enumerate(execution.task_runs))
        store.save_execution(execution)


def _error_task_ids(flow: Flow) -> set[str]:
    ids = {t.id for top in flow.errors for t in top.walk()}
    for top in [*flow.tasks, *flow.errors]:
        for task in top.walk():
            ids |= {t.id for e in task.children.get("errors", []) for t in e.walk()}
    return ids


def _under(run: TaskRun, ids: set[str], by_id: dict[str, TaskRun]) -> bool:
    parent = by_id.get(run.parent_task_run_id or "")
    while parent is not None:
        if parent.task_id in ids:
            return True
        parent = by_id.get(parent.parent_task_run_id or "")
    return False
