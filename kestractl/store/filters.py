"""The WHERE clauses of execution searches, built from a query's filters with bound arguments."""

from __future__ import annotations

from typing import Any

from kestractl.model import ExecutionQuery, iso


def namespace_and_children(namespace: str, column: str = "namespace") -> tuple[str, list[Any]]:
    """`namespace` or a child of it (Kestra's namespace filter), as a range the index can seek (`ns.` < `ns/` in
    byte order), then the exact test for the few names inside the range that only start like it (`ns-x`). A
    `LIKE 'ns.%'` would let a `_` in the name match any character."""
    condition = f"{column}>=? AND {column}<? AND ({column}=? OR substr({column}, ?, 1)='.')"
    return condition, [namespace, namespace + "/", namespace, len(namespace) + 1]


def query_where(query: ExecutionQuery, prefix: bool, dates: bool = True) -> tuple[str, list[Any]]:
    """The SQL condition of a query; `prefix`: its `namespace` also matches child namespaces."""
    where: list[str] = []
    args: list[Any] = []
    if query.namespace:
        condition, values = namespace_and_children(query.namespace) if prefix else ("namespace=?", [query.namespace])
        where.append(condition)
        args += values
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
