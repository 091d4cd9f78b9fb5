"""The polling HTTP trigger (`io.kestra.plugin.core.http.Trigger`) as pure parts: its deploy-time checks and
the decision a poll makes. The server's scheduler runs the polls (see `server/polling.py`).

Each poll runs a `Request` with failures allowed and renders `responseCondition` (default
`{{ response.statusCode < 400 }}`) with `response.statusCode`, `response.body` and `response.headers`;
truthy, a new execution starts whose `trigger.*` are the Request's outputs (`uri`, `code`, `headers`, `body`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kestractl.durations import is_duration, parse_duration
from kestractl.expressions import is_truthy, render_value
from kestractl.model import State
from kestractl.storage import Storage
from kestractl.tasks.http import PROPERTIES as REQUEST_PROPERTIES
from kestractl.tasks.http import Log, refuse_encryption, request_outputs, request_problems

TYPES = ("io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger")
DEFAULT_INTERVAL = "PT60S"
DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"

PROPERTIES: dict[str, str] = {
    **REQUEST_PROPERTIES,
    "interval": "The interval between two polls (default PT60S).",
    "responseCondition": "The condition on the response that starts a flow (`{{ response.statusCode < 400 }}`).",
    "encryptBody": "If true, the response body is encrypted in the trigger's outputs (needs an encryption key).",
    "params": "Declared by Kestra's Trigger; not sent (Kestra does not send it either).",
}


def problems(item: Mapping[str, Any]) -> list[str]:
    """`field: reason` for the properties of an HTTP trigger."""
    found = request_problems(item)
    interval = item.get("interval")
    if interval is not None and not is_duration(interval):
        found.append(f"interval: `{interval}` is not an ISO-8601 duration (e.g. PT60S)")
    elif interval is not None and parse_duration(interval) <= timedelta(0):
        found.append("interval: must be positive")
    stop_after = item.get("stopAfter")
    if stop_after is not None and (
        not isinstance(stop_after, list) or any(str(s) not in State.__members__ for s in stop_after)
    ):
        found.append("stopAfter: must be a list of execution states (e.g. SUCCESS, FAILED)")
    return found


def interval(trigger: Mapping[str, Any]) -> timedelta:
    return parse_duration(trigger.get("interval") or DEFAULT_INTERVAL)


def poll(trigger: Mapping[str, Any], variables: Mapping[str, Any], storage: Storage, log: Log) -> dict[str, Any] | None:
    """One poll: the Request's outputs when the response condition holds, else None.

    Raises `KestraError` (one line) when the request cannot be made (refused, timed out, bad options).
    """
    spec = {**trigger, "options": {**(trigger.get("options") or {}), "allowFailed": True}}

    def render(value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return render_value(value, {**variables, **(extra or {})})

    refuse_encryption(render(trigger.get("encryptBody")))
    outputs = request_outputs(spec, render, storage, log, threading.Event())
    response = {"statusCode": outputs["code"], "body": outputs.get("body"), "headers": outputs["headers"]}
    condition = trigger.get("responseCondition") or DEFAULT_CONDITION
    return outputs if is_truthy(render(condition, {"response": response})) else None
