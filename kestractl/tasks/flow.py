"""Kestra's flowable tasks: each owns its children and answers `resolve_nexts` / `resolve_state`.

Decisions that need rendering (an If condition, a Switch value, ForEach values) are made once
in `start` and kept in the run's private `data`, so every later executor pass reads the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from kestractl.errors import KestraError, TaskError
from kestractl.expressions import is_truthy
from kestractl.inputs import java_str
from kestractl.model import Execution, State, TaskRun, label_pairs, label_text
from kestractl.tasks import registry
from kestractl.tasks.base import ExecutableTask, FlowableTask, RunContext, Task
from kestractl.tasks.flowable import (
    NO_TASKS,
    FlowableView,
    ResolvedTask,
    grouped_nexts,
    list_state,
    parallel_nexts,
    resolve,
    sequential_nexts,
)
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.workingdir import TaskFiles

LEGACY = "io.kestra.core.tasks.flows."
ONLY_RUNNABLE = "Only runnable tasks are allowed as children of a WorkingDirectory task"


def concurrency(description: str, default: int) -> Prop:
    """How many children run at once (a static whole number; 0: all)."""
    return Prop(description, type="integer", default=default, dynamic=False)


def _as_is(value: Any) -> Any:
    return value


def static(task: Task, name: str) -> Any:
    """A static property (`dynamic=False`) as declared: its value or default, converted, without rendering."""
    return task.rendered(name, _as_is)


class _ListFlowable(FlowableTask):
    """A flowable whose children are `tasks` (run one after another) plus `errors`."""

    child_lists: ClassVar[tuple[str, ...]] = ("tasks", "errors")
    required: ClassVar[tuple[str, ...]] = ("tasks",)

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Whole-number settings (concurrency) are at least 0."""
        problems = super().validate(spec)
        for name, prop in cls.all_properties().items():
            value = spec.get(name)
            if prop.type == "integer" and isinstance(value, int) and not isinstance(value, bool) and value < 0:
                problems.append(f"{name}: must be a whole number >= 0, not `{value}`")
        return problems

    @property
    def tasks(self) -> list[Task]:
        return self.children.get("tasks", [])

    @property
    def errors(self) -> list[Task]:
        return self.children.get("errors", [])

    def main(self, view: FlowableView) -> list[ResolvedTask]:
        return resolve(self.tasks)

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return sequential_nexts(view, self.main(view), resolve(self.errors))

    def resolve_state(self, view: FlowableView) -> State | None:
        return list_state(view, self.main(view), resolve(self.errors), self.allow_failure, self.allow_warning)


@register
class Sequential(_ListFlowable):
    type_name = "io.kestra.plugin.core.flow.Sequential"
    aliases = (LEGACY + "Sequential",)


@register
class Parallel(_ListFlowable):
    type_name = "io.kestra.plugin.core.flow.Parallel"
    aliases = (LEGACY + "Parallel",)
    properties = {"concurrent": concurrency("How many children run at once (0: all).", 0)}

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return parallel_nexts(view, self.main(view), resolve(self.errors), static(self, "concurrent"))


@register
class AllowFailure(_ListFlowable):
    """Deprecated wrapper: a failure inside ends WARNING and does not reach the outer `errors`."""

    type_name = "io.kestra.plugin.core.flow.AllowFailure"
    aliases = (LEGACY + "AllowFailure",)

    def resolve_state(self, view: FlowableView) -> State | None:
        state = super().resolve_state(view)
        if state is not None and list_state(view, self.main(view), NO_TASKS) in (State.FAILED, State.KILLED):
            return State.WARNING
        return state


