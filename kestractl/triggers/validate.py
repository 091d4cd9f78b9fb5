"""Deploy-time checks for a flow's `triggers:` (the server acts on them; the parser only validates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kestractl.errors import unknown_type, unrecognized
from kestractl.tasks.base import id_problem
from kestractl.tasks.registry import resolve_trigger

SCHEDULE = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
FLOW = ("io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
WEBHOOK = ("io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook")
# The types the engine acts on itself; polling triggers (the HTTP Trigger, plugins') come from the registry.
TRIGGER_TYPES = frozenset((*SCHEDULE, *FLOW, *WEBHOOK, "io.kestra.plugin.core.trigger.ScheduleOnDates"))
# What every trigger accepts (Kestra's AbstractTrigger); `workerGroup` is refused (Enterprise only).
COMMON = frozenset(
    {"id", "type", "description", "conditions", "disabled", "workerGroup", "logLevel", "minLogLevel", "labels"}
    | {"stopAfter", "logToFile"}
)
# Each type's own properties, by the last part of its type name.
OWN = {
    "Schedule": {"cron", "withSeconds", "timezone", "interval", "scheduleConditions", "inputs", "lateMaximumDelay"}
    | {"backfill", "recoverMissedSchedules"},
    "Flow": {"inputs", "states", "preconditions"},
    "Webhook": {"key"},
    "ScheduleOnDates": {"interval", "inputs", "timezone", "dates", "recoverMissedSchedules"},
}


def validate_trigger(item: Any) -> list[str]:
    """Problems as `field: reason`; an empty list means the trigger is valid."""
    if not isinstance(item, Mapping):
        return ["id: a trigger must be a mapping with id and type"]
    problems = [f"{key}: required" for key in ("id", "type") if not item.get(key)]
    if item.get("id") and (problem := id_problem(item["id"])):
        problems.append(f"id: {problem}")
    kind = item.get("type")
    polling = resolve_trigger(str(kind)) if kind and kind not in TRIGGER_TYPES else None
    if kind and kind not in TRIGGER_TYPES and polling is None:
        problems.append(f"type: {unknown_type('trigger', kind)}")
    problems += _unknown_properties(item, set(polling.all_properties()) if polling else None)
    if kind in SCHEDULE:
        problems += _schedule_problems(item)
    problems += polling.validate(dict(item)) if polling else []
    if kind in WEBHOOK and not item.get("key"):
        problems.append("key: required for a Webhook trigger")
    return problems + _conditions_problems(item.get("conditions") or [])


def _conditions_problems(conditions: Any) -> list[str]:
    """Each condition's problems under its path; the conditions module loads only for a trigger that has some
    (`execute dev hello-world` parses the sample's Webhook trigger at every start)."""
    if not isinstance(conditions, list):
        return ["conditions: must be a list"]
    if not conditions:
        return []
    from kestractl.triggers.conditions import condition_problems, under

    return [
        under(f"conditions[{i}]", p) for i, condition in enumerate(conditions) for p in condition_problems(condition)
    ]


def _unknown_properties(item: Mapping[str, Any], declared: set[str] | None) -> list[str]:
    kind = str(item.get("type"))
    own = declared if declared is not None else OWN.get(kind.rsplit(".", 1)[-1])
    if own is None:
        return []
    problems = [f"{key}: {unrecognized(str(key), kind)}" for key in item if key not in COMMON and key not in own]
    if item.get("workerGroup") is not None:
        problems.append("workerGroup: Worker Group is an Enterprise Edition functionality")
    return problems


def _schedule_problems(item: Mapping[str, Any]) -> list[str]:
    cron = item.get("cron")
    if not cron:
        return ["cron: required for a Schedule trigger"]
    from croniter import croniter

    nicknames = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
    if str(cron).strip() in nicknames:
        return []
    if not croniter.is_valid(str(cron), second_at_beginning=bool(item.get("withSeconds"))):
        return [f"cron: `{cron}` is not a valid cron expression"]
    if item.get("timezone"):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(item["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            return [f"timezone: unknown time zone `{item['timezone']}`"]
    return []
