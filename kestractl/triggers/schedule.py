"""Schedule triggers as pure decisions: which fire dates are due at `now`, given the stored next date.

Dates are computed in the trigger's timezone (croniter handles DST) and stored in UTC; the caller
persists the new next date in the same transaction as the executions it creates, so a date fires once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from kestractl.durations import parse_duration

MAX_FIRES_PER_TICK = 1000
# A fire found later than this after its date counts as missed (the server was down).
MISSED_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class Fire:
    date: datetime
    next: datetime
    previous: datetime | None

    def variables(self) -> dict[str, str | None]:
        return {
            "date": self.date.isoformat(),
            "next": self.next.isoformat(),
            "previous": self.previous.isoformat() if self.previous else None,
        }


def zone(spec: Mapping[str, Any]) -> ZoneInfo:
    return ZoneInfo(str(spec.get("timezone") or "UTC"))


def _cron(spec: Mapping[str, Any], at: datetime) -> croniter:
    """A cron iterator in the trigger's timezone; `withSeconds` puts seconds first, as Kestra does."""
    return croniter(
        str(spec["cron"]).strip(), at.astimezone(zone(spec)), second_at_beginning=bool(spec.get("withSeconds"))
    )


def next_after(spec: Mapping[str, Any], after: datetime) -> datetime:
    """The first fire date strictly after `after`, in the trigger's timezone."""
    found: datetime = _cron(spec, after).get_next(datetime)
    return found


def previous_before(spec: Mapping[str, Any], before: datetime) -> datetime:
    found: datetime = _cron(spec, before).get_prev(datetime)
    return found


def first_next(spec: Mapping[str, Any], now: datetime) -> datetime:
    """Where a trigger seen for the first time starts: its backfill start, else the next date."""
    backfill = spec.get("backfill") or {}
    if backfill.get("start"):
        start = datetime.fromisoformat(str(backfill["start"]).replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone(spec))
        return next_after(spec, start - timedelta(microseconds=1))
    return next_after(spec, now)


def due(spec: Mapping[str, Any], next_date: datetime, now: datetime) -> tuple[list[Fire], datetime]:
    """Fires due at `now` starting from the stored `next_date`, and the next date to store."""
    dates: list[datetime] = []
    current = next_date
    while current <= now and len(dates) < MAX_FIRES_PER_TICK:
        dates.append(current)
        current = next_after(spec, current)
    end = _backfill_end(spec)
    if end is not None:
        dates = [d for d in dates if d <= end]
    dates = _recover(spec, dates, now)
    fires = []
    for date in dates:
        following = next_after(spec, date)
        fires.append(Fire(date, following, previous_before(spec, date)))
    return fires, current


def _recover(spec: Mapping[str, Any], dates: list[datetime], now: datetime) -> list[datetime]:
    """recoverMissedSchedules (ALL / LAST / NONE) and lateMaximumDelay applied to missed dates."""
    late = spec.get("lateMaximumDelay")
    if late:
        dates = [d for d in dates if d + parse_duration(late) >= now]
    missed = [d for d in dates if now - d > MISSED_AFTER]
    on_time = [d for d in dates if now - d <= MISSED_AFTER]
    policy = str(spec.get("recoverMissedSchedules", "ALL")).upper()
    if policy == "NONE":
        missed = []
    elif policy == "LAST":
        missed = missed[-1:]
    return missed + on_time


def _backfill_end(spec: Mapping[str, Any]) -> datetime | None:
    end = (spec.get("backfill") or {}).get("end")
    if not end:
        return None
    found = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    return found if found.tzinfo else found.replace(tzinfo=UTC)