@register
class WorkingDirectory(TaskFiles, _ListFlowable):
    """Sequential children that share one local directory (see the runner): namespace files and `inputFiles`
    are laid into it when it starts, `outputFiles` stored from it when its children are done."""

    type_name = "io.kestra.plugin.core.flow.WorkingDirectory"
    aliases = (LEGACY + "WorkingDirectory", LEGACY + "Worker")
    properties = {
        "cache": Prop(
            "Kestra's cache of files between executions (`patterns`, `ttl`): accepted, nothing is cached here.",
            type="object",
            dynamic=False,
        )
    }
    outputs = {"outputFiles": "The stored `outputFiles`: name → `kestra://` URI."}
    shares_working_directory = True

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Kestra runs the children on one worker, in one directory: only runnable tasks fit there."""
        problems = super().validate(spec)
        for index, child in enumerate(spec.get("tasks") or []):
            kind = registry.resolve(str(child.get("type"))) if isinstance(child, dict) else None
            if kind is not None and (kind.is_flowable or kind.is_executable):
                problems.append(f"tasks[{index}]: {ONLY_RUNNABLE}")
        return problems

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        wd = ctx.working_directory()
        self.prepare_files(ctx, wd, {"workingDir": str(wd)})
        return None

    def resolve_state(self, view: FlowableView) -> State | None:
        state = super().resolve_state(view)
        if state is not None and view.run is not None and self.props.get("outputFiles") is not None:
            ctx = view.context()
            files = self.collect_outputs(ctx, ctx.working_directory(), {"workingDir": str(ctx.working_directory())})
            view.run.outputs = {**(view.run.outputs or {}), "outputFiles": files}
        return state


@register
class If(FlowableTask):
    type_name = "io.kestra.plugin.core.flow.If"
    aliases = (LEGACY + "If",)
    properties = {"condition": Prop("Run `then` when this renders truthy, else `else`.", "string", required=True)}
    outputs = {"evaluationResult": "Whether the condition was truthy."}
    child_lists = ("then", "else", "errors")
    required = ("then",)

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"evaluationResult": is_truthy(ctx.render(self.spec["condition"]))}

    def _branch(self, view: FlowableView) -> list[ResolvedTask]:
        taken = (view.run.outputs or {}).get("evaluationResult") if view.run else False
        return resolve(self.children.get("then" if taken else "else", []))

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return sequential_nexts(view, self._branch(view), resolve(self.children.get("errors", [])))

    def resolve_state(self, view: FlowableView) -> State | None:
        errors = resolve(self.children.get("errors", []))
        return list_state(view, self._branch(view), errors, self.allow_failure, self.allow_warning)


@register
class Switch(FlowableTask):
    type_name = "io.kestra.plugin.core.flow.Switch"
    aliases = (LEGACY + "Switch",)
    properties = {
        "value": Prop("The rendered value that picks a case.", type="string", required=True),
        "cases": Prop("A map of value to the list of tasks run for it.", type="object", dynamic=False),
        "defaults": Prop("The tasks run when no case matches.", type="array", dynamic=False),
    }
    outputs = {"value": "The rendered value.", "defaults": "Whether the defaults ran (no case matched)."}

    @classmethod
    def child_specs(cls, spec: dict[str, Any]) -> dict[str, Any]:
        out = {f"cases.{key}": tasks for key, tasks in (spec.get("cases") or {}).items()}
        out.update({k: spec[k] for k in ("defaults", "errors") if spec.get(k) is not None})
        return out

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Some tasks to run: a case or defaults."""
        problems = super().validate(spec)
        if isinstance(spec.get("cases") or {}, dict) and not any(spec.get("cases") or {}) and not spec.get("defaults"):
            problems.append("cases: No task defined, neither cases or default have any tasks")
        return problems

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.render(self.spec["value"])
        value = value if isinstance(value, str) else json.dumps(value)
        if f"cases.{value}" not in self.children and "defaults" not in self.children:
            raise TaskError(f"Switch has no case for value `{value}` and no defaults")
        return {"value": value, "defaults": f"cases.{value}" not in self.children}

    def _branch(self, view: FlowableView) -> list[ResolvedTask]:
        outputs = view.run.outputs or {} if view.run else {}
        key = "defaults" if outputs.get("defaults") else f"cases.{outputs.get('value')}"
        return resolve(self.children.get(key, []))

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return sequential_nexts(view, self._branch(view), resolve(self.children.get("errors", [])))

    def resolve_state(self, view: FlowableView) -> State | None:
        errors = resolve(self.children.get("errors", []))
        return list_state(view, self._branch(view), errors, self.allow_failure, self.allow_warning)


def each_values(ctx: RunContext, raw: Any) -> list[str]:
    """Kestra's `resolveEachTasks`: render, parse JSON lists, de-duplicate, refuse nulls."""
    if isinstance(raw, str):
        rendered = ctx.render(raw)
        try:
            values = json.loads(rendered) if isinstance(rendered, str) else rendered
        except json.JSONDecodeError as exc:
            raise TaskError(f"Unable to parse each values `{rendered}` as a JSON list: {exc.msg}") from None
    elif isinstance(raw, list):
        values = [ctx.render(v) if isinstance(v, str | dict | list) else v for v in raw]
    else:
        raise TaskError(f"Unknown value type: {type(raw).__name__}")
    if not isinstance(values, list):
        raise TaskError(f"Each values must be a list, got `{values}`")
    nulls = sum(1 for v in values if v is None)
    if nulls:
        raise TaskError(f"Found '{nulls}' null values on Each, with values={java_str(values)}")
    texts = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values]
    return list(dict.fromkeys(texts))  # distinct by their text, so 1 and true stay apart


