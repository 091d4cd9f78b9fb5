"""Telegram: a message sent by a bot (`sendMessage` of the Bot API), and an execution's summary as Kestra's
`telegram-template.peb` writes it. `endpointOverride` points the bot at another API server (a local one in tests).
"""

from __future__ import annotations

from typing import Any

from kestractl.plugin import Prop, RunContext, RunnableTask, TaskError, register
from kestractl.plugins.notifications.summary import PROPERTIES as EXECUTION_PROPERTIES
from kestractl.plugins.notifications.summary import summarise
from kestractl.plugins.notifications.webhook import OPTIONS, post

API = "https://api.telegram.org"
PARSE_MODES = {"HTML": "HTML", "MARKDOWNV2": "MarkdownV2"}


@register
class TelegramSend(RunnableTask):
    """Send a Telegram message to a chat or channel through a bot."""

    type_name = "io.kestra.plugin.notifications.telegram.TelegramSend"
    properties = {
        "token": Prop("The bot's API token.", type="string", required=True),
        "channel": Prop("The chat or channel to send to (its id, or `@name`).", type="string", required=True),
        "payload": Prop("The message text.", type="string"),
        "parseMode": Prop("How Telegram formats the text.", type="string", values=tuple(PARSE_MODES)),
        "endpointOverride": Prop(f"The Bot API's address (default {API}).", type="string"),
        "options": OPTIONS,
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        endpoint = (ctx.prop("endpointOverride") or API).rstrip("/")
        message = {"chat_id": ctx.prop("channel"), "text": self.text(ctx)}
        if ctx.prop("parseMode"):
            message["parse_mode"] = PARSE_MODES[ctx.prop("parseMode")]
        answer = post(ctx, f"{endpoint}/bot{ctx.prop('token')}/sendMessage", message)
        if not (isinstance(answer, dict) and answer.get("ok") is True):
            raise TaskError(f"Unable to send Telegram message: the Bot API did not answer ok ({answer})")
        return {}

    def text(self, ctx: RunContext) -> str:
        payload = ctx.prop("payload")
        if payload is None:
            raise TaskError("payload: required")
        return str(payload)


@register
class TelegramExecution(TelegramSend):
    """Send a Telegram message that summarises an execution."""

    type_name = "io.kestra.plugin.notifications.telegram.TelegramExecution"
    properties = {**EXECUTION_PROPERTIES}

    def text(self, ctx: RunContext) -> str:
        summary = summarise(ctx)
        where = f"{summary.namespace} {summary.flow_id} {summary.id} ➛ {summary.state}"
        return f'"<{where} - Final task ID ➛ {summary.last_task_id}> {summary.outcome} ({summary.link or ""})"'
