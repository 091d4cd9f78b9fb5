"""What the UI's lists and the search APIs ask the database: executions filtered and paged, executions per day
by state, log lines across executions, the next schedule dates. Filtered, paged, counted and grouped by
SQLite with the indexes of migration 5, never by loading every row into Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kestractl.model import Execution, LogEntry, State, iso, level_rank
from kestractl.store.codec import execution_from, log_row, row_value
from kestractl.store.dialect import Dialect
from kestractl.store.filters import namespace_and_children
from kestractl.store.part import MAX_PARAMETERS, StorePart

# Labels as one column, `␞key:value␞key:value␞`: a `key:value` filter is a substring test on one row, and a
# write stays one statement (no labels table to keep in step on every state change).
LABEL_SEP = "\x1e"
# `sort=` of Kestra's executions search → the column (or expression) it orders by.
SORTS = {
    "state.startDate": "start_date",
    "state.endDate": "end_date",
    "state.duration": "duration",
    "state.current": "state",
    "namespace": "namespace",
    "flowId": "flow_id",
    "id": "id",
}


def label_column(labels: list[tuple[str, str]]) -> str:
    """The `labels` column of an execution row ('' without labels)."""
    if not labels:
        return ""
    return LABEL_SEP + LABEL_SEP.join(f"{k}:{v}".replace(LABEL_SEP, " ") for k, v in labels) + LABEL_SEP


def duration_column(execution: Execution) -> float | None:
    """The `duration` column: seconds from start to end, None until the execution ends (or pauses)."""
    start, end = execution.state.start_date, execution.state.end_date
    return (end - start).total_seconds() if start and end else None


def _iso(value: datetime) -> str:
    """As the rows hold dates (UTC, milliseconds, `Z`), so that texts compare as instants."""
    return iso(value) or ""


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class ExecutionSearch:
    """Kestra's executions search filters; every field is optional. `namespace` takes its children too."""

    namespace: str | None = None
    flow_id: str | None = None
    states: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    labels: tuple[tuple[str, str], ...] = ()
    q: str | None = None
    ids: tuple[str, ...] = ()

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        """The SQL condition (` WHERE …` or '') and its arguments."""
        condition, args = namespace_and_children(self.namespace) if self.namespace else ("", [])
        parts = [condition] if condition else []
        for condition, values in self._conditions(dialect):
            if values:
                parts.append(condition)
                args += values
        if self.q:
            columns = ("id", "flow_id", "namespace", "labels")
            parts.append("(" + " OR ".join(f"{c} {dialect.like} ? ESCAPE '\\'" for c in columns) + ")")
            args += [_like(self.q)] * len(columns)
        return (" WHERE " + " AND ".join(parts) if parts else ""), args

    def _conditions(self, dialect: Dialect) -> list[tuple[str, list[Any]]]:
        """(condition, its arguments) of each filter; one without arguments is not set."""
        return [
            ("flow_id=?", [self.flow_id] if self.flow_id else []),
            (f"state IN ({','.join('?' * len(self.states))})", list(self.states)),
            (f"id IN ({','.join('?' * len(self.ids))})", list(self.ids)),
            ("start_date>=?", [_iso(self.start)] if self.start else []),
            ("start_date<=?", [_iso(self.end)] if self.end else []),
            *((dialect.contains("labels", "?"), [label_column([label])]) for label in self.labels),
        ]


@dataclass(frozen=True)
class LogSearch:
    """Kestra's logs search filters: lines at `min_level` or above, of executions in `namespace` (and its
    children) or of one flow, written between `start` and `end`, containing `q`."""

    namespace: str | None = None
    flow_id: str | None = None
    min_level: str = "TRACE"
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        parts = ["l.level_rank>=?"]
        args: list[Any] = [level_rank(self.min_level)]
        if self.start is not None:
            parts.append("l.timestamp>=?")
            args.append(_iso(self.start))
        if self.end is not None:
            parts.append("l.timestamp<=?")
            args.append(_iso(self.end))
        if self.q:
            parts.append(f"l.message {dialect.like} ? ESCAPE '\\'")
            args.append(_like(self.q))
        if self.namespace or self.flow_id:
            inner, inner_args = ExecutionSearch(self.namespace, self.flow_id).where(dialect)
            # `+` (SQLite's hint): not through the index on execution ids (one seek per id of a namespace, all time
            # long): the time window's index is walked and each line's execution looked up in the set of matching ids.
            parts.append(f"{dialect.unindexed}l.execution_id IN (SELECT id FROM executions{inner})")
            args += inner_args
        return " WHERE " + " AND ".join(parts), args


@dataclass
class DailyStatistics:
    """Kestra's `DailyExecutionStatistics`: one day's executions by state and the durations of those ended."""

    start: datetime
    counts: dict[str, int] = field(default_factory=dict)
    durations: list[tuple[float, float, float, int]] = field(default_factory=list)  # (min, max, sum, count)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def duration(self) -> tuple[float, float, float, float, int]:
        """(min, avg, max, sum, count) in seconds over the day's ended executions."""
        ended = [d for d in self.durations if d[3]]
        count = sum(d[3] for d in ended)
        if not count:
            return 0.0, 0.0, 0.0, 0.0, 0
        total = sum(d[2] for d in ended)
        return min(d[0] for d in ended), total / count, max(d[1] for d in ended), total, count


