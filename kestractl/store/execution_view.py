"""What the execution page reads beyond the engine's own queries: a window of an execution's log lines (filtered
and counted in SQL, so 200,000 lines never travel at once), the heads of related executions for links, and a
cheap fingerprint that tells a follower whether anything changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kestractl.model import level_rank
from kestractl.store.dialect import Dialect
from kestractl.store.part import StorePart

# (seq, ISO timestamp, level, task id, attempt, message): a log line as the log view shows it.
LogLine = tuple[int, str, str, str | None, int | None, str]


@dataclass(frozen=True)
class LogFilter:
    """The log view's filters: a minimum level, one task, a case-insensitive text."""

    min_level: str = "TRACE"
    task_id: str | None = None
    text: str | None = None
    # The last position the view reads up to: what was stored later comes from the live stream.
    until: int | None = None

    def where(self, execution_id: str, dialect: Dialect) -> tuple[str, list[Any]]:
        sql = " WHERE execution_id=? AND level_rank>=?"
        args: list[Any] = [execution_id, level_rank(self.min_level)]
        if self.until is not None:
            sql, args = sql + " AND seq<=?", [*args, self.until]
        if self.task_id:
            sql, args = sql + " AND task_id=?", [*args, self.task_id]
        if self.text:
            sql, args = sql + " AND " + dialect.contains("lower(message)", "lower(?)"), [*args, self.text]
        return sql, args


class ExecutionViewStore(StorePart):
    """A part of `Store`: it only reads."""

    def log_window(self, execution_id: str, where: LogFilter, offset: int, limit: int) -> list[LogLine]:
        """Lines `offset`..`offset+limit` of the filtered log, oldest first, as stored (nothing parsed)."""
        clause, args = where.where(execution_id, self.dialect)
        sql = "SELECT seq, timestamp, level, task_id, attempt, message FROM logs" + clause
        return list(self.conn.execute(sql + " ORDER BY seq LIMIT ? OFFSET ?", [*args, limit, offset]))

    def log_count(self, execution_id: str, where: LogFilter) -> int:
        clause, args = where.where(execution_id, self.dialect)
        return int(self.conn.execute("SELECT COUNT(*) FROM logs" + clause, args).fetchone()[0])

    def last_log_seq(self, execution_id: str) -> int:
        """The position a follower starts after: lines stored later are new to it."""
        row = self.conn.execute("SELECT MAX(seq) FROM logs WHERE execution_id=?", (execution_id,)).fetchone()
        return int(row[0] or 0)

    def child_ids(self, parent_id: str, limit: int) -> tuple[list[str], int]:
        """The first `limit` executions started by `parent_id` (oldest first) and how many there are."""
        sql = "SELECT id FROM executions WHERE parent_id=? ORDER BY start_date LIMIT ?"
        ids = [r[0] for r in self.conn.execute(sql, (parent_id, limit))]
        if len(ids) < limit:
            return ids, len(ids)
        count = self.conn.execute("SELECT COUNT(*) FROM executions WHERE parent_id=?", (parent_id,)).fetchone()[0]
        return ids, int(count)

    def execution_fingerprint(self, execution_id: str) -> tuple[Any, ...]:
        """Changes whenever the execution or one of its task runs is written (a state change grows its history)."""
        row = self.conn.execute("SELECT state, length(data) FROM executions WHERE id=?", (execution_id,)).fetchone()
        runs = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(data)), 0) FROM task_runs WHERE execution_id=?", (execution_id,)
        ).fetchone()
        return (*(row or ()), *runs)
