"""Kestra's log tasks that read or delete stored logs (`io.kestra.plugin.core.log.Fetch`, `PurgeLogs`); they
reach the logs through `ctx.services`, never the store."""

from __future__ import annotations

from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.ion import write_lines
from kestractl.model import LOG_LEVELS, Execution, ExecutionQuery, LogEntry
from kestractl.tasks.base import RunContext, RunnableTask, dynamic
from kestractl.tasks.execution import render_date, render_list, render_text
from kestractl.tasks.registry import register

PREFIX = "io.kestra.plugin.core.log."


def _level(value: Any, name: str) -> str:
    level = str(value).upper().replace("WARNING", "WARN")
    if level not in LOG_LEVELS:
        raise TaskError(f"{name}: must be one of {', '.join(LOG_LEVELS)}, not `{value}`")
    return level


def _level_problems(spec: dict[str, Any], name: str, many: bool) -> list[str]:
    value = spec.get(name)
    values = value if many and isinstance(value, list) else [value]
    problems = []
    for item in values:
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
    properties: ClassVar[dict[str, str]] = {
        "executionId": "The execution whose logs to fetch (default: the current one).",
        "namespace": "The namespace of the execution's flow (default: the current flow's).",
        "flowId": "The execution's flow (default: the current flow).",
        "tasksId": "Only the logs of these task ids.",
        "level": "The minimum log level (default INFO).",
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + _level_problems(spec, "level", many=False)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        level = _level(render_text(ctx, self.spec.get("level")) or "INFO", "level")
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
    properties: ClassVar[dict[str, str]] = {
        "namespace": "Only the logs of this namespace (and its child namespaces).",
        "flowId": "Only the logs of this flow.",
        "logLevels": "Only the logs at these levels.",
        "startDate": "Only the logs written after this date (ISO-8601).",
        "endDate": "Only the logs written before this date (ISO-8601).",
    }
    required = ("endDate",)

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + _level_problems(spec, "logLevels", many=True)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        levels = [_level(v, "logLevels") for v in render_list(ctx, self.spec.get("logLevels"), "logLevels") or []]
        query = ExecutionQuery(
            namespace=render_text(ctx, self.spec.get("namespace")),
            flow_id=render_text(ctx, self.spec.get("flowId")),
            start=render_date(ctx, self.spec.get("startDate"), "startDate"),
            end=render_date(ctx, self.spec.get("endDate"), "endDate"),
        )
        return {"count": ctx.services.purge_logs(query, levels or None)}
