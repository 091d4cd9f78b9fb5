"""Kestra's core runnable tasks: Log, Return, Echo, OutputValues, Fail, Sleep."""

from __future__ import annotations

from typing import Any

from kestractl.errors import TaskError
from kestractl.expressions import is_truthy
from kestractl.model import LOG_LEVELS
from kestractl.tasks.base import Killed, RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

LEVEL = Prop("The log level.", type="string", default="INFO", values=tuple(LOG_LEVELS))


@register
class Log(RunnableTask):
    """Log a message (or each message of a list) at a level."""

    inline = True
    pure = True
    type_name = "io.kestra.plugin.core.log.Log"
    properties = {
        "message": Prop("The message (or list of messages) to log.", required=True),
        "level": LEVEL,
    }
    aliases = ("io.kestra.core.tasks.log.Log",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        level = ctx.prop("level")
        messages = self.spec["message"]
        for message in messages if isinstance(messages, list) else [messages]:
            ctx.log(level, str(ctx.render(message)))
        return None


@register
class Return(RunnableTask):
    """Render `format` and expose it as `outputs.<id>.value`."""

    inline = True
    pure = True
    type_name = "io.kestra.plugin.core.debug.Return"
    properties = {"format": Prop("The text to render; becomes `outputs.<id>.value`.", type="string")}
    outputs = {"value": "The rendered `format`."}
    aliases = ("io.kestra.core.tasks.debugs.Return",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.render(self.spec.get("format"))
        ctx.log("DEBUG", str(value))
        return {"value": value}


@register
class Echo(RunnableTask):
    """Deprecated: log `format` at `level`."""

    inline = True
    pure = True
    type_name = "io.kestra.plugin.core.debug.Echo"
    properties = {"format": Prop("The text to render and log.", type="string", required=True), "level": LEVEL}
    aliases = ("io.kestra.core.tasks.debugs.Echo",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.log(ctx.prop("level"), str(ctx.render(self.spec["format"])))
        return None


@register
class OutputValues(RunnableTask):
    """Expose rendered `values` as `outputs.<id>.values`."""

    inline = True
    pure = True
    type_name = "io.kestra.plugin.core.output.OutputValues"
    properties = {
        "values": Prop("The values to expose as `outputs.<id>.values` (rendered recursively).", required=True)
    }
    outputs = {"values": "The rendered `values`."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"values": ctx.render(self.spec.get("values") or {})}


@register
class Fail(RunnableTask):
    """Fail the task, or only when `condition` renders truthy."""

    inline = True
    pure = True
    type_name = "io.kestra.plugin.core.execution.Fail"
    properties = {
        "condition": Prop("Fail only when this renders truthy (always fail when absent).", type="string"),
        "errorMessage": Prop("The error message.", type="string", default="Task failure"),
    }
    aliases = ("io.kestra.core.tasks.executions.Fail",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        condition = self.spec.get("condition")
        if condition is not None and not is_truthy(ctx.render(condition)):
            return None
        raise TaskError(str(ctx.prop("errorMessage")))


@register
class Sleep(RunnableTask):
    """Wait for `duration`; a kill or timeout interrupts it."""

    type_name = "io.kestra.plugin.core.flow.Sleep"
    properties = {"duration": Prop("How long to wait.", type="duration", required=True)}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        if ctx.stop.wait(max(0.0, ctx.prop("duration").total_seconds())):
            raise Killed()
        return None
