"""The WHERE clauses of execution searches, built from a query's filters with bound arguments."""

from __future__ import annotations

from typing import Any

from kestractl.model import ExecutionQuery, iso


def query_where(query: ExecutionQuery, prefix: bool, dates: bool = True) -> tuple[str, list[Any]]:
    """The SQL condition of a query; `prefix`: its `namespace` also matches child namespaces."""
    where: list[str] = []
    args: list[Any] = []
    if query.namespace:
        where.append("(namespace=? OR namespace LIKE ?)" if prefix else "namespace=?")
        args += [query.namespace, query.namespace + ".%"] if prefix else [query.namespace]
    if query.flow_id:
        where.append("flow_id=?")
        args.append(query.flow_id)
    if query.flows:
        where.append("(" + " OR ".join("(namespace=? AND flow_id=?)" for _ in query.flows) + ")")
        args += [part for flow in query.flows for part in flow]
    if query.namespaces:
        where.append(f"namespace IN ({','.join('?' * len(query.namespaces))})")
        args += query.namespaces
    if query.states:
        where.append(f"state IN ({','.join('?' * len(query.states))})")
        args += query.states
    if dates and query.start is not None:
        where.append("start_date>=?")
        args.append(iso(query.start))
    if dates and query.end is not None:
        where.append("start_date<=?")
        args.append(iso(query.end))
    return (" WHERE " + " AND ".join(where) if where else ""), args
