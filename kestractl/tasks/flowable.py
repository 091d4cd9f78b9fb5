"""The decisions flowable tasks share: which children start next, and what state a list ends in.

These follow Kestra's `FlowableUtils` and `Execution.findTaskDependingFlowState`: a failure in a
list switches it to its `errors` tasks; a list's state comes from its main tasks only.
A `ResolvedTask` is a task bound to a parent run and, for Each children, a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kestractl.model import Execution, State, StateInfo, TaskRun, new_id, utcnow, worst_state

if TYPE_CHECKING:
    from kestractl.tasks.base import RunContext, Task


@dataclass(frozen=True)
class ResolvedTask:
    task: Task
    value: str | None = None


@lru_cache(maxsize=65536)
def _resolve(tasks: tuple[Task, ...], value: str | None) -> list[ResolvedTask]:
    return [ResolvedTask(t, value) for t in tasks if not t.disabled]


def resolve(tasks: Iterable[Task], value: str | None = None) -> list[ResolvedTask]:
    """Bind tasks for matching against runs, dropping disabled ones (they never get a run).

    Cached: the executor asks for the same lists at every pass. Callers must not mutate the result.
    """
    return _resolve(tuple(tasks), value)


class RunIndex:
    """Task runs of one execution grouped by parent, rebuilt once per executor pass."""

    def __init__(self, execution: Execution) -> None:
        self.by_key: dict[tuple[str | None, str, str | None], TaskRun] = {}
        self.by_id: dict[str, TaskRun] = {}
        for run in execution.task_runs:
            self.add(run)

    @property
    def size(self) -> int:
        return len(self.by_id)

    def add(self, run: TaskRun) -> None:
        self.by_key[(run.parent_task_run_id, run.task_id, run.value)] = run
        self.by_id[run.id] = run

    def find(self, parent_id: str | None, resolved: ResolvedTask) -> TaskRun | None:
        return self.by_key.get((parent_id, resolved.task.id, resolved.value))


class FlowableView:
    """What a flowable task sees when deciding: its own run, its children's runs, a clock."""

    def __init__(
        self,
        execution: Execution,
        run: TaskRun | None,
        index: RunIndex,
        now: datetime | None = None,
        context: Callable[[], RunContext] | None = None,
    ) -> None:
        self.execution = execution
        self.run = run
        self.index = index
        self.now = now or utcnow()
        self.timers: list[tuple[str, datetime]] = []
        self._context = context

    @property
    def parent_id(self) -> str | None:
        return self.run.id if self.run else None

    @property
    def killing(self) -> bool:
        return self.execution.state.current == State.KILLING

    def runs_for(self, resolved: list[ResolvedTask]) -> list[TaskRun]:
        """Runs of these resolved tasks under this parent, in the order of `resolved`."""
        parent, find = self.parent_id, self.index.find
        return [run for run in (find(parent, r) for r in resolved) if run is not None]

    def new_run(self, resolved: ResolvedTask, iteration: int | None = None) -> TaskRun:
        return TaskRun(
            id=new_id(),
            execution_id=self.execution.id,
            task_id=resolved.task.id,
            parent_task_run_id=self.parent_id,
            value=resolved.value,
            iteration=iteration,
            state=StateInfo.new(State.CREATED, self.now),
        )

    def set_timer(self, kind: str, delay: timedelta) -> None:
        """Ask to be woken: `RESUME` or `PAUSE_TIMEOUT` after `delay`."""
        self.timers.append((kind, self.now + delay))

    def context(self) -> RunContext:
        if self._context is None:
            raise RuntimeError("no run context for this view")
        return self._context()

    @property
    def data(self) -> dict[str, Any]:
        assert self.run is not None
        return self.run.data


def current_tasks(view: FlowableView, tasks: list[ResolvedTask], errors: list[ResolvedTask]) -> list[ResolvedTask]:
    """The main tasks, or the `errors` tasks once a main task failed (or errors already started)."""
    if view.runs_for(errors) or any(r.state.current.is_failed() for r in view.runs_for(tasks)):
        return errors
    return tasks


