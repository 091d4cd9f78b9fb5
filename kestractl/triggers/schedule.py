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
# A due date, the one after it and the due one before it, if any.
_Around = tuple[datetime, datetime, datetime | None]


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
    """Fires due at `now` starting from the stored `next_date`, and the next date to store.

    One cron iterator serves every date: building one costs ten of its steps, and a week of
    missed per-minute fires is 10,000 dates. Each step restarts from its date, as a new iterator would.
    """
    if next_date > now:
        return [], next_date
    cron = _cron(spec, next_date)
    dates = [next_date]
    current = _step(cron, spec, next_date)
    while current <= now and len(dates) < MAX_FIRES_PER_TICK:
        dates.append(current)
        current = _step(cron, spec, current)
    # Tuples, not a dict: the two 02:30s of a night that falls back compare equal in their timezone.
    around = list(zip(dates, [*dates[1:], current], [None, *dates[:-1]], strict=True))
    end = _backfill_end(spec)
    if end is not None:
        around = [a for a in around if a[0] <= end]
    kept = _recover(spec, around, now)
    return [Fire(d, following, _previous(cron, spec, d, earlier)) for d, following, earlier in kept], current


def _previous(cron: croniter, spec: Mapping[str, Any], date: datetime, earlier: datetime | None) -> datetime:
    """The cron date before `date`: the date due before it, unless a clock change may lie between them."""
    if earlier is not None and earlier.utcoffset() == date.utcoffset() and date - earlier < timedelta(days=1):
        return earlier
    return _step(cron, spec, date, back=True)


def _step(cron: croniter, spec: Mapping[str, Any], at: datetime, back: bool = False) -> datetime:
    """The fire date just after (or before) `at`, computed in the trigger's timezone."""
    start = at.astimezone(zone(spec))
    found: datetime = cron.get_prev(datetime, start_time=start) if back else cron.get_next(datetime, start_time=start)
    return found


def _recover(spec: Mapping[str, Any], dates: list[_Around], now: datetime) -> list[_Around]:
    """recoverMissedSchedules (ALL / LAST / NONE) and lateMaximumDelay applied to missed dates."""
    late = spec.get("lateMaximumDelay")
    if late:
        dates = [d for d in dates if d[0] + parse_duration(late) >= now]
    missed = [d for d in dates if now - d[0] > MISSED_AFTER]
    on_time = [d for d in dates if now - d[0] <= MISSED_AFTER]
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
