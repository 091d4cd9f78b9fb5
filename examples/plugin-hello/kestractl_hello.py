"""An example kestractl plugin: `io.kestra.plugin.hello.Greet` renders a greeting, logs it and returns it."""

from __future__ import annotations

from typing import Any

from kestractl.plugin import Prop, RunContext, RunnableTask, register


@register
class Greet(RunnableTask):
    """Greet someone, as many times as asked."""

    type_name = "io.kestra.plugin.hello.Greet"
    properties = {
        "name": Prop("Who to greet.", type="string", required=True),
        "times": Prop("How many times to greet.", type="integer", default=1),
        "style": Prop("How to greet.", type="string", default="PLAIN", values=("PLAIN", "LOUD")),
    }
    outputs = {"greeting": "The greeting, once.", "count": "How many times it was logged."}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        greeting = f"Hello, {ctx.prop('name')}!"
        if ctx.prop("style") == "LOUD":
            greeting = greeting.upper()
        for _ in range(ctx.prop("times")):
            ctx.info(greeting)
        return {"greeting": greeting, "count": ctx.prop("times")}
