"""`/ui/namespaces`: every namespace known, as a tree; and per namespace (`/ui/namespaces/edit/{ns}/{tab}`) its
overview, flows, KV entries and files. The pages only read; their script changes things through `/api/v1`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kestractl import namespaces
from kestractl.errors import NotFoundError, ValidationError
from kestractl.kv import KVEntry, KVStore, KVType
from kestractl.model import iso, utcnow
from kestractl.namespace_files import NAMESPACE_PATH, NamespaceFiles
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import int_param, param
from kestractl.tasks.kv import plain
from kestractl.ui.context import UiContext
from kestractl.ui.pages.namespace_files import files_tab
from kestractl.ui.render import html_errors, page

LIST_PAGE = 100
KV_PAGE = 50
PREVIEW_CHARS = 120
OVERVIEW_WINDOW = timedelta(days=30)
Tab = Callable[[UiContext, str, Request], dict[str, Any]]


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/namespaces", html_errors(lambda request: namespaces_list(ui, request)))
    tab = html_errors(lambda request: namespace_page(ui, request))
    router.add("GET", "/ui/namespaces/edit/{namespace}", tab)
    router.add("GET", "/ui/namespaces/edit/{namespace}/{tab}", tab)


def namespaces_list(ui: UiContext, request: Request) -> Response:
    q = param(request.params, "q") or ""
    found = namespaces.search(namespaces.known(ui.runner.store, ui.runner.storage), q)
    number, pages = _page_of(request, len(found), LIST_PAGE)
    shown = found[(number - 1) * LIST_PAGE : number * LIST_PAGE]
    return page("namespaces/list.html", request, namespaces=shown, total=len(found), q=q, number=number, pages=pages)


def namespace_page(ui: UiContext, request: Request) -> Response:
    namespace, tab = request.path_params["namespace"], request.path_params.get("tab", "overview")
    if not NAMESPACE_PATH.fullmatch(namespace):
        raise ValidationError(f"Invalid namespace '{namespace}': expected names joined by dots, e.g. company.team")
    if tab not in TABS:
        raise NotFoundError(f"Not Found: a namespace has no tab '{tab}' (tabs: {', '.join(TABS)})")
    context = TABS[tab](ui, namespace, request)
    return page(f"namespaces/{tab}.html", request, namespace=namespace, tab=tab, **context)


def overview_tab(ui: UiContext, namespace: str, request: Request) -> dict[str, Any]:
    """The namespace at a glance: each count one query or one folder listing; executions of the last 30 days
    (Kestra's default window)."""
    since = utcnow() - OVERVIEW_WINDOW
    states = ui.runner.store.execution_states(namespace, since)
    return {
        "since_iso": iso(since),
        "flows": ui.runner.store.flow_counts().get(namespace, 0),
        "states": states,
        "executions": sum(states.values()),
        "kv_keys": len(KVStore(ui.runner.storage, namespace).list()),
        "files": len(NamespaceFiles(ui.runner.storage, namespace).paths()),
    }


def flows_tab(ui: UiContext, namespace: str, request: Request) -> dict[str, Any]:
    """The namespace's flows and its children's, as Kestra's namespace filter matches them."""
    return {"flows": ui.runner.store.list_flows(namespace)}


@dataclass
class KvRow:
    key: str
    type: str
    preview: str
    truncated: bool
    description: str | None
    updated: datetime
    expiration: datetime | None


def kv_tab(ui: UiContext, namespace: str, request: Request) -> dict[str, Any]:
    """A page of keys (metadata sidecars are listed, values read for the shown page only)."""
    store = KVStore(ui.runner.storage, namespace)
    entries = store.list()
    number, pages = _page_of(request, len(entries), KV_PAGE)
    rows = [_kv_row(store, entry) for entry in entries[(number - 1) * KV_PAGE : number * KV_PAGE]]
    return {"rows": rows, "total": len(entries), "number": number, "pages": pages, "types": [t.value for t in KVType]}


def _kv_row(store: KVStore, entry: KVEntry) -> KvRow:
    found = store.get(entry.key)
    value = found.value if found else None
    text = _text(value)
    return KvRow(
        entry.key,
        KVType.of(value).value,
        text[:PREVIEW_CHARS],
        len(text) > PREVIEW_CHARS,
        entry.description,
        entry.update_date,
        entry.expiration_date,
    )


def _text(value: Any) -> str:
    """A value as one line of text: a string as is, anything else in its JSON form."""
    shown = plain(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
    return shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)


TABS: dict[str, Tab] = {"overview": overview_tab, "flows": flows_tab, "kv": kv_tab, "files": files_tab}


def _page_of(request: Request, total: int, size: int) -> tuple[int, int]:
    """The page asked for (from 1, kept within the pages there are) and how many pages there are."""
    pages = max(1, -(-total // size))
    return min(int_param(request.params, "page", 1, minimum=1), pages), pages
