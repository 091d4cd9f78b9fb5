"""`/ui/flows/edit/{namespace}/{id}/editor` and `/ui/flows/new`: a flow's YAML in a textarea that
`static/editor.js` validates as you type and saves through `/api/v1/flows` (each save a new revision). A flow
loaded from the watched `-f` folder is shown read-only: its file is its source of truth."""

from __future__ import annotations

from kestractl.server.http import Request, Response, Router
from kestractl.server.params import param
from kestractl.ui.context import UiContext
from kestractl.ui.render import html_errors, page

STARTER = """id: hello_world
namespace: {namespace}

description: A first flow

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello World!
"""


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/flows/new", html_errors(new_flow))
    router.add("GET", "/ui/flows/edit/{namespace}/{id}/editor", html_errors(lambda request: edit_flow(ui, request)))


def new_flow(request: Request) -> Response:
    """A starter flow in the namespace the user came from (`?namespace=`), else Kestra's `company.team`."""
    namespace = param(request.params, "namespace") or "company.team"
    return page("flows/new.html", request, source=STARTER.format(namespace=namespace), revision=None, file=None)


def edit_flow(ui: UiContext, request: Request) -> Response:
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    row = ui.runner.store.flow_revision(namespace, flow_id)
    file = ui.flow_file(namespace, flow_id)
    return page(
        "flows/editor.html",
        request,
        flow_namespace=namespace,
        flow_id=flow_id,
        tab="editor",
        source=row.source,
        revision=row.revision,
        file=file,
    )
