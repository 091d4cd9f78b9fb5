"""What every webhook task shares (Kestra's `AbstractHttpOptionsTask`): a JSON POST to the rendered `url` with the
`options` headers and timeouts, and a failure that names the host and the status in one line.

httpx is imported when a message is sent, so importing the plugin costs nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from kestractl.plugin import Prop, RunContext, RunnableTask, TaskError

DEFAULT_READ_TIMEOUT = "PT10S"
DEFAULT_CONNECT_TIMEOUT = "PT30S"
ANSWER_CHARS = 200

OPTIONS = Prop(
    "HTTP client options: `headers` (name → value), `connectTimeout`, `readTimeout` (default PT10S).",
    type="object",
)


class Webhook(RunnableTask):
    """POST `payload` to `url`: the shape of every `*IncomingWebhook` task."""

    properties = {
        "url": Prop("The incoming webhook URL.", type="string", required=True),
        "payload": Prop("The message payload, as JSON text.", type="string"),
        "options": OPTIONS,
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        post(ctx, ctx.prop("url"), self.message(ctx))
        return {}

    def message(self, ctx: RunContext) -> Any:
        """What is sent: the `payload` text as is (Teams, Google Chat, Zulip send it without parsing it)."""
        payload = ctx.prop("payload")
        if payload is None:
            raise TaskError("payload: required")
        return payload


def parse_json(text: str | None, name: str) -> Any:
    """A JSON property's value; one line naming the property when it is not JSON."""
    if text is None:
        raise TaskError(f"{name}: required")
    try:
        return json.loads(text)
    except ValueError as error:
        raise TaskError(f"{name}: not valid JSON ({error})") from None


def post(ctx: RunContext, url: str, message: Any) -> Any:
    """POST `message` (JSON text, or a value to serialise) to `url`; returns the answer's JSON (None if not JSON).
    An unreachable host or a 4xx/5xx answer fails the task with one line naming the host and the status."""
    import httpx

    body = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    options = ctx.prop("options") or {}
    try:
        response = httpx.post(
            url,
            content=body.encode(),
            headers={"Content-Type": "application/json", **_headers(options)},
            timeout=_timeout(ctx, options),
            trust_env=False,
        )
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
        raise TaskError(f"webhook {_host(url)} unreachable: {_reason(error)}") from None
    return _answer(url, response)


def _answer(url: str, response: Any) -> Any:
    text = " ".join(response.text.split())[:ANSWER_CHARS]
    if response.status_code >= 400:
        raise TaskError(f"webhook {_host(url)} answered {response.status_code} {response.reason_phrase}: {text}")
    try:
        return response.json()
    except ValueError:
        return None


def _headers(options: dict[str, Any]) -> dict[str, str]:
    headers = options.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise TaskError("options.headers: expected a map of header names to values")
    return {str(name): str(value) for name, value in (headers or {}).items()}


def _timeout(ctx: RunContext, options: dict[str, Any]) -> Any:
    import httpx

    read = ctx.render_duration(options.get("readTimeout", DEFAULT_READ_TIMEOUT), "options.readTimeout")
    connect = ctx.render_duration(options.get("connectTimeout", DEFAULT_CONNECT_TIMEOUT), "options.connectTimeout")
    return httpx.Timeout(read.total_seconds(), connect=connect.total_seconds())


def _host(url: str) -> str:
    """The host (and port) alone: a webhook URL's path is its secret (Slack, Telegram's bot token)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or url.split("/")[0] or "(no host)"
    except ValueError:
        return "(invalid URL)"


def _reason(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
