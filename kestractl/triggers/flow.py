"""Flow triggers as pure decisions: does this ended execution start that flow?

A MultipleCondition waits for several executions: each one that passes the trigger's other conditions
records, in the condition's time window, which of its conditions it met (`record_window`); the
scheduler keeps the windows in the store and the condition is met once every result is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from kestractl.durations import parse_duration
from kestractl.model import Execution, Flow, State
from kestractl.store import MultipleConditionWindow
from kestractl.triggers.conditions import SHORT_NAMES, ConditionContext, all_met, check
from kestractl.triggers.validate import FLOW

TERMINATED = [s.value for s in State if s.is_terminated()]


def flow_triggers(flow: Flow) -> list[dict[str, Any]]:
    if flow.disabled:
        return []
    return [t for t in flow.triggers if t.get("type") in FLOW and not t.get("disabled")]


def trigger_variables(upstream: Execution) -> dict[str, Any]:
    """`trigger.*` of an execution started by a Flow trigger."""
    return {
        **upstream.reference(),
        "state": upstream.state.current.value,
        "outputs": upstream.outputs or {},
        "labels": upstream.labels_map(),
    }


def listens(flow: Flow, trigger: Mapping[str, Any], upstream: Execution, variables: dict[str, Any]) -> bool:
    """The upstream execution is one this trigger looks at: another flow's, in a listened state, meeting the
    trigger's conditions other than MultipleConditions (only then does it count for their windows)."""
    if (flow.namespace, flow.id) == (upstream.namespace, upstream.flow_id):
        return False  # Kestra never lets a flow trigger itself
    if upstream.state.current.value not in (trigger.get("states") or TERMINATED):
        return False
    simple = [c for c in trigger.get("conditions") or [] if not is_multiple(c)]
    return all_met(simple, ConditionContext(variables=variables, execution=upstream))


def matches(
    flow: Flow,
    trigger: Mapping[str, Any],
    upstream: Execution,
    variables: dict[str, Any],
    windows: Mapping[str, Mapping[str, bool]] | None = None,
) -> bool:
    """`variables` are the upstream execution's own (outputs, inputs …) plus `trigger`; `windows` the results
    of the trigger's MultipleConditions, this execution's included."""
    if not listens(flow, trigger, upstream, variables):
        return False
    ctx = ConditionContext(variables=variables, execution=upstream, windows=windows or {})
    return all_met(trigger.get("conditions"), ctx) and _preconditions(trigger.get("preconditions"), upstream)


def is_multiple(condition: Any) -> bool:
    return isinstance(condition, Mapping) and SHORT_NAMES.get(str(condition.get("type"))) == "MultipleCondition"


def multiple_conditions(trigger: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in trigger.get("conditions") or [] if is_multiple(c)]


def record_window(
    flow: Flow,
    spec: Mapping[str, Any],
    stored: MultipleConditionWindow | None,
    upstream: Execution,
    variables: dict[str, Any],
    now: datetime,
) -> MultipleConditionWindow | None:
    """The condition's window with the conditions this execution meets set true (Kestra keeps true results
    only); None when now lies outside any window (before a daily start time, after a deadline)."""
    window = stored if stored is not None and stored.is_valid(now) else None
    if window is None:
        start, end = window_bounds(spec, now)
        window = MultipleConditionWindow(flow.namespace, flow.id, str(spec["id"]), start, end, {})
        if not window.is_valid(now):
            return None
    ctx = ConditionContext(variables=variables, execution=upstream)
    met = {name: True for name, condition in (spec.get("conditions") or {}).items() if check(condition, ctx)}
    return replace(window, results={**window.results, **met})


def fulfilled(spec: Mapping[str, Any], window: MultipleConditionWindow) -> bool:
    return all(window.results.get(name) for name in spec.get("conditions") or {})


def window_bounds(spec: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """Kestra's window for `now` (UTC): a DURATION_WINDOW is aligned on the day, hour or minute its length
    spans and moved by `windowAdvance`; the daily kinds span parts of today; a SLIDING_WINDOW starts now."""
    settings = dict(spec.get("timeWindow") or {})
    for key in ("window", "windowAdvance"):
        if spec.get(key) is not None:
            settings[key] = spec[key]
    now = now.astimezone(UTC).replace(microsecond=0)
    length = parse_duration(settings["window"]) if settings.get("window") else timedelta(days=1)
    kind = str(settings.get("type") or "DURATION_WINDOW")
    midnight = now.replace(hour=0, minute=0, second=0)
    if kind == "SLIDING_WINDOW":
        return now, now + length
    if kind == "DAILY_TIME_WINDOW":
        return midnight + _time_of_day(settings, "startTime"), midnight + _time_of_day(settings, "endTime")
    if kind == "DAILY_TIME_DEADLINE":
        return midnight, midnight + _time_of_day(settings, "deadline")
    start = _aligned(now, length) + parse_duration(settings.get("windowAdvance") or "PT0S")
    return start, start + length - timedelta(milliseconds=1)


def _aligned(now: datetime, length: timedelta) -> datetime:
    if length >= timedelta(days=1):
        return now.replace(hour=0, minute=0, second=0)
    if length >= timedelta(hours=1):
        return now.replace(minute=0, second=0)
    minutes = int(length.total_seconds() // 60)
    if minutes >= 1:
        return now.replace(minute=minutes * (now.minute // minutes), second=0)
    return now


def _time_of_day(settings: Mapping[str, Any], key: str) -> timedelta:
    if not settings.get(key):
        raise ValueError(f"timeWindow.{key} is required for a {settings.get('type')}")
    moment = time.fromisoformat(str(settings[key]))
    return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _preconditions(spec: Any, upstream: Execution) -> bool:
    """The `preconditions.flows` form for a single upstream execution: any listed flow may match."""
    if not isinstance(spec, Mapping) or not spec.get("flows"):
        return True
    for wanted in spec["flows"]:
        if wanted.get("namespace") and wanted["namespace"] != upstream.namespace:
            continue
        if wanted.get("flowId") and wanted["flowId"] != upstream.flow_id:
            continue
        if wanted.get("states") and upstream.state.current.value not in wanted["states"]:
            continue
        labels = wanted.get("labels") or {}
        if all(upstream.labels_map().get(str(k)) == str(v) for k, v in labels.items()):
            return True
    return False
