"""Every query of the store, written once for SQLite and PostgreSQL (their differences are in `Dialect`), and
the write transaction both use. A state change writes one row (a task run or the execution), inside a transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kestractl.errors import KestraError, NotFoundError, StoreError
from kestractl.model import (
    TERMINATED_STATES,
    Execution,
    ExecutionQuery,
    LogEntry,
    State,
    TaskRun,
    iso,
    level_rank,
    utcnow,
)
from kestractl.store.codec import (
    execution_data,
    execution_from,
    log_entry,
    row_text,
    row_value,
    task_run_data,
    task_run_from,
)
from kestractl.store.execution_view import ExecutionViewStore
from kestractl.store.filters import namespace_and_children, query_where
from kestractl.store.flow_pages import FlowPageQueries
from kestractl.store.messages import MessageQueries
from kestractl.store.namespaces import NamespaceQueries
from kestractl.store.part import BUSY_SECONDS, MAX_PARAMETERS, Connection, chunks
from kestractl.store.queue import QueueQueries
from kestractl.store.records import FlowRow
from kestractl.store.search import ExecutionSearch, SearchQueries, duration_column, label_column
from kestractl.store.services import ServiceQueries
from kestractl.store.timers import TimerQueries

# A task run keeps the position it was first written with, unless its execution's runs were renumbered (restart).
_SAVE_TASK_RUNS = (
    "INSERT INTO task_runs (id, execution_id, seq, data) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET data=excluded.data"
)
_RENUMBER_TASK_RUNS = _SAVE_TASK_RUNS + ", seq=excluded.seq"


class SqlStore(
    SearchQueries,
    ExecutionViewStore,
    FlowPageQueries,
    NamespaceQueries,
    TimerQueries,
    ServiceQueries,
    QueueQueries,
    MessageQueries,
):
    """The repositories over one database, one connection per thread. A subclass opens the connections, says
    which errors are its driver's and how to name them in one line."""

    # The driver's exception classes, turned into one line by `error`.
    driver_errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._local = threading.local()
        # Writers of this process take turns here, woken as soon as the writer before them commits (SQLite's
        # own wait for a busy file sleeps up to 100 ms between tries; PostgreSQL's ids stay in commit order).
        self._writer = threading.Lock()

    def connect(self) -> Connection:
        """A new connection for the calling thread."""
        raise NotImplementedError

    def error(self, exc: Exception) -> StoreError:
        """One line naming the database, the reason and what the user can do about it."""
        raise NotImplementedError

    @property
    def conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
            self._local.depth = 0
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; nested calls join the outer one."""
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        if not self._writer.acquire(timeout=BUSY_SECONDS):
            raise self.error(RuntimeError("database is locked"))
        try:
            yield from self._outer_transaction(conn)
        finally:
            self._writer.release()

    def _outer_transaction(self, conn: Connection) -> Iterator[Connection]:
        try:
            conn.execute(self.dialect.begin)
        except self.driver_errors as exc:
            raise self.error(exc) from None
        self._local.depth, self._local.undo = 1, []
        try:
            yield conn
            conn.execute("COMMIT")
        except self.driver_errors as exc:
            self._rolled_back(conn)
            raise self.error(exc) from None
        except BaseException:
            self._rolled_back(conn)
            raise
        finally:
            self._local.depth, self._local.undo = 0, []

    def on_rollback(self, undo: Callable[[], None]) -> None:
        self._local.undo.append(undo)

    def _rolled_back(self, conn: Connection) -> None:
        for undo in reversed(self._local.undo):
            undo()
        _rollback(conn)

    def checkpoint_every(self, seconds: float, stop: threading.Event, on_error: Callable[[KestraError], None]) -> None:
        """Until `stop` is set, the database's own upkeep off the path of every commit (run on a thread of its
        own); then close this thread's connection. Nothing to do unless the database says otherwise."""
        stop.wait()
        self.close()

    def close(self) -> None:
        """Close the calling thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---- flows -------------------------------------------------------------------------------

    def latest_flow(self, namespace: str, flow_id: str) -> FlowRow | None:
        row = self.conn.execute(
            "SELECT namespace, id, revision, source, created FROM flows WHERE namespace=? AND id=?"
            " AND deleted=0 ORDER BY revision DESC LIMIT 1",
            (namespace, flow_id),
        ).fetchone()
        return FlowRow(*row) if row else None

    def flow_revision(self, namespace: str, flow_id: str, revision: int | None = None) -> FlowRow:
        if revision is None:
            found = self.latest_flow(namespace, flow_id)
        else:
            row = self.conn.execute(
                "SELECT namespace, id, revision, source, created FROM flows WHERE namespace=? AND id=? AND revision=?",
                (namespace, flow_id, revision),
            ).fetchone()
            found = FlowRow(*row) if row else None
        if found is None:
            what = f"{namespace}.{flow_id}" + (f" revision {revision}" if revision is not None else "")
            raise NotFoundError(f"flow not found: {what}")
        return found

    def save_flow(self, namespace: str, flow_id: str, source: str) -> tuple[int, bool]:
        """Store a new revision unless the latest one has the same source. Returns (revision, changed)."""
        with self.transaction() as conn:
            latest = self.latest_flow(namespace, flow_id)
            if latest and latest.source == source:
                return latest.revision, False
            top = conn.execute(
                "SELECT COALESCE(MAX(revision), 0) FROM flows WHERE namespace=? AND id=?",
                (namespace, flow_id),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO flows (namespace, id, revision, source, created) VALUES (?, ?, ?, ?, ?)",
                (namespace, flow_id, top + 1, source, iso(utcnow())),
            )
            return top + 1, True

    def list_flows(self, namespace: str | None = None) -> list[FlowRow]:
        condition, args = namespace_and_children(namespace) if namespace else ("1=1", [])
        sql = (
            "SELECT namespace, id, MAX(revision), '', MAX(created) FROM flows WHERE deleted=0 AND "
            + condition
            + " GROUP BY namespace, id ORDER BY namespace, id"
        )
        return [FlowRow(*row) for row in self.conn.execute(sql, args)]

    def latest_sources(self) -> list[FlowRow]:
        rows = self.conn.execute(
            "SELECT f.namespace, f.id, f.revision, f.source, f.created FROM flows f"
            " JOIN (SELECT namespace, id, MAX(revision) AS r FROM flows WHERE deleted=0 GROUP BY namespace, id) m"
            " ON f.namespace=m.namespace AND f.id=m.id AND f.revision=m.r ORDER BY f.namespace, f.id"
        )
        return [FlowRow(*row) for row in rows]

    def revisions(self, namespace: str, flow_id: str) -> list[FlowRow]:
        rows = self.conn.execute(
            "SELECT namespace, id, revision, source, created FROM flows WHERE namespace=? AND id=? AND deleted=0"
            " ORDER BY revision",
            (namespace, flow_id),
        ).fetchall()
        if not rows:
            raise NotFoundError(f"flow not found: {namespace}.{flow_id}")
        return [FlowRow(*row) for row in rows]

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE flows SET deleted=1 WHERE namespace=? AND id=? AND deleted=0", (namespace, flow_id)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"flow not found: {namespace}.{flow_id}")

    # ---- executions --------------------------------------------------------------------------

    def save_execution(self, execution: Execution) -> None:
        """Write the execution row (not its task runs)."""
        self.save_executions([execution])

    def save_executions(self, executions: Iterable[Execution]) -> None:
        """Write execution rows in one statement: a ForEachItem's children are created a window at a time."""
        self.conn.executemany(
            "INSERT INTO executions (id, namespace, flow_id, flow_revision, state, start_date, end_date, duration,"
            " labels, parent_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " state=excluded.state, end_date=excluded.end_date, duration=excluded.duration, labels=excluded.labels,"
            " flow_revision=excluded.flow_revision, data=excluded.data",
            [
                (
                    e.id,
                    e.namespace,
                    e.flow_id,
                    e.flow_revision,
                    e.state.current.value,
                    iso(e.state.start_date),
                    iso(e.state.end_date),
                    duration_column(e),
                    label_column(e.labels),
                    e.parent_id,
                    row_text(execution_data(e)),
                )
                for e in executions
            ],
        )

    def save_task_runs(self, execution_id: str, runs: Iterable[tuple[int, TaskRun]], renumbered: bool = False) -> None:
        """Upsert task runs given with their position in the execution's list. A run keeps the position it was first
        written with (setting it again rewrote its index entry at every state change, a third of the update), unless
        `renumbered`: the positions changed (a restart removed runs)."""
        self.conn.executemany(
            _RENUMBER_TASK_RUNS if renumbered else _SAVE_TASK_RUNS,
            [(run.id, execution_id, seq, row_text(task_run_data(run))) for seq, run in runs],
        )

    def delete_task_runs(self, ids: list[str]) -> None:
        self.conn.executemany("DELETE FROM task_runs WHERE id=?", [(i,) for i in ids])

    def execution_state(self, execution_id: str) -> State:
        row = self.conn.execute("SELECT state FROM executions WHERE id=?", (execution_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"execution not found: {execution_id}")
        return State(row[0])

    def set_execution_state(self, execution_id: str, state: State) -> None:
        """Move an execution's state from outside its runner (e.g. a kill request)."""
        with self.transaction():
            execution = self.load_execution(execution_id)
            if execution.state.moved(state):
                self.save_execution(execution)

    def load_execution(self, execution_id: str) -> Execution:
        found = self.load_executions([execution_id])
        if not found:
            raise NotFoundError(f"execution not found: {execution_id}")
        return found[0]

    def load_executions(self, ids: list[str]) -> list[Execution]:
        """The executions that exist among `ids`, in that order, each with its task runs: two queries for a
        window of waiting children, not two per child."""
        executions: dict[str, Execution] = {}
        for chunk in chunks(ids, MAX_PARAMETERS):
            marks = ",".join("?" * len(chunk))
            for (data,) in self.conn.execute(f"SELECT data FROM executions WHERE id IN ({marks})", chunk):
                execution = execution_from(row_value(data))
                executions[execution.id] = execution
            runs = self.conn.execute(
                f"SELECT execution_id, data FROM task_runs WHERE execution_id IN ({marks}) ORDER BY seq", chunk
            )
            for execution_id, data in runs:
                executions[execution_id].task_runs.append(task_run_from(row_value(data)))
        return [executions[i] for i in ids if i in executions]

    def still_created(self, ids: list[str]) -> set[str]:
        """Those of `ids` whose executions exist and are still CREATED."""
        found: set[str] = set()
        for chunk in chunks(ids, MAX_PARAMETERS):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id FROM executions WHERE id IN ({marks}) AND state = 'CREATED'"
            found.update(i for (i,) in self.conn.execute(sql, chunk))
        return found

    def find_execution_ids(
        self,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: list[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[str]:
        """Newest first; `namespace` takes its child namespaces too (Kestra's search)."""
        return self.search_execution_ids(ExecutionSearch(namespace, flow_id, tuple(states or ())), limit, offset)

    def count_executions(
        self, namespace: str | None = None, flow_id: str | None = None, states: list[str] | None = None
    ) -> int:
        """How many executions `find_execution_ids` would page through, counted by the database."""
        return self.count_searched_executions(ExecutionSearch(namespace, flow_id, tuple(states or ())))

    def flow_execution_ids(
        self, namespace: str, flow_id: str, states: list[str], oldest_first: bool = False
    ) -> list[str]:
        """The executions of one flow (its namespace exactly) in these states, newest or oldest first."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT id FROM executions WHERE namespace=? AND flow_id=? AND state IN ({marks}) ORDER BY start_date"
        return [r[0] for r in self.conn.execute(sql + ("" if oldest_first else " DESC"), [namespace, flow_id, *states])]

    def execution_counts(self, query: ExecutionQuery) -> list[tuple[str, str, int]]:
        """(namespace, flow id, count) of the executions matching `query`, per flow; a flow named in
        `query.flows` is listed even without executions (Kestra's `executionCounts`)."""
        where, args = query_where(query, prefix=False)
        sql = "SELECT namespace, flow_id, COUNT(*) FROM executions" + where + " GROUP BY namespace, flow_id"
        counts = {(r[0], r[1]): int(r[2]) for r in self.conn.execute(sql, args)}
        for flow in query.flows or []:
            counts.setdefault(flow, 0)
        return sorted((ns, flow, n) for (ns, flow), n in counts.items())

    def purge_executions(self, query: ExecutionQuery, executions: bool, logs: bool) -> tuple[list[Execution], int]:
        """Delete the ended executions matching `query` (their rows, task runs and timers) and/or their logs.

        Returns the executions found (so their files can go too) and the number of log lines deleted."""
        where, args = query_where(query, prefix=True)
        ended = ",".join(f"'{s.value}'" for s in TERMINATED_STATES)
        sql = "SELECT id FROM executions" + where + (" AND" if where else " WHERE") + f" state IN ({ended})"
        with self.transaction() as conn:
            ids = [r[0] for r in conn.execute(sql, args)]
            found = [self.load_execution(i) for i in ids]
            deleted_logs = 0
            for execution_id in ids:
                if logs:
                    deleted_logs += conn.execute("DELETE FROM logs WHERE execution_id=?", (execution_id,)).rowcount
                if executions:
                    conn.execute("DELETE FROM executions WHERE id=?", (execution_id,))
        return found, deleted_logs

    def purge_logs(self, query: ExecutionQuery, levels: list[str] | None) -> int:
        """Delete the log lines of the matching executions' flows, written between its dates, at these levels."""
        where, args = query_where(query, prefix=True, dates=False)
        sql = "DELETE FROM logs WHERE execution_id IN (SELECT id FROM executions" + where + ")"
        if query.start is not None:
            sql, args = sql + " AND timestamp>=?", [*args, iso(query.start)]
        if query.end is not None:
            sql, args = sql + " AND timestamp<=?", [*args, iso(query.end)]
        if levels:
            sql, args = sql + f" AND level IN ({','.join('?' * len(levels))})", [*args, *levels]
        with self.transaction() as conn:
            return int(conn.execute(sql, args).rowcount)

    def child_execution_ids(self, parent_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM executions WHERE parent_id=?", (parent_id,))]

    # ---- logs --------------------------------------------------------------------------------

    def append_logs(self, entries: list[LogEntry]) -> None:
        self.conn.executemany(
            "INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, level_rank, timestamp, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.execution_id,
                    e.task_run_id,
                    e.task_id,
                    e.attempt_number,
                    e.level,
                    level_rank(e.level),
                    iso(e.timestamp),
                    e.message,
                )
                for e in entries
            ],
        )

    def logs(self, execution: Execution, min_level: str = "TRACE", task_id: str | None = None) -> list[LogEntry]:
        return [entry for _, entry in self.logs_after(execution, 0, min_level, task_id)]

    def logs_after(
        self, execution: Execution, after: int, min_level: str = "TRACE", task_id: str | None = None
    ) -> list[tuple[int, LogEntry]]:
        """The execution's log lines stored after position `after`, with their positions (a follower asks for
        what is new, not for everything again)."""
        sql = "SELECT seq, task_run_id, task_id, attempt, level, timestamp, message FROM logs"
        sql += " WHERE execution_id=? AND seq>? AND level_rank>=?" + (" AND task_id=?" if task_id else "")
        args: list[Any] = [execution.id, after, level_rank(min_level)] + ([task_id] if task_id else [])
        return [(r[0], log_entry(execution, r[1:])) for r in self.conn.execute(sql + " ORDER BY seq", args)]

    def set_trigger_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
        """Turn a trigger off or on. Turning it on forgets where its schedule stood (the signature no longer
        matches), so it starts again from now instead of firing every date it missed meanwhile."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO triggers (namespace, flow_id, trigger_id, signature, next_date, disabled)"
                " VALUES (?, ?, ?, '', ?, ?) ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET"
                " disabled=excluded.disabled,"
                " signature=CASE WHEN excluded.disabled=1 THEN triggers.signature ELSE '' END",
                (namespace, flow_id, trigger_id, utcnow().isoformat(), int(disabled)),
            )

    def flows_version(self) -> tuple[int, int, int]:
        """Changes whenever a flow is deployed or deleted: lets caches of parsed flows stay cheap."""
        row = self.conn.execute("SELECT COUNT(*), COALESCE(MAX(revision), 0), COALESCE(SUM(deleted), 0) FROM flows")
        count, top, deleted = row.fetchone()
        return int(count), int(top), int(deleted)


def _rollback(conn: Connection) -> None:
    """Undo what is left: SQLite has already rolled back by itself after a full disk or an I/O error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
