"""`/ui/flows`: the flows list (search, namespace filter) and, per flow, its page's tabs."""

from __future__ import annotations

from kestractl.server.http import Request, Response, Router
from kestractl.ui.context import UiContext
from kestractl.ui.render import html_errors, page


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/flows", html_errors(lambda request: flows_list(ui, request)))


def flows_list(ui: UiContext, request: Request) -> Response:
    q = (request.params.get("q") or [""])[-1].strip()
    namespace = (request.params.get("namespace") or [""])[-1].strip()
    rows = ui.runner.store.list_flows(namespace or None)
    if q:
        rows = [r for r in rows if q.lower() in f"{r.namespace}.{r.id}".lower()]
    return page("flows/list.html", request, flows=rows, q=q, namespace=namespace)
