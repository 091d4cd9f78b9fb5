"""`io.kestra.plugin.core.flow.LoopUntil` (once `WaitFor`): run `tasks` again and again, `interval` apart, until
`condition` renders truthy or `checkFrequency`'s maximums are reached.

Each iteration's child runs carry the iteration number (`taskrun.iteration`), so a pass only looks at its own
runs; later iterations' outputs replace earlier ones in `outputs`. Waiting between two passes is a timer while
the run stays RUNNING, so it survives a restart like any other timer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kestractl.expressions import is_truthy
from kestractl.model import FAILED_STATES, State, TaskRun
from kestractl.tasks.base import FlowableTask, RunContext, Task, duration_problems, dynamic
from kestractl.tasks.execution import render_text
from kestractl.tasks.flowable import FlowableView, ResolvedTask, final_state, resolve
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

CONTINUE = "CONTINUE_FLOWABLE"
FREQUENCY_KEYS = {"maxIterations", "maxDuration", "interval"}


@register
class LoopUntil(FlowableTask):
    type_name = "io.kestra.plugin.core.flow.LoopUntil"
    aliases = ("io.kestra.plugin.core.flow.WaitFor",)
    child_lists = ("tasks", "errors")
    required = ("tasks",)
    properties: ClassVar[dict[str, Prop]] = {
        "condition": Prop(
            "The condition that ends the loop once it renders truthy (checked after each iteration).",
            type="string",
            required=True,
        ),
        "failOnMaxReached": Prop(
            "Whether the task fails once maxIterations or maxDuration is reached.", type="boolean", default=False
        ),
        "checkFrequency": Prop(
            "{maxIterations, maxDuration, interval}: limits (none by default) and the wait between iterations "
            "(default PT1M).",
            type="object",
            dynamic=False,
        ),
    }
    outputs = {"iterationCount": "The number of the current (or last) iteration, from 1."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The limits inside `checkFrequency`."""
        problems = super().validate(spec)
        frequency = spec.get("checkFrequency")
        if not isinstance(frequency, dict):
            return problems
        problems += [f'checkFrequency: Unrecognized field "{key}"' for key in set(frequency) - FREQUENCY_KEYS]
        problems += [f"checkFrequency.{p}" for p in duration_problems(frequency, "maxDuration", "interval")]
        most = frequency.get("maxIterations")
        if most is not None and not dynamic(most) and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
            problems.append(f"checkFrequency.maxIterations: must be a whole number >= 1, not `{most}`")
        return problems

    @property
    def _frequency(self) -> dict[str, Any]:
        return self.spec.get("checkFrequency") or {}

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        assert ctx.task_run is not None
        ctx.task_run.data["iteration"] = 1
        return {"iterationCount": 1}

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        if view.data.get("waiting") or view.killing:
            return []
        runs = self._runs(view)
        if any(not r.state.current.is_terminated() for r in runs):
            return []
        started = {r.task_id for r in runs}
        for task in self._current(runs):
            if task.task.id not in started:
                return [view.new_run(task, iteration=view.data.get("iteration", 1))]
        return []

    def resolve_state(self, view: FlowableView) -> State | None:
        runs = self._runs(view)
        if view.data.get("waiting") or any(not r.state.current.is_terminated() for r in runs):
            return None
        main_ids = {t.task.id for t in resolve(self.tasks)}
        main = [r for r in runs if r.task_id in main_ids]
        if len(main) == len(main_ids) and not any(r.state.current in FAILED_STATES for r in main):
            ctx = view.context()
            if not self._reached(ctx, view, warn=False) and not is_truthy(ctx.render(self.spec["condition"])):
                view.data["waiting"] = True
                view.set_timer(CONTINUE, ctx.render_duration(self._frequency.get("interval", "PT1M"), "interval"))
                return None
            if self._reached(ctx, view, warn=True) and ctx.prop("failOnMaxReached"):
                return State.FAILED
        return final_state(main, self.allow_failure, self.allow_warning)

    def on_timer(self, run: TaskRun, kind: str) -> State:
        """The interval passed: the next iteration starts."""
        run.data["iteration"] = iteration = run.data.get("iteration", 1) + 1
        run.data.pop("waiting", None)
        run.outputs = {**(run.outputs or {}), "iterationCount": iteration}
        return State.RUNNING

    @property
    def tasks(self) -> list[Task]:
        return self.children.get("tasks", [])

    def _runs(self, view: FlowableView) -> list[TaskRun]:
        """This iteration's child runs."""
        iteration = view.data.get("iteration", 1)
        return [r for r in view.index.children.get(view.parent_id, []) if r.iteration == iteration]

    def _current(self, runs: list[TaskRun]) -> list[ResolvedTask]:
        """The main tasks, or the `errors` tasks once one of this iteration's runs failed."""
        errors = resolve(self.children.get("errors", []))
        error_ids = {t.task.id for t in errors}
        if any(r.state.current in FAILED_STATES or r.task_id in error_ids for r in runs):
            return errors
        return resolve(self.tasks)

    def _reached(self, ctx: RunContext, view: FlowableView, warn: bool) -> bool:
        """`maxIterations` or `maxDuration` reached (Kestra's `reachedMaximums`)."""
        most = self._frequency.get("maxIterations")
        if most is not None and view.data.get("iteration", 1) >= int(render_text(ctx, most) or 0):
            if warn:
                ctx.log("WARN", "Max iterations reached")
            return True
        longest = self._frequency.get("maxDuration")
        created = view.run.state.start_date if view.run else None
        if longest is not None and created is not None:
            if created + ctx.render_duration(longest, "maxDuration") < view.now:
                if warn:
                    ctx.log("WARN", "Max duration reached")
                return True
        return False
