"""Kestra's execution tasks (`io.kestra.plugin.core.execution.*`): assertions, labels, variables, exit, kill,
resume, count and purge.

Tasks that change their own execution (Labels, SetVariables, UnsetVariables, Exit, Kill, Resume) only record
what they ask in `ctx.update`; the runner applies it with their result, as Kestra's executor applies an
`ExecutionUpdatableTask`. Tasks about other executions go through `ctx.services`, never the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from kestractl.errors import KestraError, TaskError
from kestractl.expressions import is_truthy
from kestractl.model import ExecutionQuery, State, deep_merge, label_pairs, label_text
from kestractl.tasks.base import RunContext, RunnableTask, dynamic
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

PREFIX = "io.kestra.plugin.core.execution."
LEGACY = "io.kestra.core.tasks.executions."
SYSTEM_PREFIX = "system."
EXIT_STATES = {
    "SUCCESS": State.SUCCESS,
    "WARNING": State.WARNING,
    "KILLED": State.KILLED,
    "FAILED": State.FAILED,
    "CANCELED": State.CANCELLED,
}


def render_text(ctx: RunContext, value: Any) -> str | None:
    return None if value is None else str(ctx.render(value))


def render_date(ctx: RunContext, value: Any, name: str) -> datetime | None:
    """A date property (Java's `ZonedDateTime.parse`); a date without a zone is taken as UTC."""
    text = render_text(ctx, value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TaskError(f"{name}: `{text}` is not an ISO-8601 date with a zone (e.g. 2024-01-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def render_list(ctx: RunContext, value: Any, name: str) -> list[str] | None:
    """A list of strings, written as a list or as an expression that renders to a JSON list."""
    if value is None:
        return None
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except json.JSONDecodeError:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"{name}: must be a list, not `{rendered}`")
    return [str(item) for item in rendered]


def render_states(ctx: RunContext, value: Any, name: str = "states") -> list[str] | None:
    states = render_list(ctx, value, name)
    for state in states or []:
        if state not in State.__members__:
            raise TaskError(f"{name}: `{state}` is not a state ({', '.join(State.__members__)})")
    return states


def state_problems(spec: dict[str, Any], name: str = "states") -> list[str]:
    """Deploy-time check of each static state of a list of states."""
    value = spec.get(name)
    if not isinstance(value, list):
        return []
    bad = [str(s) for s in value if not dynamic(s) and str(s) not in State.__members__]
    return [f"{name}: `{s}` is not a state ({', '.join(State.__members__)})" for s in bad]


@register
class Assert(RunnableTask):
    """Render each condition; any falsy one fails the task with "N assertion(s) failed!"."""

    inline = True
    pure = True
    type_name = PREFIX + "Assert"
    properties: ClassVar[dict[str, Prop]] = {
        "conditions": Prop(
            "List of assertion conditions, each must render truthy ('', 0, -0 and false are falsy).",
            type="array",
            required=True,
            dynamic=False,
        ),
        "errorMessage": Prop("Optional error message added to the failure.", type="string"),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        failed = sum(0 if self._holds(ctx, str(c)) else 1 for c in self.spec["conditions"])
        ctx.metric("success", "counter", len(self.spec["conditions"]) - failed)
        ctx.metric("failed", "counter", failed)
        if failed:
            message = render_text(ctx, self.spec.get("errorMessage"))
            summary = f"{failed} assertion{'s' if failed > 1 else ''} failed!"
            raise TaskError(f"{summary} {message}" if message else summary)
        return None

    @staticmethod
    def _holds(ctx: RunContext, condition: str) -> bool:
        try:
            rendered = ctx.render(condition)
        except KestraError as exc:  # a render error counts as a failed assertion, as in Kestra
            ctx.error(f"Assertion `{condition}` failed, failed to render `{exc.message}`")
            return False
        if not is_truthy(rendered):
            ctx.error(f"Assertion `{condition}` failed!")
            return False
        return True


@register
class Exit(RunnableTask):
    """End the execution in `state`; KILLED kills what still runs, any other state leaves it running."""

    inline = True
    type_name = PREFIX + "Exit"
    properties: ClassVar[dict[str, Prop]] = {
        "state": Prop("The execution exit state.", type="string", default="SUCCESS", values=tuple(EXIT_STATES)),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.update.end_state = EXIT_STATES[ctx.prop("state")]
        if ctx.update.end_state == State.KILLED:
            ctx.update.kill = False
        return None


@register
class Kill(RunnableTask):
    """Kill the current execution, and its subflow executions with `propagateKill`."""

    inline = True
    type_name = PREFIX + "Kill"
    properties: ClassVar[dict[str, Prop]] = {
        "propagateKill": Prop(
            "Whether to also kill the child executions (subflows) of this execution.", type="boolean", default=False
        ),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.update.end_state = State.KILLED
        ctx.update.kill = ctx.prop("propagateKill")
        return None


@register
class Labels(RunnableTask):
    """Add or override labels of the current execution; `system.` labels are Kestra's own."""

    inline = True
    type_name = PREFIX + "Labels"
    aliases = (LEGACY + "Labels",)
    properties: ClassVar[dict[str, Prop]] = {
        "labels": Prop(
            "Labels to add to the current execution: a map, a list of {key, value}, or a JSON map expression.",
            required=True,
        ),
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """A map or a list of {key, value} (or an expression)."""
        problems = super().validate(spec)
        labels = spec.get("labels")
        if labels is not None and not isinstance(labels, str) and label_pairs(labels) is None:
            problems.append("labels: must be a map, a list of {key, value} or an expression")
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        labels = self._labels(ctx)
        for key, value in labels:
            if key.startswith(SYSTEM_PREFIX):
                raise TaskError(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
        ctx.update.labels += labels
        return None

    def _labels(self, ctx: RunContext) -> list[tuple[str, str]]:
        raw = self.spec["labels"]
        if isinstance(raw, str):
            rendered = ctx.render(raw)
            try:
                raw = json.loads(rendered) if isinstance(rendered, str) else rendered
            except json.JSONDecodeError:
                raise TaskError(f"labels: `{rendered}` is not a JSON map of labels") from None
        pairs = label_pairs(raw)
        if pairs is None:
            raise TaskError(f"Unknown value type: {type(raw).__name__}")
        return [(str(ctx.render(key)), self._value(ctx, value)) for key, value in pairs]

    @staticmethod
    def _value(ctx: RunContext, value: Any) -> str:
        if isinstance(value, dict):  # a map value is stored as its JSON text
            return json.dumps(ctx.render(value), separators=(",", ":"))
        return label_text(ctx.render(value) if isinstance(value, str) else value)


@register
class SetVariables(RunnableTask):
    """Merge rendered `variables` into the execution's `vars` (deep merge)."""

    inline = True
    type_name = PREFIX + "SetVariables"
    properties: ClassVar[dict[str, Prop]] = {
        "variables": Prop(
            "The variables to merge into the execution's `vars` (a map, rendered).", type="object", required=True
        ),
        "overwrite": Prop(
            "Whether existing variables may be overwritten (false fails on an existing key).",
            type="boolean",
            default=True,
        ),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        variables = self._variables(ctx)
        overwrite = ctx.prop("overwrite")

        def edit(current: dict[str, Any]) -> None:
            existing = [key for key in variables if key in current]
            if existing and not overwrite:
                raise TaskError(
                    "`overwrite` is set to false and the following variables already exist: " + ",".join(existing)
                )
            current.update(deep_merge(current, variables))

        ctx.update.variables.append(edit)
        return None

    def _variables(self, ctx: RunContext) -> dict[str, Any]:
        rendered = ctx.render(self.spec["variables"])
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError:
                pass
        if not isinstance(rendered, dict):
            raise TaskError(f"variables: must render to a map, not `{rendered}`")
        return rendered


@register
class UnsetVariables(RunnableTask):
    """Remove variables (dotted paths reach into nested maps) from the execution's `vars`."""

    inline = True
    type_name = PREFIX + "UnsetVariables"
    properties: ClassVar[dict[str, Prop]] = {
        "variables": Prop("The variables to remove: a list of names, dotted for nested maps (`a.b`).", required=True),
        "ignoreMissing": Prop(
            "Whether a missing variable is ignored (false: it fails the task).", type="boolean", default=False
        ),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        paths = render_list(ctx, self.spec["variables"], "variables") or []
        ignore_missing = ctx.prop("ignoreMissing")

        def edit(current: dict[str, Any]) -> None:
            for path in paths:
                _unset(current, path, ignore_missing)

        ctx.update.variables.append(edit)
        return None


def _unset(variables: dict[str, Any], path: str, ignore_missing: bool) -> None:
    *parents, name = path.split(".")
    node: Any = variables
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and name in node:
        del node[name]
    elif not ignore_missing:
        raise TaskError(f"Unable to unset the variable `{path}`: it does not exist (set ignoreMissing to skip it)")


@register
class Resume(RunnableTask):
    """Resume a PAUSED execution: `executionId`, else the latest paused one of `namespace`/`flowId`."""

    inline = True
    type_name = PREFIX + "Resume"
    properties: ClassVar[dict[str, Prop]] = {
        "executionId": Prop("The execution to resume (default: the current one).", type="string"),
        "namespace": Prop("The namespace of the flow whose paused execution to resume (with flowId).", type="string"),
        "flowId": Prop("The flow whose paused execution to resume (with namespace).", type="string"),
        "inputs": Prop("Inputs passed to the execution when it is resumed (its onResume inputs).", type="object"),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        target = self._target(ctx)
        inputs = ctx.render(self.spec.get("inputs")) or None
        if inputs is not None and not isinstance(inputs, dict):
            raise TaskError(f"inputs: must be a map, not `{inputs}`")
        ctx.update.resume = (target, inputs)
        return None

    def _target(self, ctx: RunContext) -> str:
        execution_id = render_text(ctx, self.spec.get("executionId"))
        namespace = render_text(ctx, self.spec.get("namespace"))
        flow_id = render_text(ctx, self.spec.get("flowId"))
        if execution_id:
            ctx.services.find_execution(execution_id)
            return execution_id
        if namespace and flow_id:
            paused = ctx.services.paused_execution(namespace, flow_id)
            if paused is None:
                raise TaskError(f"No paused execution found for the flow {namespace}.{flow_id}")
            return paused.id
        return ctx.execution.id


class _Dated(RunnableTask):
    """A task about the executions of a period: `startDate`, `endDate`, `states`."""

    properties: ClassVar[dict[str, Prop]] = {
        "startDate": Prop("Only executions started after this date (ISO-8601).", type="string"),
        "endDate": Prop("Only executions started before this date (ISO-8601).", type="string"),
        "states": Prop("Only executions in these states.", type="array"),
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Each state of `states`."""
        return super().validate(spec) + state_problems(spec)

    def query(self, ctx: RunContext, **filters: Any) -> ExecutionQuery:
        return ExecutionQuery(
            start=render_date(ctx, self.spec.get("startDate"), "startDate"),
            end=render_date(ctx, self.spec.get("endDate"), "endDate"),
            states=render_states(ctx, self.spec.get("states")),
            **filters,
        )


@register
class Count(_Dated):
    """Count the executions of flows (or namespaces) per flow; keep the rows where `expression` is true."""

    type_name = PREFIX + "Count"
    aliases = (LEGACY + "Counts", PREFIX + "Counts")
    properties: ClassVar[dict[str, Prop]] = {
        "flows": Prop(
            "A list of flows ({namespace, flowId}) to count; if not set, namespaces must be.",
            type="array",
            dynamic=False,
        ),
        "namespaces": Prop("A list of namespaces whose flows' executions are counted (or a JSON list expression)."),
        "startDate": Prop("The start date (ISO-8601).", type="string", required=True),
        "expression": Prop(
            "The expression each flow's `count` must make true to be kept, e.g. `{{ count == 0 }}`.",
            type="string",
            required=True,
        ),
    }
    outputs = {"results": "The kept rows: {namespace, flowId, count}.", "total": "The sum of the kept counts."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Each item of `flows` names a namespace and a flowId."""
        problems = super().validate(spec)
        flows = spec.get("flows")
        named = {"namespace", "flowId"}
        if isinstance(flows, list) and not all(isinstance(f, dict) and named <= set(f) for f in flows):
            problems.append("flows: must be a list of {namespace, flowId}")
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        flows = self.spec.get("flows")
        namespaces = render_list(ctx, self.spec.get("namespaces"), "namespaces")
        if flows is None and namespaces is None:
            raise TaskError("You must provide a list of flows or namespaces.")
        pairs = [(str(ctx.render(f["namespace"])), str(ctx.render(f["flowId"]))) for f in flows or []]
        query = self.query(ctx, flows=pairs or None, namespaces=namespaces)
        counts = ctx.services.count_executions(query)
        kept = [
            {"namespace": ns, "flowId": flow_id, "count": count}
            for ns, flow_id, count in counts
            if str(ctx.render(self.spec["expression"], {"count": count})) == "true"
        ]
        return {"results": kept, "total": sum(r["count"] for r in kept)}


@register
class PurgeExecutions(_Dated):
    """Delete ended executions of a period: their rows, logs and internal-storage files."""

    type_name = PREFIX + "PurgeExecutions"
    aliases = ("io.kestra.core.tasks.storages.Purge", "io.kestra.plugin.core.storage.Purge")
    properties: ClassVar[dict[str, Prop]] = {
        "namespace": Prop("Only the executions of this namespace (and its child namespaces).", type="string"),
        "flowId": Prop("Only the executions of this flow.", type="string"),
        "endDate": Prop("Only executions started before this date (ISO-8601).", type="string", required=True),
        "purgeExecution": Prop("Whether to purge the executions themselves.", type="boolean", default=True),
        "purgeLog": Prop("Whether to purge the executions' logs.", type="boolean", default=True),
        "purgeMetric": Prop(
            "Whether to purge the executions' metrics (none are stored here).", type="boolean", default=True
        ),
        "purgeStorage": Prop(
            "Whether to purge the executions' files in internal storage.", type="boolean", default=True
        ),
    }
    outputs = {
        "executionsCount": "The number of executions purged.",
        "logsCount": "The number of logs purged.",
        "storagesCount": "The number of internal-storage files purged.",
        "metricsCount": "The number of metrics purged (always 0: none are stored).",
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        query = self.query(
            ctx,
            namespace=render_text(ctx, self.spec.get("namespace")),
            flow_id=render_text(ctx, self.spec.get("flowId")),
        )
        return ctx.services.purge_executions(
            query,
            executions=ctx.prop("purgeExecution"),
            logs=ctx.prop("purgeLog"),
            storage=ctx.prop("purgeStorage"),
        )
