"""The flow pages' queries (issue 14): the flows list searched and paged in SQL, each listed flow's recent
executions in one statement, a flow's executions and revisions, and an execution's task states by task."""

from __future__ import annotations

from typing import Any

from kestractl.model import Execution
from kestractl.store.codec import execution_from, row_value
from kestractl.store.dialect import Dialect
from kestractl.store.filters import namespace_and_children
from kestractl.store.part import StorePart
from kestractl.store.records import FlowRow

# The latest revision of every flow that is not deleted (the flows table keeps every revision).
LATEST = (
    " FROM flows f JOIN (SELECT namespace, id, MAX(revision) AS r FROM flows WHERE deleted=0"
    " GROUP BY namespace, id) m ON f.namespace=m.namespace AND f.id=m.id AND f.revision=m.r"
)


def _flow_where(dialect: Dialect, q: str, namespace: str, words: list[str]) -> tuple[str, list[Any]]:
    """`q` in the flow's `namespace.id` (any case); `namespace` and its children; `words` all in the source."""
    where: list[str] = [dialect.contains("lower(f.namespace || '.' || f.id)", "?")]
    args: list[Any] = [q.lower()]
    if namespace:
        condition, values = namespace_and_children(namespace, "f.namespace")
        where.append(condition)
        args += values
    for word in words:
        where.append(dialect.contains("f.source", "?"))
        args.append(word)
    return " WHERE " + " AND ".join(where), args


class FlowPageQueries(StorePart):
    """A part of `Store`: it only reads."""

    def search_flow_rows(
        self, q: str = "", namespace: str = "", words: list[str] | None = None, limit: int = -1, offset: int = 0
    ) -> tuple[list[FlowRow], int]:
        """The latest revision of the matching flows, by namespace and id, a page of them and how many match.
        `words` must all appear in the source (a label filter's key and value, checked exactly by the caller)."""
        where, args = _flow_where(self.dialect, q, namespace, words or [])
        total = int(self.conn.execute("SELECT COUNT(*)" + LATEST + where, args).fetchone()[0])
        sql = "SELECT f.namespace, f.id, f.revision, f.source, f.created" + LATEST + where
        page = [self.dialect.no_limit if limit < 0 else limit, offset]
        rows = self.conn.execute(sql + " ORDER BY f.namespace, f.id LIMIT ? OFFSET ?", [*args, *page])
        return [FlowRow(*row) for row in rows], total

    def flow_namespaces(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT namespace FROM flows WHERE deleted=0 ORDER BY namespace")
        return [r[0] for r in rows]

    def recent_executions(
        self, flows: list[tuple[str, str]], per_flow: int = 10
    ) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
        """(id, state, start date) of each flow's last `per_flow` executions, newest first: one statement whose
        parts each read `per_flow` rows of the (namespace, flow_id, start_date) index."""
        found: dict[tuple[str, str], list[tuple[str, str, str]]] = {flow: [] for flow in flows}
        if not flows:
            return found
        part = (
            "SELECT * FROM (SELECT namespace, flow_id, id, state, start_date FROM executions"
            " WHERE namespace=? AND flow_id=? ORDER BY start_date DESC LIMIT ?) AS recent"
        )
        sql = " UNION ALL ".join([part] * len(flows))
        args = [value for ns, flow_id in flows for value in (ns, flow_id, per_flow)]
        for ns, flow_id, execution_id, state, start in self.conn.execute(sql, args):
            found[(ns, flow_id)].append((execution_id, state, start))
        return found

    def flow_executions(self, namespace: str, flow_id: str, limit: int, offset: int) -> tuple[list[Execution], int]:
        """A page of one flow's executions, newest first, without their task runs, and how many it has."""
        args = [namespace, flow_id]
        where = " FROM executions WHERE namespace=? AND flow_id=?"
        total = int(self.conn.execute("SELECT COUNT(*)" + where, args).fetchone()[0])
        rows = self.conn.execute(
            "SELECT data" + where + " ORDER BY start_date DESC LIMIT ? OFFSET ?", [*args, limit, offset]
        )
        return [execution_from(row_value(data)) for (data,) in rows], total

    def revision_dates(self, namespace: str, flow_id: str) -> list[tuple[int, str]]:
        """(revision, creation date) of a flow's revisions, newest first, without their sources."""
        rows = self.conn.execute(
            "SELECT revision, created FROM flows WHERE namespace=? AND id=? AND deleted=0 ORDER BY revision DESC",
            (namespace, flow_id),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def task_states(self, execution_id: str) -> dict[str, list[str]]:
        """The states an execution's task runs are in, by task id (an Each's many runs add up to a few rows)."""
        rows = self.conn.execute(
            f"SELECT {self.dialect.json_text('data', 'taskId')}, {self.dialect.json_text('data', 'state', 'current')}"
            " FROM task_runs WHERE execution_id=? GROUP BY 1, 2",
            (execution_id,),
        )
        found: dict[str, list[str]] = {}
        for task_id, state in rows:
            found.setdefault(str(task_id), []).append(str(state))
        return found