class _Each(_ListFlowable):
    """Children run once per value; each child run carries its value (`taskrun.value`)."""

    values_key = "values"

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        assert ctx.task_run is not None
        ctx.task_run.data["values"] = each_values(ctx, self.spec[self.values_key])
        return None

    def main(self, view: FlowableView) -> list[ResolvedTask]:
        return view.each_children(self.tasks, view.data.get("values", []))


@register
class ForEach(_Each):
    type_name = "io.kestra.plugin.core.flow.ForEach"
    properties = {
        "values": Prop("The values to iterate over (a list, or a JSON array as text).", required=True),
        "concurrencyLimit": concurrency("How many iterations run at once (0: all).", 1),
    }

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        limit = static(self, "concurrencyLimit")
        if limit == 1:
            return super().resolve_nexts(view)
        return grouped_nexts(view, self.main(view), resolve(self.errors), limit)


@register
class EachSequential(_Each):
    type_name = "io.kestra.plugin.core.flow.EachSequential"
    properties = {"value": Prop("Deprecated: the values to iterate over, one after another.", required=True)}
    aliases = (LEGACY + "EachSequential",)
    values_key = "value"


@register
class EachParallel(_Each):
    type_name = "io.kestra.plugin.core.flow.EachParallel"
    properties = {
        "value": Prop("Deprecated: the values to iterate over, in parallel.", required=True),
        "concurrent": concurrency("How many iterations run at once (0: all).", 0),
    }
    aliases = (LEGACY + "EachParallel",)
    values_key = "value"

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return parallel_nexts(view, self.main(view), resolve(self.errors), static(self, "concurrent"))


