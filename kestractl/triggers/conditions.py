"""Kestra's trigger conditions: a pure check of one condition against what happened.

Flow-trigger conditions look at the upstream execution; schedule conditions look at the fire
date; Expression conditions render against the trigger's variables. Legacy names resolve too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from kestractl.expressions import is_truthy, render_value
from kestractl.model import Execution, parse_iso

DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
ORDINALS = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}


@dataclass
class ConditionContext:
    """What a condition may look at: variables to render, and the upstream execution if any."""

    variables: dict[str, Any] = field(default_factory=dict)
    execution: Execution | None = None

    def render(self, value: Any) -> Any:
        return render_value(value, self.variables)

    def date(self, spec: Mapping[str, Any]) -> datetime:
        text = self.render(spec.get("date", "{{ trigger.date }}"))
        found = parse_iso(str(text))
        if found is None:
            raise ValueError(f"`{text}` is not a date")
        return found


Check = Callable[[Mapping[str, Any], ConditionContext], bool]


def _upstream(ctx: ConditionContext) -> Execution:
    if ctx.execution is None:
        raise ValueError("this condition only applies to Flow triggers")
    return ctx.execution


def _status(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    state = _upstream(ctx).state.current.value
    allowed, denied = spec.get("in"), spec.get("notIn")
    return (allowed is None or state in allowed) and (denied is None or state not in denied)


def _flow(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    execution = _upstream(ctx)
    return execution.namespace == spec.get("namespace") and execution.flow_id == spec.get("flowId")


def _namespace(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    namespace, wanted = _upstream(ctx).namespace, str(spec.get("namespace", ""))
    comparison = str(spec.get("comparison", "PREFIX" if spec.get("prefix") else "EQUALS")).upper()
    if comparison == "PREFIX":
        return namespace == wanted or namespace.startswith(wanted + ".") or namespace.startswith(wanted)
    if comparison == "SUFFIX":
        return namespace.endswith(wanted)
    return namespace == wanted


def _labels(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    raw = spec.get("labels") or {}
    wanted = raw.items() if isinstance(raw, Mapping) else ((i["key"], i["value"]) for i in raw)
    have = set(_upstream(ctx).labels)
    return all((str(k), str(v)) in have for k, v in wanted)


def _expression(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    return is_truthy(ctx.render(spec.get("expression", "")))


def _not(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    return not any(check(c, ctx) for c in spec.get("conditions") or [])


def _or(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    return any(check(c, ctx) for c in spec.get("conditions") or [])


def _day_week(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    return DAYS[ctx.date(spec).weekday()] == str(spec.get("dayOfWeek", "")).upper()


def _day_week_in_month(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    day = ctx.date(spec)
    if DAYS[day.weekday()] != str(spec.get("dayOfWeek", "")).upper():
        return False
    which = str(spec.get("dayInMonth", "FIRST")).upper()
    if which == "LAST":
        return (day.day + 7) > _days_in_month(day.date())
    return (day.day - 1) // 7 == ORDINALS.get(which, -1)


def _days_in_month(day: date) -> int:
    following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return (following - date(day.year, day.month, 1)).days


def _between(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    when = ctx.date(spec)
    after = parse_iso(str(spec["after"])) if spec.get("after") else None
    before = parse_iso(str(spec["before"])) if spec.get("before") else None
    return (after is None or when >= after) and (before is None or when <= before)


def _time_between(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    now = ctx.date(spec).timetz().replace(tzinfo=None)
    after = time.fromisoformat(str(spec["after"])[:8]) if spec.get("after") else None
    before = time.fromisoformat(str(spec["before"])[:8]) if spec.get("before") else None
    return (after is None or now >= after) and (before is None or now <= before)


def _weekend(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    return ctx.date(spec).weekday() >= 5


_BASE = {
    "ExecutionStatus": _status,
    "ExecutionFlow": _flow,
    "ExecutionNamespace": _namespace,
    "ExecutionLabels": _labels,
    "ExecutionOutputs": _expression,
    "Expression": _expression,
    "Variable": _expression,
    "Not": _not,
    "Or": _or,
    "DayWeek": _day_week,
    "DayWeekInMonth": _day_week_in_month,
    "DateTimeBetween": _between,
    "TimeBetween": _time_between,
    "Weekend": _weekend,
    "Flow": _flow,
    "FlowNamespace": _namespace,
}
CONDITIONS: dict[str, Check] = {}
for _name, _check in _BASE.items():
    for _prefix in ("io.kestra.plugin.core.condition.", "io.kestra.core.models.conditions.types."):
        CONDITIONS[_prefix + _name] = _check
        CONDITIONS[_prefix + _name + "Condition"] = _check


def check(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """One condition; an unknown type or a broken expression counts as not met."""
    found = CONDITIONS.get(str(spec.get("type")))
    if found is None:
        return False
    try:
        return found(spec, ctx)
    except Exception:  # a condition that cannot be evaluated does not fire anything
        return False


def all_met(conditions: list[Mapping[str, Any]] | None, ctx: ConditionContext) -> bool:
    return all(check(c, ctx) for c in conditions or [])


def condition_problems(spec: Any) -> list[str]:
    if not isinstance(spec, Mapping) or not spec.get("type"):
        return ["a condition needs a type"]
    if spec["type"] not in CONDITIONS:
        return [f"unknown condition type `{spec['type']}`"]
    return []
