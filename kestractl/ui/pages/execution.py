"""`/ui/executions/{namespace}/{flowId}/{id}/{tab}`: one execution's page (overview, gantt, logs, topology,
outputs). Pages only read; the buttons call `/api/v1` from `static/execution.js`, and the live parts follow
`/api/v1/executions/{id}/follow` and `/api/v1/logs/{id}/follow`."""

from __future__ import annotations

from typing import Any

from kestractl.errors import KestraError, NotFoundError
from kestractl.model import LOG_LEVELS, Execution, State, iso
from kestractl.server.api_executions import on_resume_inputs
from kestractl.server.http import BadRequest, Request, Response, Router
from kestractl.server.params import int_param, param
from kestractl.store.execution_view import LogFilter
from kestractl.ui.context import UiContext
from kestractl.ui.pages.execution_view import Timeline, as_json, paged, run_rows
from kestractl.ui.render import fragment, html_errors, page

TABS = ("overview", "gantt", "logs", "topology", "outputs")
CHILDREN_SHOWN = 20
LOG_WINDOW_MAX = 2000
BASE = "/ui/executions/{namespace}/{flowId}/{executionId}"
HELPERS = {"as_json": as_json, "iso": iso}


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", BASE, html_errors(lambda request: execution_page(ui, request)))
    router.add("GET", BASE + "/{tab}", html_errors(lambda request: execution_page(ui, request)))
    router.add("GET", "/ui/fragments/execution-runs/{executionId}", html_errors(lambda r: runs_fragment(ui, r)))
    router.add("GET", "/ui/fragments/execution-gantt/{executionId}", html_errors(lambda r: gantt_fragment(ui, r)))
    router.add("GET", "/ui/fragments/execution-logs/{executionId}", lambda request: log_window(ui, request))


def execution_page(ui: UiContext, request: Request) -> Response:
    execution = ui.runner.store.load_execution(request.path_params["executionId"])
    tab = request.path_params.get("tab", "overview")
    if tab not in TABS:
        raise NotFoundError(f"No tab `{tab}` on an execution's page (tabs: {', '.join(TABS)})")
    where = (request.path_params["namespace"], request.path_params["flowId"])
    if where != (execution.namespace, execution.flow_id):  # a hand-edited URL: show the execution where it lives
        return Response(302, None, headers={"Location": f"{url_of(execution)}/{tab}"})
    context = {**HELPERS, **_header(ui, execution), **TAB_CONTEXT[tab](ui, execution, request)}
    return page(f"executions/{tab}.html", request, tab=tab, execution=execution, base=url_of(execution), **context)


def url_of(execution: Execution) -> str:
    return f"/ui/executions/{execution.namespace}/{execution.flow_id}/{execution.id}"


def _header(ui: UiContext, execution: Execution) -> dict[str, Any]:
    """Everything the header shows about the execution's neighbours: parent, children, original, resume form."""
    store = ui.runner.store
    parents = store.execution_heads([execution.parent_id]) if execution.parent_id else []
    child_ids, child_count = store.child_ids(execution.id, CHILDREN_SHOWN)
    children = store.execution_heads(child_ids)
    return {
        "parent": parents[0] if parents else None,
        "children": children,
        "child_count": child_count,
        "original": execution.original_id if execution.original_id not in (None, execution.id) else None,
        "resume_inputs": _resume_inputs(ui, execution),
        "live": not execution.state.current.is_terminated(),
    }


def _resume_inputs(ui: UiContext, execution: Execution) -> list[Any]:
    if execution.state.current != State.PAUSED:
        return []
    try:
        return on_resume_inputs(ui.runner, execution)
    except KestraError:  # the flow's revision is gone: resume still works, without inputs
        return []


def _runs(ui: UiContext, execution: Execution, request: Request) -> dict[str, Any]:
    rows = paged(run_rows(execution), int_param(request.params, "page", 1, minimum=1))
    return {"rows": rows, "timeline": Timeline.of(execution)}


def _logs(ui: UiContext, execution: Execution, request: Request) -> dict[str, Any]:
    task_ids = sorted({run.task_id for run in execution.task_runs})
    return {"levels": LOG_LEVELS, "task_ids": task_ids, "filters": _log_filter(request)}


def _outputs(ui: UiContext, execution: Execution, request: Request) -> dict[str, Any]:
    runs = [row for row in run_rows(execution) if row.run.outputs]
    return {"rows": paged(runs, int_param(request.params, "page", 1, minimum=1))}


def _nothing(ui: UiContext, execution: Execution, request: Request) -> dict[str, Any]:
    return {}


TAB_CONTEXT = {"overview": _runs, "gantt": _runs, "logs": _logs, "topology": _nothing, "outputs": _outputs}


def runs_fragment(ui: UiContext, request: Request) -> Response:
    """The task-run tree, refreshed by the page while the execution runs."""
    execution = ui.runner.store.load_execution(request.path_params["executionId"])
    context = {**HELPERS, **_runs(ui, execution, request)}
    return fragment("executions/_runs.html", execution=execution, base=url_of(execution), **context)


def gantt_fragment(ui: UiContext, request: Request) -> Response:
    execution = ui.runner.store.load_execution(request.path_params["executionId"])
    context = {**HELPERS, **_runs(ui, execution, request)}
    return fragment("executions/_gantt.html", execution=execution, base=url_of(execution), **context)


def _log_filter(request: Request) -> LogFilter:
    level = (param(request.params, "minLevel") or "TRACE").upper()
    if level not in LOG_LEVELS:
        raise BadRequest(f"minLevel must be one of {', '.join(LOG_LEVELS)}, got `{level}`")
    until = int_param(request.params, "until")
    return LogFilter(level, param(request.params, "taskId"), param(request.params, "q"), until)


def log_window(ui: UiContext, request: Request) -> Response:
    """JSON for the log view: `limit` lines from `offset` of the filtered log up to position `until` (the
    first call fixes it: later lines come from the live stream), and how many there are in all."""
    store = ui.runner.store
    execution_id = request.path_params["executionId"]
    store.execution_state(execution_id)  # 404 for an unknown execution
    where = _log_filter(request)
    first = where.until is None
    if first:
        where = LogFilter(where.min_level, where.task_id, where.text, store.last_log_seq(execution_id))
    offset, limit = int_param(request.params, "offset", 0), min(int_param(request.params, "limit", 200), LOG_WINDOW_MAX)
    lines = store.log_window(execution_id, where, offset, limit)
    total = store.log_count(execution_id, where) if first else None
    return Response(body={"until": where.until, "offset": offset, "total": total, "lines": lines})