def sequential_nexts(view: FlowableView, tasks: list[ResolvedTask], errors: list[ResolvedTask]) -> list[TaskRun]:
    """One task at a time: the first, then the one after the last finished."""
    current = current_tasks(view, tasks, errors)
    if not current or view.killing:
        return []
    runs = view.runs_for(current)
    if not runs:
        return [view.new_run(current[0])]
    if any(r.state.current.is_created() or r.state.current.is_running() for r in runs):
        return []
    if any(r.state.current in (State.PAUSED, State.RETRYING) for r in runs):
        return []
    last = max(i for i, r in enumerate(runs) if r.state.current.is_terminated())
    return [view.new_run(current[last + 1])] if last + 1 < len(current) else []


def parallel_nexts(
    view: FlowableView,
    tasks: list[ResolvedTask],
    errors: list[ResolvedTask],
    concurrent: int = 0,
    ready: Callable[[ResolvedTask, list[TaskRun]], bool] | None = None,
) -> list[TaskRun]:
    """Start every task not started yet (at most `concurrent` running at once; 0 = no limit)."""
    current = current_tasks(view, tasks, errors)
    if view.killing or not current or current is errors:
        return _errors_nexts(view, tasks, errors, current)
    runs = view.runs_for(current)
    active = sum(1 for r in runs if not r.state.current.is_terminated())
    started = {(r.task_id, r.value) for r in runs}
    todo = [t for t in current if (t.task.id, t.value) not in started and (ready is None or ready(t, runs))]
    if concurrent > 0:
        todo = todo[: max(0, concurrent - active)]
    return [view.new_run(t) for t in todo]


def _errors_nexts(
    view: FlowableView, tasks: list[ResolvedTask], errors: list[ResolvedTask], current: list[ResolvedTask]
) -> list[TaskRun]:
    """Once a list failed, its `errors` tasks run one after another, whatever the list's own shape."""
    if view.killing or not current:
        return []
    return sequential_nexts(view, tasks, errors)


def grouped_nexts(
    view: FlowableView, tasks: list[ResolvedTask], errors: list[ResolvedTask], limit: int
) -> list[TaskRun]:
    """Each value's tasks run in order; up to `limit` values at once (0 = all)."""
    current = current_tasks(view, tasks, errors)
    if view.killing or not current or current is errors:
        return _errors_nexts(view, tasks, errors, current)
    by_key = {(r.task_id, r.value): r for r in view.runs_for(current)}
    groups: dict[str | None, list[ResolvedTask]] = {}
    for task in current:
        groups.setdefault(task.value, []).append(task)
    active, continuing, fresh = 0, [], []
    for group in groups.values():
        started = [by_key[key] for key in ((t.task.id, t.value) for t in group) if key in by_key]
        if not started:
            fresh.append(group[0])
        elif any(not r.state.current.is_terminated() for r in started):
            active += 1
        elif len(started) < len(group):
            continuing.append(group[len(started)])
            active += 1
    slots = len(fresh) if limit <= 0 else max(0, limit - active)
    return [view.new_run(t) for t in continuing + fresh[:slots]]


def list_state(
    view: FlowableView,
    tasks: list[ResolvedTask],
    errors: list[ResolvedTask],
    allow_failure: bool = False,
    allow_warning: bool = False,
) -> State | None:
    """The list's final state once its current tasks all ended (errors included), else None."""
    if not tasks:
        return State.SUCCESS
    current = current_tasks(view, tasks, errors)
    if current:
        done = sum(1 for r in view.runs_for(current) if r.state.current.is_terminated())
        if done < len(current):
            return None
    return final_state(view.runs_for(tasks), allow_failure, allow_warning)


def final_state(runs: list[TaskRun], allow_failure: bool = False, allow_warning: bool = False) -> State:
    """Kestra's `guessFinalState`: KILLED > FAILED > WARNING > PAUSED > SUCCESS, then the allow flags."""
    state = worst_state([r.state.current for r in runs])
    if state == State.FAILED and allow_failure:
        return State.SUCCESS if allow_warning else State.WARNING
    if state == State.WARNING and allow_warning:
        return State.SUCCESS
    return state