@dataclass(frozen=True)
class NextFire:
    namespace: str
    flow_id: str
    trigger_id: str
    next_date: datetime


class SearchQueries(StorePart):
    """A part of `Store`: it only reads."""

    # ---- executions ----------------------------------------------------------------------------

    def search_execution_ids(
        self, search: ExecutionSearch, limit: int, offset: int = 0, sort: str = "state.startDate", desc: bool = True
    ) -> list[str]:
        """One page of ids, newest first by default (`sort` is one of `SORTS`)."""
        where, args = search.where(self.dialect)
        order = self.dialect.order(SORTS[sort], desc) + (", id" if sort != "id" else "")
        sql = f"SELECT id FROM executions{where} ORDER BY {order} LIMIT ? OFFSET ?"
        return [r[0] for r in self.conn.execute(sql, [*args, limit, offset])]

    def count_searched_executions(self, search: ExecutionSearch) -> int:
        where, args = search.where(self.dialect)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM executions{where}", args).fetchone()[0])

    def execution_heads(self, ids: list[str]) -> list[Execution]:
        """The executions among `ids`, in that order, without their task runs (a list shows none)."""
        found: dict[str, Execution] = {}
        for start in range(0, len(ids), MAX_PARAMETERS):
            chunk = ids[start : start + MAX_PARAMETERS]
            sql = f"SELECT data FROM executions WHERE id IN ({','.join('?' * len(chunk))})"
            for (data,) in self.conn.execute(sql, chunk):
                execution = execution_from(row_value(data))
                found[execution.id] = execution
        return [found[i] for i in ids if i in found]

    def daily_statistics(
        self, search: ExecutionSearch, start: datetime, end: datetime, offset: timedelta = timedelta(0)
    ) -> list[DailyStatistics]:
        """Every day from `start` to `end` (days of the UTC `offset`, empty days included) with its executions by
        state and their durations: one GROUP BY, read from an index alone."""
        # Every state named: the index on (state, start date, duration) is sought once per state and covers the query.
        states = search.states or tuple(s.value for s in State)
        bounded = ExecutionSearch(**{**search.__dict__, "states": states, "start": start, "end": end})
        where, args = bounded.where(self.dialect)
        minutes = int(offset.total_seconds() // 60)
        day = "substr(start_date, 1, 10)" if not minutes else self.dialect.shifted_day("start_date", minutes)
        sql = (
            f"SELECT {day} AS day, state, COUNT(*), MIN(duration), MAX(duration), SUM(duration), COUNT(duration)"
            f" FROM executions{where} GROUP BY day, state"
        )
        days = _days(start, end, offset)
        for row in self.conn.execute(sql, args):
            entry = days.get(row[0])
            if entry is not None:
                entry.counts[row[1]] = entry.counts.get(row[1], 0) + int(row[2])
                entry.durations.append((row[3] or 0.0, row[4] or 0.0, row[5] or 0.0, int(row[6])))
        return list(days.values())

    # ---- logs ------------------------------------------------------------------------------------

    def search_logs(self, search: LogSearch, limit: int, offset: int = 0) -> list[LogEntry]:
        """One page of log lines across executions, newest first, with their executions' namespace and flow."""
        where, args = search.where(self.dialect)
        sql = (
            "SELECT l.execution_id, e.namespace, e.flow_id, l.task_run_id, l.task_id, l.attempt, l.level,"
            " l.timestamp, l.message FROM (SELECT seq FROM logs l"
            f"{where} ORDER BY l.timestamp DESC LIMIT ? OFFSET ?) page JOIN logs l ON l.seq=page.seq"
            " LEFT JOIN executions e ON e.id=l.execution_id ORDER BY l.timestamp DESC, l.seq DESC"
        )
        return [log_row(row) for row in self.conn.execute(sql, [*args, limit, offset])]

    def count_searched_logs(self, search: LogSearch) -> int:
        where, args = search.where(self.dialect)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM logs l{where}", args).fetchone()[0])

    # ---- triggers --------------------------------------------------------------------------------

    def next_fires(self, limit: int, offset: int = 0) -> tuple[list[NextFire], int]:
        """The schedules' next dates, soonest first, and how many there are: enabled triggers of flows that
        still exist."""
        where = (
            " FROM triggers t WHERE disabled=0 AND signature<>'' AND next_date IS NOT NULL AND EXISTS"
            " (SELECT 1 FROM flows f WHERE f.namespace=t.namespace AND f.id=t.flow_id AND f.deleted=0)"
        )
        sql = "SELECT namespace, flow_id, trigger_id, next_date" + where + " ORDER BY next_date LIMIT ? OFFSET ?"
        rows = self.conn.execute(sql, (limit, offset)).fetchall()
        total = int(self.conn.execute("SELECT COUNT(*)" + where).fetchone()[0])
        return [NextFire(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows], total


def _days(start: datetime, end: datetime, offset: timedelta) -> dict[str, DailyStatistics]:
    """An empty entry for every day from `start` to `end`, keyed `YYYY-MM-DD` in the UTC `offset`."""
    zone = timezone(offset)
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    out: dict[str, DailyStatistics] = {}
    while first <= last:
        out[first.isoformat()] = DailyStatistics(datetime(first.year, first.month, first.day, tzinfo=zone))
        first += timedelta(days=1)
    return out
