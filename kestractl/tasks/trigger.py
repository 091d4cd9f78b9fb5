"""`io.kestra.plugin.core.trigger.Toggle`: turn a flow's trigger off or on at run time (the scheduler honours it)."""

from __future__ import annotations

from typing import Any, ClassVar

from kestractl.tasks.base import RunContext, RunnableTask
from kestractl.tasks.execution import render_text
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register


@register
class Toggle(RunnableTask):
    """Enable or disable a trigger of a flow (the current flow by default)."""

    type_name = "io.kestra.plugin.core.trigger.Toggle"
    aliases = ("io.kestra.core.tasks.trigger.Toggle",)
    properties: ClassVar[dict[str, Prop]] = {
        "namespace": Prop(
            "The namespace of the flow of the trigger to toggle (default: the current flow's).", type="string"
        ),
        "flowId": Prop("The flow of the trigger to toggle (default: the current flow).", type="string"),
        "trigger": Prop("The identifier of the trigger to toggle.", type="string", required=True),
        "enabled": Prop("Whether to enable or disable the trigger.", type="boolean", default=False),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        namespace = render_text(ctx, self.spec.get("namespace")) or ctx.execution.namespace
        flow_id = render_text(ctx, self.spec.get("flowId")) or ctx.execution.flow_id
        trigger = render_text(ctx, self.spec["trigger"]) or ""
        enabled = ctx.prop("enabled")
        ctx.services.toggle_trigger(namespace, flow_id, trigger, enabled)
        ctx.info(f"Trigger {trigger} of {namespace}.{flow_id} {'enabled' if enabled else 'disabled'}")
        return None
