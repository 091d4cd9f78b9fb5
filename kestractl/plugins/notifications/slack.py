"""Slack and the chats that take Slack's message shape: Zulip (its Slack-compatible webhook) and Mattermost.

`*Execution` messages are built as Kestra's `slack-template.peb` and `zulip-template.peb` render them: a headline
(`*<link|[ns] flow ➛ STATE>*` and `> Succeeded after …`), Block Kit sections with a Details button, and an
attachment coloured by the state with the execution's fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kestractl.plugin import Prop, RunContext, TaskError, register
from kestractl.plugins.notifications.summary import PROPERTIES as EXECUTION_PROPERTIES
from kestractl.plugins.notifications.summary import Summary, summarise
from kestractl.plugins.notifications.webhook import Webhook, parse_json

MESSAGE_TEXT = Prop(
    "The message as text (Markdown, turned into the chat's markup) or as JSON; ignored when `payload` is set.",
    type="string",
)
# Kestra's legacy-webhook overrides: property → the key the chat reads.
LEGACY = {"channel": "channel", "username": "username", "iconUrl": "icon_url", "iconEmoji": "icon_emoji"}
LEGACY_PROPERTIES = {
    "channel": Prop("The channel to post to (legacy webhooks only; new ones are tied to a channel).", type="string"),
    "username": Prop("The author's name (legacy webhooks only).", type="string"),
    "iconUrl": Prop("The URL of the author's icon (legacy webhooks only).", type="string"),
    "iconEmoji": Prop("The emoji used as the author's icon (legacy webhooks only).", type="string"),
}
SLACK_MARKUP = ((r"\*\*(.*?)\*\*", r"*\1*"), (r"__(.*?)__", r"_\1_"), (r"\[(.*?)\]\((.*?)\)", r"<\2|\1>"))


class TextWebhook(Webhook):
    """A webhook that also takes `messageText`: JSON sent as is, or text sent as `{"text": …}` in the chat's markup."""

    properties = {"messageText": MESSAGE_TEXT}

    def message(self, ctx: RunContext) -> Any:
        payload = ctx.prop("payload")
        if payload is not None:
            return parse_json(payload, "payload")
        text = ctx.prop("messageText")
        if text is None:
            raise TaskError("Either `messageText` or `payload` must be provided")
        try:
            return json.loads(text)
        except ValueError:
            return {"text": self.markup(text)}

    def markup(self, text: str) -> str:
        """Markdown in the chat's markup (Mattermost reads Markdown)."""
        return text


@register
class SlackIncomingWebhook(TextWebhook):
    """Send a Slack message through an incoming webhook."""

    type_name = "io.kestra.plugin.notifications.slack.SlackIncomingWebhook"

    def markup(self, text: str) -> str:
        """Markdown's bold, italic and links in Slack's mrkdwn."""
        for pattern, replacement in SLACK_MARKUP:
            text = re.sub(pattern, replacement, text)
        return text


@register
class SlackExecution(SlackIncomingWebhook):
    """Send a Slack message that summarises an execution: state, duration, link, failed task."""

    type_name = "io.kestra.plugin.notifications.slack.SlackExecution"
    properties = {**LEGACY_PROPERTIES, **EXECUTION_PROPERTIES}

    def message(self, ctx: RunContext) -> Any:
        return {**slack_message(summarise(ctx), custom_fields_last=False), **legacy(ctx)}


@register
class ZulipIncomingWebhook(Webhook):
    """Send a Zulip message through its Slack-compatible incoming webhook."""

    type_name = "io.kestra.plugin.notifications.zulip.ZulipIncomingWebhook"


@register
class ZulipExecution(ZulipIncomingWebhook):
    """Send a Zulip message that summarises an execution."""

    type_name = "io.kestra.plugin.notifications.zulip.ZulipExecution"
    properties = {**LEGACY_PROPERTIES, **EXECUTION_PROPERTIES}

    def message(self, ctx: RunContext) -> Any:
        return {**slack_message(summarise(ctx), custom_fields_last=True), **legacy(ctx)}


@register
class MattermostIncomingWebhook(TextWebhook):
    """Send a Mattermost message through an incoming webhook (Slack's message shape, Markdown text)."""

    type_name = "io.kestra.plugin.notifications.mattermost.MattermostIncomingWebhook"


@register
class MattermostExecution(MattermostIncomingWebhook):
    """Send a Mattermost message that summarises an execution."""

    type_name = "io.kestra.plugin.notifications.mattermost.MattermostExecution"
    properties = {**LEGACY_PROPERTIES, **EXECUTION_PROPERTIES}

    def message(self, ctx: RunContext) -> Any:
        summary = summarise(ctx)
        title = f"**[{summary.title}]({summary.link})**" if summary.link else f"**{summary.title}**"
        lines = [summary.custom_message] if summary.custom_message else []
        text = "\n".join([*lines, title, f"> {summary.outcome}"])
        return {"text": text, "attachments": [attachment(summary, custom_fields_last=False)], **legacy(ctx)}


def slack_message(summary: Summary, custom_fields_last: bool) -> dict[str, Any]:
    """Kestra's Slack template: the headline, its Block Kit sections, and the coloured attachment."""
    title = f"*<{summary.link}|{summary.title}>*" if summary.link else f"*{summary.title}*"
    headline = f"{title}\n> {summary.outcome}"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": headline}}
    if summary.link:
        button = {"type": "plain_text", "text": "Details"}
        section["accessory"] = {"type": "button", "text": button, "url": summary.link}
    custom = summary.custom_message
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": custom}}] if custom else []
    return {"text": headline, "blocks": [*blocks, section], "attachments": [attachment(summary, custom_fields_last)]}


def attachment(summary: Summary, custom_fields_last: bool) -> dict[str, Any]:
    """The attachment with the execution's fields; Zulip's template puts the custom fields after the final task."""
    fields = [
        _field("Namespace", summary.namespace),
        _field("Flow ID", summary.flow_id),
        _field("Execution ID", summary.id),
        _field("Execution Status", summary.state),
    ]
    custom = [_field(str(name), value) for name, value in summary.custom_fields.items()]
    final = [_field("Final task ID", summary.last_task_id or None)]
    fields += final + custom if custom_fields_last else custom + final
    return {"color": summary.colour("good", "warning", "danger"), "fields": fields, "ts": summary.start_timestamp}


def legacy(ctx: RunContext) -> dict[str, Any]:
    """The legacy overrides that are set, under the keys the chat reads."""
    values = {key: ctx.prop(name) for name, key in LEGACY.items()}
    return {key: value for key, value in values.items() if value is not None}


def _field(title: str, value: Any) -> dict[str, Any]:
    return {"title": title, "value": value, "short": True}
