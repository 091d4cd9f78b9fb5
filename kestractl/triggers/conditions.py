"""Kestra's trigger conditions: a pure check of one condition against what happened.

Flow-trigger conditions look at the upstream execution; schedule conditions look at the fire
date; Expression conditions render against the trigger's variables. Legacy names resolve too. A plugin adds
conditions by registering `Condition` subclasses in the registry tasks and polling triggers share.
A MultipleCondition only reads the results its window holds (`ConditionContext.windows`): the
scheduler records them, execution after execution, as Kestra's FlowTriggerService does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from kestractl.durations import is_duration
from kestractl.errors import unknown_type, unrecognized
from kestractl.expressions import is_truthy, render_value
from kestractl.model import Execution, parse_iso
from kestractl.tasks.properties import Declared
from kestractl.tasks.registry import resolve_condition

DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
ORDINALS = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}


@dataclass
class ConditionContext:
    """What a condition may look at: variables to render, and the upstream execution if any."""

    variables: dict[str, Any] = field(default_factory=dict)
    execution: Execution | None = None
    # MultipleCondition id → which of its conditions were met in its current window.
    windows: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)

    def render(self, value: Any) -> Any:
        return render_value(value, self.variables)

    def date(self, spec: Mapping[str, Any]) -> datetime:
        text = self.render(spec.get("date", "{{ trigger.date }}"))
        found = parse_iso(str(text))
        if found is None:
            raise ValueError(f"`{text}` is not a date")
        return found


Check = Callable[[Mapping[str, Any], ConditionContext], bool]


class Condition(Declared):
    """A plugin's condition: declare `properties`, implement `test`. Register it like a task; a trigger's
    `conditions` then accept its type, checked against its declaration at deploy time."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = dict(spec)

    def test(self, ctx: ConditionContext) -> bool:
        """Whether the condition holds; an exception counts as not met (as for kestractl's own conditions)."""
        raise NotImplementedError

    def prop(self, ctx: ConditionContext, name: str) -> Any:
        """A declared property, rendered with the trigger's variables, defaulted and converted."""
        return self.rendered(name, ctx.render)


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


