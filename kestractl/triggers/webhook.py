"""Webhook triggers as pure decisions: which trigger a key opens, and the variables a request gives."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from kestractl.expressions import render
from kestractl.model import Flow
from kestractl.triggers.validate import WEBHOOK


def find_trigger(flow: Flow, key: str) -> dict[str, Any] | None:
    """The enabled Webhook trigger whose (rendered, trimmed) key equals `key`, compared in constant time."""
    found = None
    for trigger in flow.triggers:
        if trigger.get("type") not in WEBHOOK or trigger.get("disabled"):
            continue
        expected = render(str(trigger.get("key", "")), {"flow": {"id": flow.id, "namespace": flow.namespace}})
        if hmac.compare_digest(expected.strip().encode(), key.encode()):
            found = trigger
    return found


def parse_body(body: bytes) -> Any:
    """JSON object or array when the body is one, else the text; None when there is no body."""
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict | list) else text


def header_lists(headers: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Headers as sent plus a lower-case alias, so `trigger.headers['x-team']` finds `X-Team`.

    Kept as plain data: the trigger's variables are stored with the execution as JSON.
    """
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        out.setdefault(name, []).extend(values)
        if name.lower() != name:
            out.setdefault(name.lower(), []).extend(values)
    return out


def trigger_variables(
    body: bytes, headers: Mapping[str, list[str]], parameters: Mapping[str, list[str]]
) -> dict[str, Any]:
    return {"body": parse_body(body), "headers": header_lists(headers), "parameters": dict(parameters)}
