"""Kestra's core runnable tasks: Log, Return, Echo, OutputValues, Fail, Sleep."""

from __future__ import annotations

from typing import Any

from kestractl.durations import is_duration, parse_duration
from kestractl.errors import TaskError
from kestractl.expressions import is_truthy
from kestractl.model import LOG_LEVELS
from kestractl.tasks.base import Killed, RunContext, RunnableTask
from kestractl.tasks.registry import register


def _level_problem(spec: dict[str, Any], key: str = "level") -> list[str]:
    level = spec.get(key)
    if level is not None and str(level).upper().replace("WARNING", "WARN") not in LOG_LEVELS:
        return [f"{key}: must be one of {', '.join(LOG_LEVELS)}, not `{level}`"]
    return []


@register
class Log(RunnableTask):
    """Log a message (or each message of a list) at a level."""

    inline = True
    type_name = "io.kestra.plugin.core.log.Log"
    properties = {
        "message": "The message (or list of messages) to log.",
        "level": "The log level (TRACE … ERROR; INFO by default).",
    }
    aliases = ("io.kestra.core.tasks.log.Log",)
    required = ("message",)

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + _level_problem(spec)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        level = str(self.spec.get("level", "INFO"))
        messages = self.spec["message"]
        for message in messages if isinstance(messages, list) else [messages]:
            ctx.log(level, str(ctx.render(message)))
        return None


@register
class Return(RunnableTask):
    """Render `format` and expose it as `outputs.<id>.value`."""

    inline = True
    type_name = "io.kestra.plugin.core.debug.Return"
    properties = {"format": "The text to render; becomes `outputs.<id>.value`."}
    aliases = ("io.kestra.core.tasks.debugs.Return",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.render(self.spec.get("format"))
        ctx.log("DEBUG", str(value))
        return {"value": value}


@register
class Echo(RunnableTask):
    """Deprecated: log `format` at `level`."""

    inline = True
    type_name = "io.kestra.plugin.core.debug.Echo"
    properties = {"format": "The text to render and log.", "level": "The log level (INFO by default)."}
    aliases = ("io.kestra.core.tasks.debugs.Echo",)
    required = ("format",)

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + _level_problem(spec)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.log(str(self.spec.get("level", "INFO")), str(ctx.render(self.spec["format"])))
        return None


@register
class OutputValues(RunnableTask):
    """Expose rendered `values` as `outputs.<id>.values`."""

    inline = True
    type_name = "io.kestra.plugin.core.output.OutputValues"
    properties = {"values": "The values to expose as `outputs.<id>.values` (rendered recursively)."}
    required = ("values",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"values": ctx.render(self.spec.get("values") or {})}


@register
class Fail(RunnableTask):
    """Fail the task, or only when `condition` renders truthy."""

    inline = True
    type_name = "io.kestra.plugin.core.execution.Fail"
    properties = {
        "condition": "Fail only when this renders truthy (always fail when absent).",
        "errorMessage": "The error message logged (`Task failure` by default).",
    }
    aliases = ("io.kestra.core.tasks.executions.Fail",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        condition = self.spec.get("condition")
        if condition is not None and not is_truthy(ctx.render(condition)):
            return None
        raise TaskError(str(ctx.render(self.spec.get("errorMessage", "Task failure"))))


@register
class Sleep(RunnableTask):
    """Wait for `duration`; a kill or timeout interrupts it."""

    type_name = "io.kestra.plugin.core.flow.Sleep"
    properties = {"duration": "How long to wait (ISO-8601 duration, rendered)."}
    required = ("duration",)

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        problems = super().validate(spec)
        value = spec.get("duration")
        if value is not None and "{{" not in str(value) and not is_duration(value):
            problems.append(f"duration: `{value}` is not an ISO-8601 duration (e.g. PT5S)")
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        try:
            seconds = parse_duration(ctx.render(self.spec["duration"])).total_seconds()
        except ValueError as exc:
            raise TaskError(str(exc)) from None
        if ctx.stop.wait(max(0.0, seconds)):
            raise Killed()
        return None
