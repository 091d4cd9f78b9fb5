"""The queue is the rows (Kestra's JDBC queue, `worker_job_running` and executor ownership): runnable task runs an
executor decided wait in `worker_jobs` until a worker claims one (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
whole file under SQLite's BEGIN IMMEDIATE) and records its claim in the same transaction; the worker's result and
the deletion of its job are one transaction too, and the result waits in `worker_results` for the executor that
owns the execution (`executions.owner`, an EXECUTOR service instance id). Executions nobody owns, or whose owner's
heartbeat stopped, are claimed the same way, so one executor alone decides each."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kestractl.model import State, TaskRun, iso, parse_iso
from kestractl.store.codec import row_text, row_value, task_run_data, task_run_from
from kestractl.store.part import MAX_PARAMETERS, StorePart, chunks

# The states an execution is driven in (see engine.control.RESUMABLE): those an executor claims.
DRIVEN_STATES = ("CREATED", "RESTARTED", "RUNNING", "PAUSED", "QUEUED", "KILLING")
# The liveness states of a service instance that heartbeats (service_records.RUNNING_STATES).
_LIVE = "SELECT id FROM service_instances WHERE state IN ('CREATED', 'RUNNING')"


@dataclass
class WorkerJob:
    """A runnable task run handed to the workers (Kestra's WorkerTask): the run as the executor decided it, its
    last attempt the one to run."""

    task_run: TaskRun
    attempt: int
    worker_id: str | None = None
    claimed_at: datetime | None = None


@dataclass
class WorkerResult:
    """What a worker's attempt came to (Kestra's WorkerTaskResult), or, `resubmitted`, that the worker holding it
    died: the owner gives the run a new attempt."""

    execution_id: str
    task_run_id: str
    attempt: int
    worker_id: str | None
    state: State
    outputs: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    resubmitted: bool = False

    def data(self) -> str:
        return json.dumps(
            {
                "state": self.state.value,
                "outputs": self.outputs,
                "metrics": self.metrics,
                "started": iso(self.started),
                "ended": iso(self.ended),
                "resubmitted": self.resubmitted,
            },
            default=str,
        )


def _result_from(row: Any) -> WorkerResult:
    d = json.loads(row[4])
    state = State(d["state"])
    started, ended = parse_iso(d["started"]), parse_iso(d["ended"])
    return WorkerResult(
        row[0], row[1], row[2], row[3], state, d["outputs"], d["metrics"], started, ended, d["resubmitted"]
    )


class QueueQueries(StorePart):
    """A part of `Store`: worker jobs, worker results and execution ownership."""

    # ---- the executor's side --------------------------------------------------------------------

    def enqueue_worker_jobs(self, jobs: list[WorkerJob], now: datetime) -> None:
        """Inside the transaction that persists the decision: the job rows, unclaimed."""
        self.conn.executemany(
            "INSERT INTO worker_jobs (task_run_id, execution_id, attempt, queued_at, data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (task_run_id) DO UPDATE SET attempt=excluded.attempt, queued_at=excluded.queued_at,"
            " worker_id=NULL, claimed_at=NULL, data=excluded.data",
            [
                (j.task_run.id, j.task_run.execution_id, j.attempt, iso(now), row_text(task_run_data(j.task_run)))
                for j in jobs
            ],
        )

    def cancel_worker_job(self, task_run_id: str) -> bool:
        """Remove a job no worker has claimed yet (its execution was killed); False: a worker has it."""
        with self.transaction():
            cursor = self.conn.execute(
                "DELETE FROM worker_jobs WHERE task_run_id=? AND worker_id IS NULL", (task_run_id,)
            )
            return cursor.rowcount > 0

    def take_worker_results(self, owner: str, limit: int) -> list[WorkerResult]:
        """The results waiting for the executions `owner` drives, oldest first, removed as they are read (only the
        owner reads them: a result it took and then lost with its process is a run its successor runs again)."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT r.seq, r.execution_id, r.task_run_id, r.attempt, r.worker_id, r.data FROM worker_results r"
                " JOIN executions e ON e.id=r.execution_id WHERE e.owner=? ORDER BY r.seq LIMIT ?",
                (owner, limit),
            ).fetchall()
            self.conn.executemany("DELETE FROM worker_results WHERE seq=?", [(r[0],) for r in rows])
        return [_result_from(r[1:]) for r in rows]

    def pending_task_runs(self, execution_id: str) -> set[str]:
        """The execution's task runs with a job queued or running, or a result not taken yet: an executor taking
        the execution over waits for them instead of running them again."""
        sql = "SELECT task_run_id FROM worker_jobs WHERE execution_id=? UNION SELECT task_run_id FROM worker_results"
        return {r[0] for r in self.conn.execute(sql + " WHERE execution_id=?", (execution_id, execution_id))}

    def reemit_worker_jobs(self, worker_ids: list[str], now: datetime) -> list[WorkerResult]:
        """The coordinator's re-emission (Kestra's `reEmitWorkerJobsForWorkers`): the jobs of dead workers become
        `resubmitted` results for their executions' owners, in one transaction."""
        if not worker_ids:
            return []
        marks = ",".join("?" * len(worker_ids))
        with self.transaction():
            rows = self.conn.execute(
                "SELECT task_run_id, execution_id, attempt, worker_id, claimed_at FROM worker_jobs"
                f" WHERE worker_id IN ({marks})" + self.dialect.claim,
                worker_ids,
            ).fetchall()
            lost = [
                WorkerResult(r[1], r[0], r[2], r[3], State.KILLED, None, [], parse_iso(r[4]), now, True) for r in rows
            ]
            self._insert_results(lost)
            self.conn.executemany("DELETE FROM worker_jobs WHERE task_run_id=?", [(r[0],) for r in rows])
        return lost

    def _insert_results(self, results: list[WorkerResult]) -> None:
        self.conn.executemany(
            "INSERT INTO worker_results (execution_id, task_run_id, attempt, worker_id, data) VALUES (?, ?, ?, ?, ?)",
            [(r.execution_id, r.task_run_id, r.attempt, r.worker_id, r.data()) for r in results],
        )

    # ---- the worker's side ----------------------------------------------------------------------

    def claim_worker_jobs(self, worker_id: str, limit: int, now: datetime) -> list[WorkerJob]:
        """Up to `limit` unclaimed jobs, oldest first, claimed for `worker_id` in the transaction that reads them:
        two workers never get the same job."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT task_run_id, attempt, data FROM worker_jobs WHERE worker_id IS NULL ORDER BY queued_at LIMIT ?"
                + self.dialect.claim,
                (limit,),
            ).fetchall()
            self.conn.executemany(
                "UPDATE worker_jobs SET worker_id=?, claimed_at=? WHERE task_run_id=?",
                [(worker_id, iso(now), r[0]) for r in rows],
            )
        return [WorkerJob(task_run_from(row_value(r[2])), r[1], worker_id, now) for r in rows]

    def finish_worker_job(self, job: WorkerJob, result: WorkerResult) -> bool:
        """The result, and the job gone, in one transaction; False (nothing written) when the job is no longer this
        worker's (a coordinator judged it dead and re-emitted it)."""
        with self.transaction():
            cursor = self.conn.execute(
                "DELETE FROM worker_jobs WHERE task_run_id=? AND worker_id=? AND attempt=?",
                (job.task_run.id, job.worker_id, job.attempt),
            )
            if cursor.rowcount == 0:
                return False
            self._insert_results([result])
            return True

    def release_worker_jobs(self, worker_id: str, task_run_ids: list[str]) -> None:
        """Hand claimed jobs back to the queue (a worker stopping before it ran them)."""
        with self.transaction():
            for chunk in chunks(task_run_ids, MAX_PARAMETERS):
                self.conn.execute(
                    f"UPDATE worker_jobs SET worker_id=NULL, claimed_at=NULL WHERE worker_id=?"
                    f" AND task_run_id IN ({','.join('?' * len(chunk))})",
                    [worker_id, *chunk],
                )

    def killed_task_runs(self, worker_id: str) -> list[str]:
        """The task runs `worker_id` holds whose execution is being killed (or has ended): to stop."""
        rows = self.conn.execute(
            "SELECT j.task_run_id FROM worker_jobs j JOIN executions e ON e.id=j.execution_id"
            " WHERE j.worker_id=? AND e.state IN ('KILLING', 'KILLED', 'FAILED', 'SUCCESS', 'WARNING', 'CANCELLED')",
            (worker_id,),
        )
        return [r[0] for r in rows]

    # ---- execution ownership --------------------------------------------------------------------

    def claim_executions(self, owner: str, limit: int) -> list[str]:
        """Up to `limit` executions to drive, oldest first: unowned ones (created by a scheduler, a webserver …) and
        those whose owner no longer heartbeats, now `owner`'s."""
        states = ",".join(f"'{s}'" for s in DRIVEN_STATES)
        with self.transaction():
            rows = self.conn.execute(
                f"SELECT id FROM executions WHERE state IN ({states}) AND (owner IS NULL OR owner NOT IN ({_LIVE}))"
                " ORDER BY start_date LIMIT ?" + self.dialect.claim,
                (limit,),
            ).fetchall()
            ids = [r[0] for r in rows]
            self._set_owner(owner, ids)
        return ids

    def own_executions(self, owner: str, ids: list[str]) -> list[str]:
        """Of `ids`, those `owner` drives from now on: unowned ones become its own, others' stay theirs."""
        owned: list[str] = []
        with self.transaction():
            for chunk in chunks(ids, MAX_PARAMETERS):
                marks = ",".join("?" * len(chunk))
                self.conn.execute(
                    f"UPDATE executions SET owner=? WHERE id IN ({marks}) AND owner IS NULL", [owner, *chunk]
                )
                sql = f"SELECT id FROM executions WHERE id IN ({marks}) AND owner=?"
                owned += [r[0] for r in self.conn.execute(sql, [*chunk, owner])]
        return owned

    def still_owned(self, owner: str, ids: list[str]) -> list[str]:
        """Inside the transaction persisting decisions: those of `ids` still `owner`'s, their rows held till it ends
        (an executor judged dead, its executions taken over, must not write over its successor's decisions)."""
        owned: list[str] = []
        for chunk in chunks(sorted(ids), MAX_PARAMETERS):
            sql = f"SELECT id FROM executions WHERE id IN ({','.join('?' * len(chunk))}) AND owner=? ORDER BY id"
            owned += [r[0] for r in self.conn.execute(sql + self.dialect.lock, [*chunk, owner])]
        return owned

    def owned_executions(self, owner: str) -> list[str]:
        """The executions `owner` drives (read again after the database went away), oldest first."""
        states = ",".join(f"'{s}'" for s in DRIVEN_STATES)
        sql = f"SELECT id FROM executions WHERE owner=? AND state IN ({states}) ORDER BY start_date"
        return [r[0] for r in self.conn.execute(sql, (owner,))]

    def release_executions(self, owner: str) -> None:
        """An executor stopping cleanly: its executions still driven are anyone's again."""
        states = ",".join(f"'{s}'" for s in DRIVEN_STATES)
        with self.transaction():
            self.conn.execute(f"UPDATE executions SET owner=NULL WHERE owner=? AND state IN ({states})", (owner,))

    def _set_owner(self, owner: str, ids: list[str]) -> None:
        self.conn.executemany("UPDATE executions SET owner=? WHERE id=?", [(owner, i) for i in ids])
