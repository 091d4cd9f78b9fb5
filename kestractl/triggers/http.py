"""The polling HTTP trigger (`io.kestra.plugin.core.http.Trigger`): its declaration and the decision a poll
makes. The server's scheduler runs the polls (see `server/polling.py`).

Each poll runs a `Request` with failures allowed and renders `responseCondition` (default
`{{ response.statusCode < 400 }}`) with `response.statusCode`, `response.body` and `response.headers`;
truthy, a new execution starts whose `trigger.*` are the Request's outputs (`uri`, `code`, `headers`, `body`).
"""

from __future__ import annotations

from typing import Any

from kestractl.expressions import is_truthy
from kestractl.tasks.http import PROPERTIES as REQUEST_PROPERTIES
from kestractl.tasks.http import refuse_encryption, request_outputs, request_problems
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.triggers.polling import PollContext, PollingTrigger

TYPES = ("io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger")
DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"


@register
class HttpTrigger(PollingTrigger):
    """Poll an HTTP endpoint; start an execution when the response meets `responseCondition`."""

    type_name = TYPES[0]
    aliases = TYPES[1:]
    properties = {
        **REQUEST_PROPERTIES,
        "interval": Prop("The interval between two polls.", type="duration", default="PT60S", dynamic=False),
        "responseCondition": Prop(
            "The condition on the response that starts a flow.", type="string", default=DEFAULT_CONDITION
        ),
        "encryptBody": Prop(
            "If true, the response body is encrypted in the trigger's outputs (needs an encryption key).",
            type="boolean",
            default=False,
        ),
        "params": Prop("Declared by Kestra's Trigger; not sent (Kestra does not send it either).", type="object"),
    }
    outputs = {
        "uri": "The response body in internal storage.",
        "code": "The status code.",
        "headers": "The response headers.",
        "body": "The response body as text.",
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + request_problems(spec)

    def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        """The Request's outputs (a failed status allowed) when the response condition holds, else None."""
        trigger = self.spec
        spec = {**trigger, "options": {**(trigger.get("options") or {}), "allowFailed": True}}
        refuse_encryption(self.prop(ctx, "encryptBody"))
        outputs = request_outputs(spec, ctx.render, ctx.storage, ctx.log, ctx.stop)
        response = {"statusCode": outputs["code"], "body": outputs.get("body"), "headers": outputs["headers"]}
        condition = trigger.get("responseCondition") or DEFAULT_CONDITION
        return outputs if is_truthy(ctx.render(condition, {"response": response})) else None