@register
class Dag(_ListFlowable):
    """Children start when every task they `dependsOn` has ended."""

    type_name = "io.kestra.plugin.core.flow.Dag"
    aliases = (LEGACY + "Dag",)
    properties = {"concurrent": concurrency("How many children run at once (0: all).", 0)}

    @classmethod
    def child_specs(cls, spec: dict[str, Any]) -> dict[str, Any]:
        items = spec.get("tasks") or []
        out: dict[str, Any] = {"tasks": [i.get("task") if isinstance(i, dict) else i for i in items]}
        if spec.get("errors") is not None:
            out["errors"] = spec["errors"]
        return out

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Each item a {task, dependsOn} whose dependencies exist, without a cycle."""
        problems = super().validate(spec)
        items = [i for i in spec.get("tasks") or [] if isinstance(i, dict)]
        ids = {(i.get("task") or {}).get("id") for i in items if isinstance(i.get("task"), dict)}
        for n, item in enumerate(items):
            if not isinstance(item.get("task"), dict):
                problems.append(f"tasks[{n}].task: required (Dag items are {{task, dependsOn}})")
            if not isinstance(item.get("dependsOn") or [], list):
                problems.append(f"tasks[{n}].dependsOn: must be a list of task ids")
                continue
            for dep in item.get("dependsOn") or []:
                if dep not in ids:
                    problems.append(f"tasks[{n}].dependsOn: unknown task `{dep}`")
        if not problems and _has_cycle(items):
            problems.append("tasks: dependsOn forms a cycle")
        return problems

    def _depends(self) -> dict[str, list[str]]:
        return {i["task"]["id"]: list(i.get("dependsOn") or []) for i in self.spec.get("tasks") or []}

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        depends = self._depends()

        def ready(task: ResolvedTask, runs: list[TaskRun]) -> bool:
            done = {r.task_id for r in runs if r.state.current.is_terminated()}
            return all(dep in done for dep in depends.get(task.task.id, []))

        return parallel_nexts(view, self.main(view), resolve(self.errors), static(self, "concurrent"), ready)


def _has_cycle(items: list[dict[str, Any]]) -> bool:
    graph = {i["task"]["id"]: list(i.get("dependsOn") or []) for i in items}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> bool:
        if node in done:
            return False
        if node in visiting:
            return True
        visiting.add(node)
        cyclic = any(visit(dep) for dep in graph.get(node, []))
        visiting.discard(node)
        done.add(node)
        return cyclic

    return any(visit(node) for node in graph)


@register
class Pause(_ListFlowable):
    """Pause the execution until resumed, or until `delay` passes; `timeout` fails it."""

    type_name = "io.kestra.plugin.core.flow.Pause"
    aliases = (LEGACY + "Pause",)
    properties = {
        "delay": Prop("Resume by itself after this duration.", type="duration"),
        "onResume": Prop("Inputs a user gives when resuming, declared like flow inputs.", "array", dynamic=False),
    }
    outputs = {"onResume": "The inputs given when it was resumed."}
    required: ClassVar[tuple[str, ...]] = ()

    def on_timer(self, run: TaskRun, kind: str) -> State:
        return self.on_resume(run) if kind == "RESUME" else State.FAILED

    def on_resume(self, run: TaskRun, inputs: dict[str, Any] | None = None) -> State:
        run.data["resumed"] = True
        if inputs:
            run.outputs = {**(run.outputs or {}), "onResume": inputs}
        return State.RUNNING

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        return super().resolve_nexts(view) if view.data.get("resumed") else []

    def resolve_state(self, view: FlowableView) -> State | None:
        if not view.data.get("resumed"):  # the durations are rendered now, as the pause starts
            if self.spec.get("delay") is not None:
                view.set_timer("RESUME", view.context().render_duration(self.spec["delay"], "delay"))
            elif self.spec.get("timeout") is not None:
                view.set_timer("PAUSE_TIMEOUT", view.context().render_duration(self.spec["timeout"], "timeout"))
            return State.PAUSED
        return super().resolve_state(view)


@register
class Subflow(ExecutableTask):
    """Start an execution of another flow; by default wait for it and take its state."""

    type_name = "io.kestra.plugin.core.flow.Subflow"
    aliases = (LEGACY + "Subflow", LEGACY + "Flow")
    properties = {
        "namespace": Prop("The namespace of the flow to start.", type="string", required=True),
        "flowId": Prop("The id of the flow to start.", type="string", required=True),
        "revision": Prop("The revision to start (the latest by default).", type="integer"),
        "inputs": Prop("The inputs passed to the subflow (each value rendered).", type="object", dynamic=False),
        "labels": Prop("Labels added to the subflow's execution (a map or a list of key/value)."),
        "wait": Prop("Wait for the subflow to end.", type="boolean", default=True),
        "transmitFailed": Prop("Fail this task when the subflow fails (needs `wait`).", type="boolean", default=True),
        "inheritLabels": Prop("Give the subflow this execution's labels.", type="boolean", default=False),
        "outputs": Prop("Deprecated: values extracted from the subflow's context.", type="object"),
    }
    outputs = {
        "executionId": "The subflow execution's id.",
        "state": "The subflow execution's final state (when waiting).",
        "outputs": "The subflow's outputs (when waiting).",
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """`labels` a map or a list of {key, value}."""
        problems = super().validate(spec)
        labels = spec.get("labels")
        pairs_ok = isinstance(labels, list) and all(isinstance(i, dict) and "key" in i for i in labels)
        if labels is not None and not isinstance(labels, dict) and not pairs_ok:
            problems.append("labels: must be a map or a list of {key, value}")
        return problems

    def subflow_requests(self, ctx: RunContext) -> list[dict[str, Any]]:
        spec = self.spec
        return [
            {
                "namespace": ctx.render(spec["namespace"]),
                "flowId": ctx.render(spec["flowId"]),
                "revision": spec.get("revision"),
                "inputs": ctx.render(spec.get("inputs") or {}),
                "labels": render_labels(ctx, spec.get("labels")),
                "inheritLabels": bool(spec.get("inheritLabels", False)),
            }
        ]

    def subflows_started(self, run: TaskRun, child_ids: list[str]) -> State | None:
        if self.spec.get("wait", True):
            return None
        run.outputs = {"executionId": child_ids[0]}
        return State.SUCCESS

    def subflow_ended(
        self, run: TaskRun, child: Execution, ctx: Callable[[], RunContext], child_ctx: Callable[[], RunContext]
    ) -> State | None:
        outputs: dict[str, Any] = {"executionId": child.id, "state": child.state.current.value}
        run.outputs = outputs
        extracted = self.spec.get("outputs")
        if child.outputs:
            outputs["outputs"] = child.outputs
        elif extracted:
            try:
                rendered = child_ctx().render(extracted)
            except KestraError as exc:
                ctx().log("WARN", f"Failed to extract outputs with the error: '{exc.message}'")
                return State.WARNING if self.allow_failure else State.FAILED
            outputs["outputs"] = rendered
            for key, value in rendered.items():  # older flows read them as outputs.<task>.<key>
                outputs.setdefault(key, value)
        return self._state(child.state.current)

    def _state(self, child_state: State) -> State:
        return child_final_state(self, child_state)


def render_labels(ctx: RunContext, labels: Any) -> list[tuple[str, str]]:
    """Task `labels` (map or list of key/value) rendered as pairs."""
    return [(key, label_text(ctx.render(value))) for key, value in label_pairs(labels) or []]


def child_final_state(task: Task, child_state: State) -> State:
    """Kestra's `ExecutableUtils.guessState`: with transmitFailed, a failed child fails the task."""
    if bool(task.spec.get("transmitFailed", True)) and (
        child_state.is_failed() or child_state in (State.WARNING, State.PAUSED)
    ):
        state = State.WARNING if task.allow_failure and child_state.is_failed() else child_state
        return State.SUCCESS if state == State.WARNING and task.allow_warning else state
    return State.SUCCESS
