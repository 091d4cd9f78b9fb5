"""`/ui/flows`: the flows list, searched, filtered and paged in SQL, each flow with its labels, last state
and a small history of its last executions (one query for the whole page); the flow page's tabs live in
`flow_page`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kestractl.errors import KestraError
from kestractl.model import parse_iso
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import int_param, param
from kestractl.store import FlowRow
from kestractl.ui.context import UiContext
from kestractl.ui.pages import flow_page
from kestractl.ui.render import html_errors, page

PAGE_SIZE = 25
HISTORY = 10


@dataclass
class FlowItem:
    """A row of the list: the flow, its labels, and its last executions (newest first)."""

    row: FlowRow
    labels: list[tuple[str, str]]
    history: list[tuple[str, str, datetime | None]] = field(default_factory=list)

    @property
    def oldest_first(self) -> list[tuple[str, str, datetime | None]]:
        return self.history[::-1]


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/flows", html_errors(lambda request: flows_list(ui, request)))
    flow_page.add_routes(router, ui)


def flows_list(ui: UiContext, request: Request) -> Response:
    q, namespace, label = (param(request.params, name) or "" for name in ("q", "namespace", "label"))
    number = int_param(request.params, "page", 1, minimum=1)
    items, total = _matching(ui, q, namespace, _label(label), number)
    recent = ui.runner.store.recent_executions([(i.row.namespace, i.row.id) for i in items], HISTORY)
    for item in items:
        item.history = [(i, state, parse_iso(start)) for i, state, start in recent[(item.row.namespace, item.row.id)]]
    return page(
        "flows/list.html",
        request,
        flows=items,
        total=total,
        q=q,
        namespace=namespace,
        label=label,
        page_number=number,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        namespaces=ui.runner.store.flow_namespaces(),
    )


def _label(text: str) -> tuple[str, str | None] | None:
    """`key:value` (or a bare `key`, any value)."""
    if not text:
        return None
    key, sep, value = text.partition(":")
    return key.strip(), value.strip() if sep else None


def _matching(
    ui: UiContext, q: str, namespace: str, label: tuple[str, str | None] | None, number: int
) -> tuple[list[FlowItem], int]:
    """A page of flows, paged by SQL; with a label filter SQL keeps the flows whose source holds its key and
    value, and their parsed labels (cached per revision) decide exactly before paging."""
    store, offset = ui.runner.store, (number - 1) * PAGE_SIZE
    if label is None:
        rows, total = store.search_flow_rows(q, namespace, limit=PAGE_SIZE, offset=offset)
        return [FlowItem(row, _labels(ui, row)) for row in rows], total
    words = [w for w in label if w]
    candidates, _ = store.search_flow_rows(q, namespace, words)
    items = [FlowItem(row, _labels(ui, row)) for row in candidates]
    items = [i for i in items if any(k == label[0] and label[1] in (None, v) for k, v in i.labels)]
    return items[offset : offset + PAGE_SIZE], len(items)


def _labels(ui: UiContext, row: FlowRow) -> list[tuple[str, str]]:
    """The flow's labels from its parsed revision; a revision that no longer parses (a plugin gone) shows none."""
    try:
        return ui.runner.flows.get(row.namespace, row.id, row.revision).labels
    except KestraError:
        return []
