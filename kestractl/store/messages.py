"""Messages between executors as rows (Kestra's SubflowExecutionResult and its concurrency-limit lock): a child's
end written, in the transaction that ends it, for whichever executor owns its parent, and the lock under which a
flow's concurrency slots are counted and taken, so that executors side by side never run more than the limit."""

from __future__ import annotations

from kestractl.store.part import MAX_PARAMETERS, StorePart, chunks


class MessageQueries(StorePart):
    """A part of `Store`: subflow ends waiting for their parent's owner, and a flow's concurrency lock."""

    def send_subflow_ends(self, ends: list[tuple[str, str]]) -> None:
        """Inside the transaction ending the children: (parent id, child id) for the parent's owner to take."""
        self.conn.executemany(
            "INSERT INTO subflow_ends (child_id, parent_id) VALUES (?, ?) ON CONFLICT (child_id) DO NOTHING",
            [(child, parent) for parent, child in ends],
        )

    def subflow_ends(self, owner: str, limit: int) -> list[tuple[str, str]]:
        """(parent id, child id) of the ended children whose parents `owner` drives; they stay until
        `drop_subflow_ends` runs in the transaction that records them on their parents."""
        sql = (
            "SELECT m.parent_id, m.child_id FROM subflow_ends m JOIN executions e ON e.id=m.parent_id"
            " WHERE e.owner=? ORDER BY m.seq LIMIT ?"
        )
        return [(r[0], r[1]) for r in self.conn.execute(sql, (owner, limit))]

    def drop_subflow_ends(self, child_ids: list[str]) -> None:
        with self.transaction():
            for chunk in chunks(child_ids, MAX_PARAMETERS):
                self.conn.execute(f"DELETE FROM subflow_ends WHERE child_id IN ({','.join('?' * len(chunk))})", chunk)

    def subflow_runs_started(self, execution_id: str) -> set[str]:
        """The task runs of the execution that have child executions (a subflow run's children exist)."""
        run_id = self.dialect.json_text("data", "parentTaskRunId")
        sql = f"SELECT DISTINCT {run_id} FROM executions WHERE parent_id=?"
        return {r[0] for r in self.conn.execute(sql, (execution_id,))}

    def lock_flow(self, namespace: str, flow_id: str) -> None:
        """Inside a transaction: hold the flow's concurrency lock till it ends (PostgreSQL: an advisory lock;
        SQLite's BEGIN IMMEDIATE already holds the whole file)."""
        if self.dialect.flow_lock:
            self.conn.execute(self.dialect.flow_lock, (f"{namespace}\t{flow_id}",))

    def queued_flows(self) -> list[tuple[str, str]]:
        """The flows with executions waiting for a concurrency slot."""
        sql = "SELECT DISTINCT namespace, flow_id FROM executions WHERE state='QUEUED'"
        return [(r[0], r[1]) for r in self.conn.execute(sql)]

    def take_execution(self, owner: str, execution_id: str) -> None:
        """A queued execution started by another executor than the one that queued it becomes its own."""
        self.conn.execute("UPDATE executions SET owner=? WHERE id=?", (owner, execution_id))
