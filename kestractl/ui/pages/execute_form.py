"""`/ui/flows/edit/{namespace}/{id}/execute`: the form Kestra's Execute button opens, one control per input of
the flow's latest revision. The page only reads; `static/execute.js` checks values with
`POST /api/v1/executions/{ns}/{id}/validate` and creates the execution with `POST /api/v1/executions/{ns}/{id}`."""

from __future__ import annotations

from kestractl.server.http import Request, Response, Router
from kestractl.ui.context import UiContext
from kestractl.ui.input_controls import control_for
from kestractl.ui.render import html_errors, page


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/flows/edit/{namespace}/{id}/execute", html_errors(lambda request: execute_form(ui, request)))


def execute_form(ui: UiContext, request: Request) -> Response:
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    flow = ui.runner.flows.get(namespace, flow_id)
    return page(
        "flows/execute.html",
        request,
        flow_namespace=namespace,
        flow_id=flow_id,
        tab="execute",
        controls=[control_for(inp) for inp in flow.inputs],
        disabled=flow.disabled,
    )
