"""Deploy-time checks for a flow's `triggers:` (the server acts on them; the parser only validates)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from kestractl.errors import unknown_type, unrecognized
from kestractl.model import LOG_LEVELS
from kestractl.tasks.base import id_problem
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import resolve_trigger

SCHEDULE = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
FLOW = ("io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
WEBHOOK = ("io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook")
SCHEDULE_ON_DATES = ("io.kestra.plugin.core.trigger.ScheduleOnDates",)
# The types the engine acts on itself, each current name first then its legacy ones; polling triggers (the HTTP
# Trigger, plugins') come from the registry.
CORE_TRIGGERS = (SCHEDULE, FLOW, WEBHOOK, SCHEDULE_ON_DATES)
TRIGGER_TYPES = frozenset(name for names in CORE_TRIGGERS for name in names)
# What every trigger accepts (Kestra's AbstractTrigger); `workerGroup` is refused (Enterprise only).
COMMON: dict[str, Prop] = {
    "id": Prop("The trigger's id, unique in the flow.", "string", required=True, dynamic=False),
    "type": Prop("The trigger's type.", "string", required=True, dynamic=False),
    "description": Prop("A description of the trigger (Markdown).", "string", dynamic=False),
    "conditions": Prop("Conditions that must all be met for the trigger to start an execution.", "array", False),
    "disabled": Prop("A disabled trigger does not fire.", "boolean", default=False, dynamic=False),
    "workerGroup": Prop("Worker groups are an Enterprise Edition feature: refused.", "object", dynamic=False),
    "logLevel": Prop("The lowest level of the trigger's logs that is kept.", values=tuple(LOG_LEVELS)),
    "minLogLevel": Prop("The lowest level of the started executions' logs.", values=tuple(LOG_LEVELS)),
    "labels": Prop("Labels added to the executions it starts: a map, or a list of {key, value}."),
    "stopAfter": Prop("Disable the trigger once an execution it started ends in one of these states.", "array"),
    "logToFile": Prop("Keep the trigger's logs in a file in internal storage.", "boolean", default=False),
}
_INPUTS = Prop("The inputs of the executions it starts, by input id.", "object")
_TIMEZONE = Prop("The time zone of the dates (e.g. Europe/Paris); the server's by default.", "string")
_RECOVER = Prop("Which missed dates run when the server comes back.", values=("ALL", "NONE", "LAST"))
# Each type's own properties, by the last part of its type name.
OWN: dict[str, dict[str, Prop]] = {
    "Schedule": {
        "cron": Prop("A cron expression (5 fields, 6 `withSeconds`) or @daily, @hourly ...", "string", True),
        "withSeconds": Prop("The cron expression has a seconds field first.", "boolean", default=False),
        "timezone": _TIMEZONE,
        "interval": Prop("Deprecated: ignored.", "duration"),
        "scheduleConditions": Prop("Deprecated: conditions on the date, as `conditions`.", "array"),
        "inputs": _INPUTS,
        "lateMaximumDelay": Prop("Skip a date that is later than this (e.g. PT1H).", "duration"),
        "backfill": Prop("Run the dates from `start` (to `end`) that are in the past.", "object"),
        "recoverMissedSchedules": _RECOVER,
    },
    "Flow": {
        "inputs": _INPUTS,
        "states": Prop("The upstream execution's states that fire (SUCCESS, WARNING, FAILED, KILLED ...).", "array"),
        "preconditions": Prop("Upstream flows (`flows`) and a time window (`timeWindow`) to wait for.", "object"),
    },
    "Webhook": {"key": Prop("The secret key in the webhook's URL.", "string", required=True)},
    "ScheduleOnDates": {
        "interval": Prop("Deprecated: ignored.", "duration"),
        "inputs": _INPUTS,
        "timezone": _TIMEZONE,
        "dates": Prop("The dates (ISO-8601) the flow runs at.", "array", required=True),
        "recoverMissedSchedules": _RECOVER,
    },
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


def _unknown_properties(item: Mapping[str, Any], declared: Collection[str] | None) -> list[str]:
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