def _outputs(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """False when the upstream execution has no outputs, as Kestra's ExecutionOutputs."""
    return bool(_upstream(ctx).outputs) and _expression(spec, ctx)


def _has_retry_attempt(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """An attempt of a retried task run whose state is in `in` and not in `notIn` (no `in`: nothing matches)."""
    allowed, denied = ctx.render(spec.get("in") or []), ctx.render(spec.get("notIn") or [])
    return any(
        attempt.state.current.value in allowed and attempt.state.current.value not in denied
        for run in _upstream(ctx).task_runs
        if len(run.attempts) > 1
        for attempt in run.attempts
    )


def _public_holiday(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """With the `holidays` package (offline); the country defaults to the machine locale's, as Kestra's."""
    import holidays

    day = ctx.date(spec).date()
    country = str(ctx.render(spec["country"])) if spec.get("country") else _locale_country()
    subdivision = ctx.render(spec["subDivision"]) if spec.get("subDivision") else None
    if subdivision is not None:  # ISO 3166-2 (`DE-BY`) or the subdivision alone (`BY`)
        subdivision = str(subdivision).upper().removeprefix(country.upper() + "-")
    return day in holidays.country_holidays(country.upper(), subdiv=subdivision, years=day.year)


def _locale_country() -> str:
    import locale

    name = locale.getlocale()[0] or ""
    if "_" not in name:
        raise ValueError("PublicHoliday needs `country`: the machine's locale names none")
    return name.split("_")[1][:2]


def _multiple(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    results = ctx.windows.get(str(spec.get("id")), {})
    return all(results.get(name) for name in spec.get("conditions") or {})


_BASE = {
    "ExecutionStatus": _status,
    "ExecutionFlow": _flow,
    "ExecutionNamespace": _namespace,
    "ExecutionLabels": _labels,
    "ExecutionOutputs": _outputs,
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
    "HasRetryAttempt": _has_retry_attempt,
    "PublicHoliday": _public_holiday,
    "MultipleCondition": _multiple,
}
# The current package of the conditions' type names, then the legacy one.
PREFIXES = ("io.kestra.plugin.core.condition.", "io.kestra.core.models.conditions.types.")
CONDITIONS: dict[str, Check] = {}
SHORT_NAMES: dict[str, str] = {}  # every accepted type name → its key in _BASE and PROPERTIES
for _name, _check in _BASE.items():
    for _prefix in PREFIXES:
        for _suffix in ("",) if _name.endswith("Condition") else ("", "Condition"):
            CONDITIONS[_prefix + _name + _suffix] = _check
            SHORT_NAMES[_prefix + _name + _suffix] = _name

_DATE = {"date": "The date to test: any ISO 8601 date or expression; `{{ trigger.date }}` by default."}
_STATES = {"in": "List of states that are authorized.", "notIn": "List of states that aren't authorized."}
_FLOW = {"namespace": "The namespace of the flow.", "flowId": "The flow id."}
_EXPRESSION = {"expression": "The expression to evaluate; true when it renders truthy."}
_NAMESPACE = {
    "namespace": "The namespace to match (or its prefix).",
    "comparison": "EQUALS (default), PREFIX or SUFFIX.",
    "prefix": "Match the namespace by prefix; a shortcut for `comparison: PREFIX`.",
}
# Each condition's own properties (Kestra's wording, short); `type` is every condition's and is not listed.
PROPERTIES: dict[str, dict[str, str]] = {
    "ExecutionStatus": _STATES,
    "ExecutionFlow": _FLOW,
    "ExecutionNamespace": _NAMESPACE,
    "ExecutionLabels": {"labels": "The labels the execution must have: a map, or a list of {key, value}."},
    "ExecutionOutputs": {"expression": "An expression over `trigger.outputs`; false when there are no outputs."},
    "Expression": _EXPRESSION,
    "Variable": _EXPRESSION,
    "Not": {"conditions": "The conditions that must all be false."},
    "Or": {"conditions": "The conditions of which one must be true."},
    "DayWeek": {**_DATE, "dayOfWeek": "The day of the week, e.g. MONDAY."},
    "DayWeekInMonth": {
        **_DATE,
        "dayOfWeek": "The day of the week, e.g. MONDAY.",
        "dayInMonth": "FIRST, SECOND, THIRD, FOURTH or LAST of the month.",
    },
    "DateTimeBetween": {
        **_DATE,
        "after": "The date must be after this one.",
        "before": "The date must be before this one.",
    },
    "TimeBetween": {
        **_DATE,
        "after": "The time must be after this one.",
        "before": "The time must be before this one.",
    },
    "Weekend": _DATE,
    "Flow": _FLOW,
    "FlowNamespace": {
        "namespace": "The namespace of the flow, or its prefix when `prefix` is true.",
        "prefix": "Match the namespace by prefix.",
    },
    "HasRetryAttempt": {
        "in": "States an attempt of a retried task run may have (none: nothing matches).",
        "notIn": "States an attempt of a retried task run must not have.",
    },
    "PublicHoliday": {
        **_DATE,
        "country": "ISO 3166-1 alpha-2 country code; the machine locale's when not set.",
        "subDivision": "ISO 3166-2 country subdivision (e.g. a state or province) code.",
    },
    "MultipleCondition": {
        "id": "A unique id for the condition: its results are stored under it.",
        "conditions": "The conditions to wait for, by name; each must be met by some execution in the window.",
        "window": "Deprecated, the length of the window (`timeWindow.window`); P1D by default.",
        "windowAdvance": "Deprecated, the window's offset from midnight (`timeWindow.windowAdvance`).",
        "timeWindow": "The window: `type` DURATION_WINDOW (default), SLIDING_WINDOW, DAILY_TIME_WINDOW or "
        "DAILY_TIME_DEADLINE, with `window`, `windowAdvance`, `startTime`, `endTime`, `deadline`.",
        "resetOnSuccess": "Start afresh once every condition was met (true by default).",
    },
}


def properties_of(type_name: str) -> dict[str, str] | None:
    """The declared properties of a condition type (any of its names), None for an unknown type."""
    name = SHORT_NAMES.get(type_name)
    return None if name is None else PROPERTIES[name]


def check(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """One condition; an unknown type or a broken expression counts as not met."""
    found = CONDITIONS.get(str(spec.get("type")))
    plugin = resolve_condition(str(spec.get("type"))) if found is None else None
    if found is None and plugin is None:
        return False
    try:
        return found(spec, ctx) if found is not None else plugin(spec).test(ctx)  # type: ignore[misc]
    except Exception:  # a condition that cannot be evaluated does not fire anything
        return False


def all_met(conditions: list[Mapping[str, Any]] | None, ctx: ConditionContext) -> bool:
    return all(check(c, ctx) for c in conditions or [])


def condition_problems(spec: Any) -> list[str]:
    if not isinstance(spec, Mapping) or not spec.get("type"):
        return ["a condition needs a type"]
    name = SHORT_NAMES.get(str(spec["type"]))
    if name is None:
        return _plugin_problems(spec)
    known = {"type", *PROPERTIES[name]}
    unknown = [f"{key}: {unrecognized(str(key), str(spec['type']))}" for key in spec if key not in known]
    if unknown:
        return unknown
    if name == "MultipleCondition":
        return _multiple_problems(spec)
    nested = spec.get("conditions") if name in ("Not", "Or") else None
    if nested is not None and not isinstance(nested, list):
        return ["conditions: must be a list of conditions"]
    return [under(f"conditions[{i}]", p) for i, item in enumerate(nested or []) for p in condition_problems(item)]


def _plugin_problems(spec: Mapping[str, Any]) -> list[str]:
    """A plugin's condition, checked against its declaration."""
    cls = resolve_condition(str(spec["type"]))
    if cls is None:
        return [unknown_type("condition", spec["type"])]
    known = {"type", *cls.all_properties()}
    unknown = [f"{key}: {unrecognized(str(key), str(spec['type']))}" for key in spec if key not in known]
    return unknown or cls.validate(dict(spec))


def _multiple_problems(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]*", str(spec.get("id") or "")):
        problems.append("id: required, letters, digits, `_` and `-`")
    conditions = spec.get("conditions")
    if not isinstance(conditions, Mapping) or not conditions:
        return [*problems, "conditions: required, a map of name to condition"]
    for key in ("window", "windowAdvance"):
        if spec.get(key) is not None and not is_duration(spec[key]):
            problems.append(f"{key}: `{spec[key]}` is not an ISO-8601 duration (e.g. PT1H)")
    return problems + [under(f"conditions.{k}", p) for k, item in conditions.items() for p in condition_problems(item)]


def under(path: str, problem: str) -> str:
    """A nested condition's problem under its path: `path.field: reason` or `path: reason`."""
    return f"{path}.{problem}" if re.match(r"[\w.\[\]-]+: ", problem) else f"{path}: {problem}"
