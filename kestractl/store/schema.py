"""The SQLite schema: migrations applied by `PRAGMA user_version` (never a wipe) and the one place a
connection is configured."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kestractl.errors import StoreError
from kestractl.store.part import BUSY_SECONDS

MIGRATIONS: list[str] = [
    # 1: flows by revision, executions, task runs, logs, timers.
    """
    CREATE TABLE flows (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        source TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        PRIMARY KEY (namespace, id, revision)
    );
    CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        flow_revision INTEGER NOT NULL,
        state TEXT NOT NULL,
        start_date TEXT NOT NULL,
        parent_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX executions_flow ON executions (namespace, flow_id, start_date);
    CREATE INDEX executions_state ON executions (state);
    CREATE TABLE task_runs (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX task_runs_execution ON task_runs (execution_id, seq);
    CREATE TABLE logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id TEXT NOT NULL,
        task_run_id TEXT,
        task_id TEXT,
        attempt INTEGER,
        level TEXT NOT NULL,
        level_rank INTEGER NOT NULL,
        timestamp TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_execution ON logs (execution_id, seq);
    CREATE TABLE delays (
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        task_run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        due TEXT NOT NULL,
        PRIMARY KEY (execution_id, task_run_id, kind)
    );
    CREATE INDEX delays_due ON delays (due);
    """,
    # 2: schedule trigger state, so a fire date is used once across restarts.
    """
    CREATE TABLE triggers (
        namespace TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        trigger_id TEXT NOT NULL,
        signature TEXT NOT NULL,
        next_date TEXT,
        PRIMARY KEY (namespace, flow_id, trigger_id)
    );
    """,
    # 3: MultipleCondition windows (Kestra's `multipleconditions`): what each condition saw in its time window.
    """
    CREATE TABLE multiple_conditions (
        namespace TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        condition_id TEXT NOT NULL,
        start_date TEXT NOT NULL,
        end_date TEXT NOT NULL,
        results TEXT NOT NULL,
        PRIMARY KEY (namespace, flow_id, condition_id)
    );
    """,
    # 4: a trigger turned off at run time (Toggle task) stays off across restarts and revisions.
    """
    ALTER TABLE triggers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: the UI's searches (issue 14). An execution's end date, duration (seconds) and labels become columns
    # (filled here from each row's JSON), so durations and label filters are read from the row, not its JSON. The
    # indexes are those EXPLAIN QUERY PLAN picks for the lists, the dashboard and the logs search (store/search.py):
    # state, start date and duration (state filters, and the daily statistics read no row; it replaces the index on
    # state alone, so a state change updates as many indexes as before), start date (the default windows; written
    # once), the flow index with the id (a namespace's ids without reading its rows), log lines by time with
    # their level and execution (counted without reading the lines), and executions by parent (an execution page's
    # children, and a kill's cascade, without reading every execution).
    """
    ALTER TABLE executions ADD COLUMN end_date TEXT;
    ALTER TABLE executions ADD COLUMN duration REAL;
    ALTER TABLE executions ADD COLUMN labels TEXT NOT NULL DEFAULT '';
    UPDATE executions SET
        end_date = CASE WHEN state IN ('SUCCESS', 'WARNING', 'FAILED', 'KILLED', 'CANCELLED', 'RETRIED', 'SKIPPED',
            'PAUSED') THEN strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(data, '$.state.histories[#-1].date')) END,
        labels = COALESCE((SELECT char(30) || group_concat(json_extract(l.value, '$[0]') || ':'
            || replace(json_extract(l.value, '$[1]'), char(30), ' '), char(30)) || char(30)
            FROM json_each(executions.data, '$.labels') AS l), '');
    UPDATE executions SET duration = round((julianday(end_date) - julianday(start_date)) * 86400.0, 3);
    DROP INDEX executions_flow;
    CREATE INDEX executions_flow ON executions (namespace, flow_id, start_date, id);
    DROP INDEX executions_state;
    CREATE INDEX executions_state ON executions (state, start_date, duration);
    CREATE INDEX executions_start ON executions (start_date);
    CREATE INDEX logs_timestamp ON logs (timestamp, level_rank, execution_id);
    CREATE INDEX executions_parent ON executions (parent_id);
    """,
    # 6: the liveness registry (Kestra's `service_instance`): each server component, its state and heartbeat.
    """
    CREATE TABLE service_instances (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        server_id TEXT NOT NULL,
        server_type TEXT NOT NULL,
        version TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        config TEXT NOT NULL,
        seq_id INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX service_instances_state ON service_instances (state);
    """,
    # 7: the queue is the rows (Kestra's WorkerJob messages and `worker_job_running`): a runnable task run an
    # executor decided waits in worker_jobs until a worker claims it (worker_id, claimed_at); its result waits in
    # worker_results for the executor that owns the execution (executions.owner, an EXECUTOR service instance).
    """
    ALTER TABLE executions ADD COLUMN owner TEXT;
    CREATE TABLE worker_jobs (
        task_run_id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        queued_at TEXT NOT NULL,
        worker_id TEXT,
        claimed_at TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX worker_jobs_queue ON worker_jobs (worker_id, queued_at);
    CREATE INDEX worker_jobs_execution ON worker_jobs (execution_id);
    CREATE TABLE worker_results (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id TEXT NOT NULL,
        task_run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX worker_results_execution ON worker_results (execution_id);
    """,
    # 8: messages between executors: a child's end waits for its parent's owner (Kestra's SubflowExecutionResult);
    # a polling trigger's running execution (Kestra's locked trigger), so the lock survives restarts.
    """
    ALTER TABLE triggers ADD COLUMN execution_id TEXT;
    CREATE TABLE subflow_ends (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        child_id TEXT NOT NULL UNIQUE,
        parent_id TEXT NOT NULL
    );
    CREATE INDEX subflow_ends_parent ON subflow_ends (parent_id);
    """,
]


def store_error(path: Path, exc: Exception) -> StoreError:
    """One line naming the file, the reason, and what the user can do about it."""
    reason = str(exc)
    if "not a database" in reason or "malformed" in reason:
        advice = "the file is damaged or not kestractl's: move it aside (or use --home elsewhere) and deploy again"
    elif "readonly" in reason or "read-only" in reason or "unable to open" in reason or isinstance(exc, OSError):
        advice = "the folder must be writable: fix its permissions or use --home / KESTRACTL_HOME elsewhere"
    elif "full" in reason or "disk I/O" in reason:
        advice = "the disk may be full or failing: free space, check the disk and retry"
    else:
        advice = "retry; if it persists, check the file and the disk"
    return StoreError(f"{path}: {reason} ({advice})")


def connect(path: Path, autocheckpoint: bool = True) -> sqlite3.Connection:
    """The one place a connection is configured: WAL, busy timeout, foreign keys, and whether its commits
    checkpoint the WAL themselves (see `Store`)."""
    conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this file has not seen yet; returns the schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
