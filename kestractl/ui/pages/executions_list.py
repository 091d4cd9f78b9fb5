"""`/ui/executions`: every execution, filtered by namespace, flow, states, a date window (the last 7 days unless
the user widens it: Kestra's maintainers added a default window because unbounded lists timed out), labels and
text, all in the query string; 25 a page, newest first, paged and counted by SQLite. Rows of executions still
going are refreshed from `/ui/fragments/executions?ids=…`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kestractl.server.api_search import execution_search
from kestractl.server.http import BadRequest, Request, Response, Router
from kestractl.server.params import Params, page_param, param
from kestractl.ui.context import UiContext
from kestractl.ui.render import fragment, html_errors, page

PAGE_SIZE = 25
DEFAULT_WINDOW, DEFAULT_RANGE = timedelta(days=7), "P7D"
# The windows the list offers, as Kestra's `timeRange` (an ISO duration back from now); "all" lifts the window.
RANGES = [("PT1H", "Last hour"), ("PT24H", "Last 24 hours"), ("P7D", "Last 7 days"), ("P30D", "Last 30 days"),
          ("P365D", "Last year"), ("all", "All time")]  # fmt: skip
MAX_REFRESHED = 100


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/executions", html_errors(lambda request: executions_list(ui, request)))
    router.add("GET", "/ui/fragments/executions", html_errors(lambda request: execution_rows(ui, request)))


def windowed(params: Params, default: timedelta) -> tuple[Params, timedelta | None]:
    """The query without `timeRange=all`, and the window to apply when no date is given (None with `all`)."""
    if (param(params, "timeRange") or "").lower() != "all":
        return params, default
    return {k: v for k, v in params.items() if k != "timeRange"}, None


def executions_list(ui: UiContext, request: Request) -> Response:
    store = ui.runner.store
    params, window = windowed(request.params, DEFAULT_WINDOW)
    search = execution_search(params, window)
    number, _ = page_param(params, PAGE_SIZE)
    ids = store.search_execution_ids(search, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    total = store.count_searched_executions(search)
    return page(
        "executions/list.html",
        request,
        executions=store.execution_heads(ids),
        total=total,
        page_number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        search=search,
        ranges=RANGES,
        **range_choice(request.params, DEFAULT_RANGE),
    )


def range_choice(params: Params, default: str) -> dict[str, Any]:
    """What the Started control shows: the chosen range (`time_range`, "" for dates typed in), its words
    (`range_label`, None with dates), and whether it is the default window the user did not choose."""
    dated = bool(param(params, "startDate") or param(params, "endDate"))
    chosen = "" if dated else param(params, "timeRange") or default
    label = None if dated or chosen == "all" else dict(RANGES).get(chosen, f"last {chosen}")
    return {"time_range": chosen, "range_label": label, "default_window": not dated and not param(params, "timeRange")}


def execution_rows(ui: UiContext, request: Request) -> Response:
    """The rows of these executions (`ids=a,b,…`), as the list shows them: what its script swaps in."""
    ids = [i for value in request.params.get("ids", []) for i in value.split(",") if i]
    if len(ids) > MAX_REFRESHED:
        raise BadRequest(f"at most {MAX_REFRESHED} ids at a time")
    return fragment("executions/_list_rows.html", executions=ui.runner.store.execution_heads(ids))
