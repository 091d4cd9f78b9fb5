"""Microsoft Teams, Google Chat and Discord webhooks, and their `*Execution` messages as Kestra's templates
(`teams-template.peb`, `google-chat-template.peb`, `discord-template.peb` with `DiscordTemplate`'s embeds) build them.
"""

from __future__ import annotations

from typing import Any

from kestractl.plugin import Prop, RunContext, TaskError, register
from kestractl.plugins.notifications.summary import PROPERTIES as EXECUTION_PROPERTIES
from kestractl.plugins.notifications.summary import Summary, summarise
from kestractl.plugins.notifications.webhook import Webhook, parse_json

EMBED_KEYS = ("title", "websiteUrl", "description", "thumbnail", "authorName", "color", "footer")


def headline(summary: Summary) -> str:
    """The Slack-style headline Teams and Google Chat templates share (their link is empty when unknown)."""
    return f"*<{summary.link or ''}|{summary.title}>*\n> {summary.outcome}"


@register
class TeamsIncomingWebhook(Webhook):
    """Send a Microsoft Teams message through an incoming webhook."""

    type_name = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"


@register
class TeamsExecution(TeamsIncomingWebhook):
    """Send a Microsoft Teams message card that summarises an execution."""

    type_name = "io.kestra.plugin.notifications.teams.TeamsExecution"
    properties = {
        "themeColor": Prop("The card's theme colour (hexadecimal).", type="string", default="0076D7"),
        "activityTitle": Prop("The title of the card's section.", type="string"),
        "activitySubtitle": Prop("The subtitle of the card's section.", type="string"),
        **EXECUTION_PROPERTIES,
    }

    def message(self, ctx: RunContext) -> Any:
        summary = summarise(ctx)
        section = {name: ctx.prop(name) for name in ("activityTitle", "activitySubtitle") if ctx.prop(name)}
        facts = [
            ("Namespace", summary.namespace),
            ("Flow ID", summary.flow_id),
            ("Execution ID", summary.id),
            ("Execution Status", summary.state),
            ("Final task ID", summary.last_task_id),
        ]
        section["facts"] = [{"name": name, "value": value} for name, value in facts]
        section["markdown"] = True
        card = {"@type": "MessageCard", "@context": "http://schema.org/extensions"}
        return {**card, "themeColor": ctx.prop("themeColor"), "summary": headline(summary), "sections": [section]}


@register
class GoogleChatIncomingWebhook(Webhook):
    """Send a Google Chat message through an incoming webhook."""

    type_name = "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook"


@register
class GoogleChatExecution(GoogleChatIncomingWebhook):
    """Send a Google Chat message that summarises an execution."""

    type_name = "io.kestra.plugin.notifications.google.GoogleChatExecution"
    properties = {"text": Prop("A text that replaces the summary.", type="string"), **EXECUTION_PROPERTIES}

    def message(self, ctx: RunContext) -> Any:
        summary = summarise(ctx)
        facts = (
            f"Namespace {summary.namespace}, Flow ID {summary.flow_id}, Execution ID {summary.id}, "
            f"Execution Status {summary.state}, Final task ID {summary.last_task_id}"
        )
        return {"text": ctx.prop("text") or f"Kestra Google notification: {facts}. {headline(summary)}"}


@register
class DiscordIncomingWebhook(Webhook):
    """Send a Discord message through a webhook."""

    type_name = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook"

    def message(self, ctx: RunContext) -> Any:
        return parse_json(ctx.prop("payload"), "payload")


@register
class DiscordExecution(DiscordIncomingWebhook):
    """Send a Discord message whose embed summarises an execution (a non-blank `payload` is sent instead)."""

    type_name = "io.kestra.plugin.notifications.discord.DiscordExecution"
    properties = {
        "username": Prop("The webhook's user name.", type="string"),
        "avatarUrl": Prop("The webhook's avatar URL.", type="string"),
        "content": Prop("The message's content.", type="string"),
        "embedList": Prop(f"Embeds: maps of {', '.join(EMBED_KEYS)} (`[r, g, b]`).", type="array"),
        **EXECUTION_PROPERTIES,
    }

    def message(self, ctx: RunContext) -> Any:
        if (ctx.prop("payload") or "").strip():
            return super().message(ctx)
        summary = summarise(ctx)
        link = f"\n\n[Link to the Execution page]({summary.link})" if summary.link else ""
        description = (
            f"Namespace: {summary.namespace}\nFlow ID: {summary.flow_id}\nExecution ID: {summary.id}\n"
            f"Execution Status: {summary.state} \nFinal task ID: {summary.last_task_id} {link}"
        )
        template = {"description": description, "footer": {"text": summary.outcome}}
        embeds = [embed(item, ctx.prop("avatarUrl")) for item in ctx.prop("embedList") or []]
        embeds = [{**embeds[0], **template}, *embeds[1:]] if embeds else [template]
        extras = {"username": ctx.prop("username"), "avatar_url": ctx.prop("avatarUrl"), "content": ctx.prop("content")}
        return {"embeds": embeds, "tts": False, **{key: value for key, value in extras.items() if value is not None}}


def embed(item: Any, avatar_url: str | None) -> dict[str, Any]:
    """One `embedList` entry in Discord's embed shape."""
    if not isinstance(item, dict) or set(item) - set(EMBED_KEYS):
        raise TaskError(f"embedList: each embed is a map of {', '.join(EMBED_KEYS)}, not `{item}`")
    found: dict[str, Any] = {key: item[key] for key in ("title", "description") if item.get(key) is not None}
    if item.get("websiteUrl"):
        found["url"] = item["websiteUrl"]
    if item.get("thumbnail"):
        found["thumbnail"] = {"url": item["thumbnail"]}
    if item.get("authorName"):
        author = {"name": item["authorName"], "url": item.get("websiteUrl"), "icon_url": avatar_url}
        found["author"] = {key: value for key, value in author.items() if value is not None}
    if item.get("color") is not None:
        found["color"] = rgb(item["color"])
    if item.get("footer"):
        found["footer"] = {"text": item["footer"]}
    return found


def rgb(color: Any) -> int:
    """`[r, g, b]` as Discord's integer colour (0 when shorter)."""
    try:
        parts = [int(part) for part in color]
    except (TypeError, ValueError):
        raise TaskError(f"embedList.color: expected [red, green, blue], not `{color}`") from None
    return (parts[0] << 16) + (parts[1] << 8) + parts[2] if len(parts) >= 3 else 0
