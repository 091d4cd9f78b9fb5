"""The executor: a decision over one execution's rows — which task runs to create, start, dispatch
to a worker, or end, and when the execution itself ends. It mutates the in-memory execution and
reports what changed; the runner persists that and acts on it. It never asks a task its type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kestractl.errors import KestraError
from kestractl.expressions import is_truthy
from kestractl.inputs import type_output
from kestractl.model import Attempt, Execution, Flow, State, StateInfo, TaskRun, utcnow, worst_state
from kestractl.tasks.base import FlowableTask, RunContext, Task
from kestractl.tasks.flowable import (
    NO_TASKS,
    FlowableView,
    RunIndex,
    list_state,
    resolve,
    sequential_nexts,
)

# A runaway loop must fail its execution, not fill the memory and the store.
MAX_TASK_RUNS = 100_000


@dataclass
class Step:
    """What one executor pass decided."""

    changed: dict[str, TaskRun] = field(default_factory=dict)
    dispatch: list[TaskRun] = field(default_factory=list)
    subflows: list[TaskRun] = field(default_factory=list)
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)
    execution_changed: bool = False

    def touch(self, run: TaskRun) -> None:
        self.changed[run.id] = run


# Builds the RunContext for (task, run); run None means the execution's own context (flow outputs).
ContextFactory = Callable[[Task | None, TaskRun | None], RunContext]


class Executor:
    def __init__(self, flow: Flow, context: ContextFactory) -> None:
        self.flow = flow
        self.tasks: dict[str, Task] = flow.tasks_by_id
        self._context = context
        self._indexes: dict[str, RunIndex] = {}

    def step(self, execution: Execution, touched: list[TaskRun] | None = None, now: datetime | None = None) -> Step:
        """Decide what follows from `touched` runs (changed since the last step); None: look at everything."""
        now = now or utcnow()
        step = Step()
        current = execution.state.current
        if current.is_created() or current == State.QUEUED:
            step.execution_changed = execution.state.moved(State.RUNNING, now)
        if execution.state.current == State.KILLING:
            self._kill(execution, step, now)
            return step
        if execution.state.current.is_terminated():
            return step
        index = self._index(execution, fresh=touched is None)
        if touched is None:
            to_start = [r for r in execution.task_runs if r.state.current.is_created()]
            dirty = {
                None,
                *(
                    r.id
                    for r in execution.task_runs
                    if r.state.current == State.RUNNING and self.tasks[r.task_id].is_flowable
                ),
            }
        else:
            to_start = [r for r in touched if r.state.current.is_created()]
            dirty = {r.parent_task_run_id for r in touched}
            dirty |= {r.id for r in touched if r.state.current == State.RUNNING and self.tasks[r.task_id].is_flowable}
        self._work(execution, index, to_start, dirty, step, now)
        if not step.dispatch and not step.subflows:
            self._maybe_pause(execution, step, now)
        return step

    def _index(self, execution: Execution, fresh: bool) -> RunIndex:
        """The run index kept between steps; rebuilt for a full look (a restart changes ended runs) and when
        runs were added or removed elsewhere."""
        index = self._indexes.get(execution.id)
        if fresh or index is None or index.size != len(execution.task_runs):
            index = self._indexes[execution.id] = RunIndex(execution)
        return index

    def _work(
        self,
        execution: Execution,
        index: RunIndex,
        to_start: list[TaskRun],
        dirty: set[str | None],
        step: Step,
        now: datetime,
    ) -> None:
        """Start new runs and re-resolve the parents whose children changed, until nothing moves."""
        while (to_start or dirty) and not execution.state.current.is_terminated():
            while to_start:
                run = to_start.pop(0)
                task = self.tasks[run.task_id]
                self._start(execution, task, run, step, now)
                if run.state.current.is_terminated():
                    dirty.add(run.parent_task_run_id)
                elif task.is_flowable and run.state.current == State.RUNNING:
                    dirty.add(run.id)
            if not dirty:
                break
            parent_id = dirty.pop()
            nexts, state_changed = self._resolve_parent(execution, index, parent_id, step, now)
            to_start += nexts
            if state_changed and parent_id is not None:
                dirty.add(index.by_id[parent_id].parent_task_run_id)

    def _resolve_parent(
        self, execution: Execution, index: RunIndex, parent_id: str | None, step: Step, now: datetime
    ) -> tuple[list[TaskRun], bool]:
        if parent_id is not None:
            run = index.by_id.get(parent_id)
            if run is None:
                return [], False
            if run.state.current != State.RUNNING:
                return [], run.state.current.is_terminated()  # already decided: let its own parent look
            task = self.tasks[run.task_id]
            if not task.is_flowable:
                return [], False
            return self._resolve(execution, task, run, index, step, now)
        view = FlowableView(execution, None, index, now)
        nexts, state = self._flow_lists(view, step)
        for run in nexts:
            self._add(execution, run, index, step)
        if state is not None and not self._in_flight(execution):
            self._end(execution, state, step, now)
        return nexts, False

    def _flow_lists(self, view: FlowableView, step: Step) -> tuple[list[TaskRun], State | None]:
        """The flow's tasks (or its errors); then `finally`, whatever happened; then `afterExecution`, once the
        state the execution ends in is decided (its failures do not change it). New runs, or the final state."""
        tasks, errors = resolve(self.flow.tasks), resolve(self.flow.errors)
        nexts = sequential_nexts(view, tasks, errors)
        state = None if nexts else list_state(view, tasks, errors)
        if state is None:
            return nexts, None
        nexts, ending = _then(view, self.flow.finally_, state)
        if ending is None:
            return nexts, None
        if view.execution.ending != ending and self.flow.after_execution:
            view.execution.ending = ending
            step.execution_changed = True
        nexts, after = _then(view, self.flow.after_execution, ending)
        return nexts, None if after is None else ending

    def _in_flight(self, execution: Execution) -> bool:
        """Runs still working (a failed Parallel's siblings): the execution ends after them."""
        return any(
            r.state.current == State.RUNNING and not self.tasks[r.task_id].is_flowable for r in execution.task_runs
        )

    def _add(self, execution: Execution, run: TaskRun, index: RunIndex, step: Step) -> None:
        execution.task_runs.append(run)
        index.add(run)
        step.touch(run)

    def _start(self, execution: Execution, task: Task, run: TaskRun, step: Step, now: datetime) -> None:
        step.touch(run)
        restarted = run.state.current == State.RESTARTED
        try:
            if task.run_if is not None and not is_truthy(self._context(task, run).render(task.run_if)):
                run.state.moved(State.SKIPPED, now)
                return
            if isinstance(task, FlowableTask) and not restarted:
                outputs = task.start(self._context(task, run))
                if outputs:
                    run.outputs = outputs
        except KestraError as exc:
            self._context(task, run).error(exc.message)
            run.state.moved(State.FAILED, now)
            return
        run.state.moved(State.RUNNING, now)
        if task.is_flowable:
            return
        run.attempts.append(Attempt(StateInfo.new(State.RUNNING, now)))
        (step.subflows if task.is_executable else step.dispatch).append(run)

    def _resolve(
        self, execution: Execution, task: Task, run: TaskRun, index: RunIndex, step: Step, now: datetime
    ) -> tuple[list[TaskRun], bool]:
        assert isinstance(task, FlowableTask)
        view = FlowableView(execution, run, index, now, lambda: self._context(task, run))
        try:
            nexts = task.resolve_nexts(view)
            state = None if nexts else task.resolve_state(view)
        except KestraError as exc:
            self._context(task, run).error(exc.message)
            nexts, state = [], State.FAILED
        if len(execution.task_runs) + len(nexts) > MAX_TASK_RUNS:
            self._context(task, run).error(f"an execution may hold at most {MAX_TASK_RUNS:,} task runs")
            nexts, state = [], State.FAILED
        for child in nexts:
            self._add(execution, child, index, step)
        if view.timers:  # a wait, while RUNNING too (LoopUntil): the run's data says so, so it is stored with it
            step.timers += [(run.id, kind, due) for kind, due in view.timers]
            step.touch(run)
        if nexts or state is None:
            return nexts, False
        run.state.moved(state, now)
        step.touch(run)
        return [], True

    def _end(self, execution: Execution, state: State, step: Step, now: datetime) -> None:
        if self.flow.outputs:
            ctx = self._context(None, None)
            try:
                execution.outputs = {o.id: type_output(o.type, ctx.render(o.value)) for o in self.flow.outputs}
            except KestraError as exc:
                ctx.error(f"Failed to render the flow outputs: {exc.message}")
                execution.outputs = None
                state = State.FAILED
        execution.state.moved(state, now)
        step.execution_changed = True

    def _maybe_pause(self, execution: Execution, step: Step, now: datetime) -> None:
        """PAUSED when a run waits for a resume and nothing else can move."""
        if execution.state.current.is_terminated():
            return
        states = {r.state.current for r in execution.task_runs}
        busy = any(s.is_created() or s == State.RETRYING for s in states) or any(
            r.state.current == State.RUNNING and not self.tasks[r.task_id].is_flowable for r in execution.task_runs
        )
        if State.PAUSED in states and not busy:
            step.execution_changed |= execution.state.moved(State.PAUSED, now)

    def _kill(self, execution: Execution, step: Step, now: datetime) -> None:
        """Everything not running in a worker ends KILLED; the execution once nothing runs."""
        in_flight = False
        for run in execution.task_runs:
            task = self.tasks[run.task_id]
            if run.state.current.is_terminated():
                continue
            if run.state.current == State.RUNNING and not task.is_flowable and not task.is_executable:
                in_flight = True
                continue
            run.state.moved(State.KILLED, now)
            step.touch(run)
        if not in_flight:
            execution.state.moved(State.KILLED, now)
            step.execution_changed = True


def _then(view: FlowableView, tasks: list[Task], state: State) -> tuple[list[TaskRun], State | None]:
    """`tasks` one after another once `state` is decided: new runs, or the worse state once they ended."""
    resolved = resolve(tasks)
    if not resolved:
        return [], state
    nexts = sequential_nexts(view, resolved, NO_TASKS)
    if nexts:
        return nexts, None
    end = list_state(view, resolved, NO_TASKS)
    return [], None if end is None else worst_state([state, end])
