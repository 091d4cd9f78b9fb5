"""The decisions flowable tasks share: which children start next, and what state a list ends in.

These follow Kestra's `FlowableUtils` and `Execution.findTaskDependingFlowState`: a failure in a
list switches it to its `errors` tasks; a list's state comes from its main tasks only.
A `ResolvedTask` is a task bound to a parent run and, for Each children, a value.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kestractl.model import (
    FAILED_STATES,
    TERMINATED_STATES,
    Execution,
    State,
    StateInfo,
    TaskRun,
    new_id,
    utcnow,
    worst_state,
)

if TYPE_CHECKING:
    from kestractl.tasks.base import RunContext, Task


_Key = tuple[str | None, str, str | None]  # (parent task run id, task id, value)


@dataclass(frozen=True)
class ResolvedTask:
    task: Task
    value: str | None = None


@lru_cache(maxsize=65536)
def _resolve(tasks: tuple[Task, ...], value: str | None) -> list[ResolvedTask]:
    return [ResolvedTask(t, value) for t in tasks if not t.disabled]


def resolve(tasks: Iterable[Task], value: str | None = None) -> list[ResolvedTask]:
    """Bind tasks for matching against runs, dropping disabled ones (they never get a run).

    Cached: the executor asks for the same lists at every pass, and the same list object lets `RunIndex`
    keep what it learnt about it. A task's own child list is recognised by identity, without hashing its
    thousand tasks again. Callers must not mutate the result.
    """
    if not tasks:
        return NO_TASKS  # one object for every empty list: a fresh `[]` would be a new list to remember
    known = _by_list.get((id(tasks), value))
    if known is not None and known[0] is tasks:
        return known[1]
    resolved = _resolve(tuple(tasks), value)
    if isinstance(tasks, list):
        if len(_by_list) > 65536:
            _by_list.clear()
        _by_list[(id(tasks), value)] = (tasks, resolved)
    return resolved


_by_list: dict[tuple[int, str | None], tuple[Iterable[Task], list[ResolvedTask]]] = {}
NO_TASKS: list[ResolvedTask] = []


class ListRuns:
    """The runs of one resolved list under one parent, in the list's order, kept up to date as runs are added.

    A long list is looked at after each of its children ends: rescanning it would make a flow of n tasks
    cost n². Runs are only added between two rebuilds of the index, and a terminated run stays terminated
    (a restart rebuilds the index), so the leading terminated runs are `settled` once and never looked at
    again; only the runs after them are.
    """

    __slots__ = ("positions", "resolved", "runs", "settled", "settled_failed", "_at", "_seen")

    def __init__(self, resolved: list[ResolvedTask]) -> None:
        self.resolved = resolved
        self.positions = {(r.task.id, r.value): i for i, r in enumerate(resolved)}
        self.runs: list[TaskRun] = []
        self.settled = 0
        self.settled_failed = False
        self._at: list[int] = []  # the position in `resolved` of each run
        self._seen = 0  # how many of the parent's children were looked at

    def update(self, children: list[TaskRun]) -> None:
        """Take the children added since the last call, then settle the runs that ended."""
        for child in children[self._seen :] if len(children) > self._seen else ():
            at = self.positions.get((child.task_id, child.value))
            if at is None:
                continue
            if not self._at or at > self._at[-1]:
                self._at.append(at)
                self.runs.append(child)
            else:  # out of order (a Dag): insert, and settle again from there
                i = bisect.bisect_left(self._at, at)
                self._at.insert(i, at)
                self.runs.insert(i, child)
                if i < self.settled:
                    self.settled = i
                    self.settled_failed = any(r.state.current in FAILED_STATES for r in self.runs[:i])
        self._seen = len(children)
        runs, settled = self.runs, self.settled
        while settled < len(runs) and runs[settled].state.current in TERMINATED_STATES:
            self.settled_failed |= runs[settled].state.current in FAILED_STATES
            settled += 1
        self.settled = settled

    @property
    def pending(self) -> list[TaskRun]:
        """The runs after the settled ones (the only ones whose state can still change)."""
        return self.runs[self.settled :]

    def any_failed(self) -> bool:
        return self.settled_failed or any(r.state.current in FAILED_STATES for r in self.pending)

    def terminated(self) -> int:
        return self.settled + sum(1 for r in self.pending if r.state.current in TERMINATED_STATES)


class RunIndex:
    """Task runs of one execution by id and by parent; kept between executor passes."""

    def __init__(self, execution: Execution) -> None:
        self.by_id: dict[str, TaskRun] = {}
        self.children: dict[str | None, list[TaskRun]] = {}
        self._lists: dict[tuple[str | None, int], ListRuns] = {}
        self._each: dict[str | None, tuple[tuple[Any, ...], list[ResolvedTask]]] = {}
        for run in execution.task_runs:
            self.add(run)

    @property
    def size(self) -> int:
        return len(self.by_id)

    def add(self, run: TaskRun) -> None:
        self.by_id[run.id] = run
        self.children.setdefault(run.parent_task_run_id, []).append(run)

    def each_children(self, parent_id: str | None, tasks: list[Task], values: list[str]) -> list[ResolvedTask]:
        """An Each run's children for every value, in order: the same list object at every step (so its
        `ListRuns` is kept), held by this index and so freed with the execution."""
        key = (tuple(tasks), tuple(values))
        known = self._each.get(parent_id)
        if known is None or known[0] != key:
            known = self._each[parent_id] = (key, [r for value in values for r in resolve(tasks, value)])
        return known[1]

    def list_runs(self, parent_id: str | None, resolved: list[ResolvedTask]) -> ListRuns:
        """What is known of `resolved`'s runs under `parent_id`, brought up to date."""
        entry = self._lists.get((parent_id, id(resolved)))
        if entry is None or entry.resolved is not resolved:
            entry = self._lists[(parent_id, id(resolved))] = ListRuns(resolved)
        entry.update(self.children.get(parent_id, []))
        return entry


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
        """Runs of these resolved tasks under this parent, in the order of `resolved` (do not mutate)."""
        return self.index.list_runs(self.parent_id, resolved).runs

    def list_runs(self, resolved: list[ResolvedTask]) -> ListRuns:
        return self.index.list_runs(self.parent_id, resolved)

    def each_children(self, tasks: list[Task], values: list[str]) -> list[ResolvedTask]:
        return self.index.each_children(self.parent_id, tasks, values)

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
    if (errors and view.runs_for(errors)) or view.list_runs(tasks).any_failed():
        return errors
    return tasks


def sequential_nexts(view: FlowableView, tasks: list[ResolvedTask], errors: list[ResolvedTask]) -> list[TaskRun]:
    """One task at a time: the first, then the one after the last finished."""
    current = current_tasks(view, tasks, errors)
    if not current or view.killing:
        return []
    known = view.list_runs(current)
    if not known.runs:
        return [view.new_run(current[0])]
    pending = known.pending
    if any(r.state.current in _WAITING for r in pending):
        return []
    ended = [i for i, r in enumerate(pending) if r.state.current in TERMINATED_STATES]
    last = known.settled + ended[-1] if ended else known.settled - 1
    return [view.new_run(current[last + 1])] if 0 <= last and last + 1 < len(current) else []


# A sequential list waits while one of its runs is in one of these states.
_WAITING = frozenset({State.CREATED, State.RESTARTED, State.RUNNING, State.KILLING, State.PAUSED, State.RETRYING})


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
    known = view.list_runs(current)
    runs = known.runs
    if len(runs) >= len(current):  # all started: nothing to look for (a long Parallel, once under way)
        return []
    active = len(runs) - known.terminated()
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
    if current and view.list_runs(current).terminated() < len(current):
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
