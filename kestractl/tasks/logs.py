"""Kestra's log tasks that read or delete stored logs (`io.kestra.plugin.core.log.Fetch`, `PurgeLogs`); they
reach the logs through `ctx.services`, never the store."""

from __future__ import annotations

from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.ion import write_lines
from kestractl.model import LOG_LEVELS, Execution, ExecutionQuery, LogEntry
from kestractl.tasks.base import RunContext, RunnableTask, dynamic
from kestractl.tasks.execution import render_date, render_list, render_text
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

PREFIX = "io.kestra.plugin.core.log."


def _level(value: Any, name: str) -> str:
    level = str(value).upper().replace("WARNING", "WARN")
    if level not in LOG_LEVELS:
        raise TaskError(f"{name}: must be one of {', '.join(LOG_LEVELS)}, not `{value}`")
    return level


def _level_problems(spec: dict[str, Any], name: str) -> list[str]:
    """Each static level of a list of levels."""
    value = spec.get(name)
    problems = []
    for item in value if isinstance(value, list) else []:
        if item is not None and not dynamic(item):
            try:
                _level(item, name)
            except TaskError as exc:
                problems.append(exc.message)
    return problems


@register
class Fetch(RunnableTask):
    """Write the logs of an execution (this one by default) to an ION file, one log entry per line."""

    type_name = PREFIX + "Fetch"
    aliases = ("io.kestra.core.tasks.log.Fetch",)
    properties: ClassVar[dict[str, Prop]] = {
        "executionId": Prop("The execution whose logs to fetch (default: the current one).", type="string"),
        "namespace": Prop("The namespace of the execution's flow (default: the current flow's).", type="string"),
        "flowId": Prop("The execution's flow (default: the current flow).", type="string"),
        "tasksId": Prop("Only the logs of these task ids (a list, or a JSON list expression)."),
        "level": Prop("The minimum log level.", type="string", default="INFO", values=tuple(LOG_LEVELS)),
    }
    outputs = {"uri": "The ION file of the logs, one log entry per line.", "size": "The number of log entries."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        level = ctx.prop("level")
        entries = self._logs(ctx, level, render_list(ctx, self.spec.get("tasksId"), "tasksId"))
        path, uri = ctx.output_file("logs.ion")
        with path.open("w", encoding="utf-8") as fh:
            size = write_lines((self._row(e) for e in entries), fh, omit_nulls=True)
        return {"uri": uri, "size": size}

    def _logs(self, ctx: RunContext, level: str, task_ids: list[str] | None) -> list[LogEntry]:
        """Kestra looks the logs up by namespace, flow and execution: another flow's execution has none."""
        execution_id = render_text(ctx, self.spec.get("executionId")) or ctx.execution.id
        namespace = render_text(ctx, self.spec.get("namespace")) or ctx.execution.namespace
        flow_id = render_text(ctx, self.spec.get("flowId")) or ctx.execution.flow_id
        try:
            execution: Execution = ctx.services.find_execution(execution_id)
        except TaskError:
            return []
        if (execution.namespace, execution.flow_id) != (namespace, flow_id):
            return []
        return ctx.services.fetch_logs(execution, level, task_ids)

    @staticmethod
    def _row(entry: LogEntry) -> dict[str, Any]:
        return {**entry.to_api(), "timestamp": entry.timestamp}


@register
class PurgeLogs(RunnableTask):
    """Delete the logs of a period, optionally of one namespace, flow or set of levels; outputs the count."""

    type_name = PREFIX + "PurgeLogs"
    properties: ClassVar[dict[str, Prop]] = {
        "namespace": Prop("Only the logs of this namespace (and its child namespaces).", type="string"),
        "flowId": Prop("Only the logs of this flow.", type="string"),
        "logLevels": Prop("Only the logs at these levels (a list, or a JSON list expression)."),
        "startDate": Prop("Only the logs written after this date (ISO-8601).", type="string"),
        "endDate": Prop("Only the logs written before this date (ISO-8601).", type="string", required=True),
    }
    outputs = {"count": "The number of logs deleted."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + _level_problems(spec, "logLevels")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        levels = [_level(v, "logLevels") for v in render_list(ctx, self.spec.get("logLevels"), "logLevels") or []]
        query = ExecutionQuery(
            namespace=render_text(ctx, self.spec.get("namespace")),
            flow_id=render_text(ctx, self.spec.get("flowId")),
            start=render_date(ctx, self.spec.get("startDate"), "startDate"),
            end=render_date(ctx, self.spec.get("endDate"), "endDate"),
        )
        return {"count": ctx.services.purge_logs(query, levels or None)}
