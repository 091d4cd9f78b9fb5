"""The email itself: addresses, html and plain text as alternatives, images the html refers to as `cid:NAME`,
attachments read from internal storage; and `MailExecution`'s body, the content of Kestra's `mail-template.hbs.peb`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from kestractl.plugin import RunContext, TaskError
from kestractl.plugins.notifications.summary import Summary

DEFAULT_CONTENT_TYPE = "application/octet-stream"
PARAGRAPH = '<p style="font-family: sans-serif; font-size: 14px; margin: 0 0 15px;">{}</p>'


@dataclass(frozen=True)
class Attachment:
    name: str
    uri: str
    content_type: str = DEFAULT_CONTENT_TYPE


def addresses(text: str | None) -> list[str]:
    """`a@x; b@y` (or comma-separated) as a list."""
    return [part.strip() for part in re.split(r"[;,]", text or "") if part.strip()]


def build(ctx: RunContext, html: str | None, text: str) -> EmailMessage:
    """The message from the task's properties, with the given bodies."""
    message = EmailMessage()
    sender = ctx.prop("from")
    message["From"] = sender
    message["To"] = ", ".join(addresses(ctx.prop("to")))
    if ctx.prop("cc"):
        message["Cc"] = ", ".join(addresses(ctx.prop("cc")))
    if ctx.prop("subject") is not None:
        message["Subject"] = ctx.prop("subject")
    message["Return-Receipt-To"] = sender
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    _embed(ctx, message, attachments(ctx.prop("embeddedImages"), "embeddedImages"))
    for item in attachments(ctx.prop("attachments"), "attachments"):
        maintype, subtype = _content_type(item)
        message.add_attachment(_read(ctx, item), maintype=maintype, subtype=subtype, filename=item.name)
    return message


def attachments(value: Any, name: str) -> list[Attachment]:
    """A list of `{name, uri, contentType}` maps, or that list (or one map) as JSON text, as Kestra accepts it."""
    if value is None or isinstance(value, str) and not value.strip():
        return []
    if isinstance(value, str):
        value = _json(value, name)
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TaskError(f"{name}: expected a list of maps with `name`, `uri` and `contentType`")
    return [_attachment(item, name) for item in items]


def execution_html(summary: Summary) -> str:
    """The body of Kestra's execution email: title with the coloured state, message, outcome, link, fields."""
    colour = summary.colour("green", "orange", "red")
    state = f'<span style="color: {colour};">{summary.state}</span>'
    parts = [f"[{summary.namespace}] {summary.flow_id} ➛ {state}"]
    parts += [summary.custom_message] if summary.custom_message else []
    failed = summary.failed_task_id
    outcome = "Succeeded" if failed is None else f"Failed on task <code>{failed}</code> "
    parts.append(f"{outcome} after {summary.duration}")
    parts += [f'<a href="{summary.link}" target="_blank">See details</a>'] if summary.link else []
    fields = [("Namespace", summary.namespace), ("Flow", summary.flow_id), ("Execution", summary.id)]
    fields += [("Status", summary.state)] + ([("Final task ID", summary.last_task_id)] if summary.last_task else [])
    fields += [(str(key), value) for key, value in summary.custom_fields.items()]
    parts += [f"<strong>{key} :</strong> {value}" for key, value in fields]
    body = "\n".join(PARAGRAPH.format(part) for part in parts)
    title = f"<title>Flow [{summary.namespace}] {summary.flow_id} execution</title>"
    return f'<!doctype html>\n<html>\n<head><meta charset="UTF-8">{title}</head>\n<body>\n{body}\n</body>\n</html>\n'


def _embed(ctx: RunContext, message: EmailMessage, images: list[Attachment]) -> None:
    """Images become related parts of the html body, found by `cid:` and their name."""
    if not images:
        return
    html = message.get_body(("html",))
    if not isinstance(html, EmailMessage):
        raise TaskError("embeddedImages: the images are shown by the html body, and `htmlTextContent` is not set")
    for image in images:
        maintype, subtype = _content_type(image)
        data = _read(ctx, image)
        html.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{image.name}>", filename=image.name)


def _attachment(item: dict[str, Any], name: str) -> Attachment:
    if not item.get("name") or not item.get("uri"):
        raise TaskError(f"{name}: each one needs `name` and `uri`, not `{item}`")
    content_type = str(item.get("contentType") or DEFAULT_CONTENT_TYPE)
    return Attachment(str(item["name"]), str(item["uri"]), content_type)


def _json(text: str, name: str) -> Any:
    try:
        value = json.loads(text)
        return json.loads(value) if isinstance(value, str) else value  # a JSON string holding the JSON
    except ValueError as error:
        raise TaskError(f"{name}: not valid JSON ({error})") from None


def _content_type(item: Attachment) -> tuple[str, str]:
    maintype, _, subtype = item.content_type.partition("/")
    if not maintype or not subtype:
        raise TaskError(f"contentType: `{item.content_type}` of `{item.name}` is not a MIME type (type/subtype)")
    return maintype, subtype.split(";")[0].strip()


def _read(ctx: RunContext, item: Attachment) -> bytes:
    return ctx.storage.read_bytes(item.uri)
