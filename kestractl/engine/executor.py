"""The executor: a decision over one execution's rows — which task runs to create, start, dispatch
to a worker, or end, and when the execution itself ends. It mutates the in-memory execution and
reports what changed; the runner persists that and acts on it. It never asks a task its type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kestractl.engine.flowable import FlowableView, RunIndex, list_state, resolve, sequential_nexts
from kestractl.errors import KestraError
from kestractl.expressions import is_truthy
from kestractl.inputs import type_output
from kestractl.model import Attempt, Execution, Flow, State, StateInfo, TaskRun, utcnow
from kestractl.tasks.base import RunContext, Task


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
        self.tasks = {t.id: t for top in [*flow.tasks, *flow.errors] for t in top.walk()}
        self._context = context

    def step(self, execution: Execution, now: datetime | None = None) -> Step:
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
        while self._pass(execution, step, now):
            pass
        self._maybe_pause(execution, step, now)
        return step

    def _pass(self, execution: Execution, step: Step, now: datetime) -> bool:
        """One walk over the runs; True when something changed and another walk may decide more."""
        index = RunIndex(execution)
        progress = False
        for run in reversed(execution.task_runs):
            task = self.tasks[run.task_id]
            if run.state.current.is_created():
                progress |= self._start(execution, task, run, step, now)
            elif run.state.current == State.RUNNING and task.is_flowable:
                progress |= self._resolve(execution, task, run, index, step, now)
        if progress:
            return True
        view = FlowableView(execution, None, index, now)
        tasks, errors = resolve(self.flow.tasks), resolve(self.flow.errors)
        nexts = sequential_nexts(view, tasks, errors)
        for run in nexts:
            self._add(execution, run, step)
        if nexts:
            return True
        state = list_state(view, tasks, errors)
        if state is not None:
            self._end(execution, state, step, now)
        return False

    def _add(self, execution: Execution, run: TaskRun, step: Step) -> None:
        execution.task_runs.append(run)
        step.touch(run)

    def _start(self, execution: Execution, task: Task, run: TaskRun, step: Step, now: datetime) -> bool:
        step.touch(run)
        restarted = run.state.current == State.RESTARTED
        try:
            if task.run_if is not None and not is_truthy(self._context(task, run).render(task.run_if)):
                run.state.moved(State.SKIPPED, now)
                return True
            if task.is_flowable and not restarted:
                outputs = task.start(self._context(task, run))  # type: ignore[attr-defined]
                if outputs:
                    run.outputs = outputs
        except KestraError as exc:
            self._context(task, run).error(exc.message)
            run.state.moved(State.FAILED, now)
            return True
        run.state.moved(State.RUNNING, now)
        if task.is_flowable:
            return True
        run.attempts.append(Attempt(StateInfo.new(State.RUNNING, now)))
        (step.subflows if task.is_executable else step.dispatch).append(run)
        return False

    def _resolve(
        self, execution: Execution, task: Task, run: TaskRun, index: RunIndex, step: Step, now: datetime
    ) -> bool:
        view = FlowableView(execution, run, index, now, lambda: self._context(task, run))
        try:
            nexts = task.resolve_nexts(view)  # type: ignore[attr-defined]
            state = None if nexts else task.resolve_state(view)  # type: ignore[attr-defined]
        except KestraError as exc:
            self._context(task, run).error(exc.message)
            nexts, state = [], State.FAILED
        for child in nexts:
            self._add(execution, child, step)
            index.add(child)
        if nexts:
            return True
        if state is None:
            return False
        run.state.moved(state, now)
        step.touch(run)
        step.timers += [(run.id, kind, due) for kind, due in view.timers]
        return True

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
