"""`/ui/logs`: log lines across executions, by minimum level, namespace, flow, time (the last 24 hours unless
the user widens it) and text; 100 a page, newest first, paged and counted by SQLite. Each line links to its
execution's logs."""

from __future__ import annotations

from datetime import timedelta

from kestractl.model import LOG_LEVELS
from kestractl.server.api_search import log_search
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import page_param
from kestractl.ui.context import UiContext
from kestractl.ui.pages.executions_list import RANGES, range_choice, windowed
from kestractl.ui.render import html_errors, page

PAGE_SIZE = 100
DEFAULT_WINDOW, DEFAULT_RANGE = timedelta(hours=24), "PT24H"


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/logs", html_errors(lambda request: logs_page(ui, request)))


def logs_page(ui: UiContext, request: Request) -> Response:
    store = ui.runner.store
    params, window = windowed(request.params, DEFAULT_WINDOW)
    search = log_search(params, window)
    number, _ = page_param(params, PAGE_SIZE)
    total = store.count_searched_logs(search)
    return page(
        "logs.html",
        request,
        entries=store.search_logs(search, PAGE_SIZE, (number - 1) * PAGE_SIZE),
        total=total,
        page_number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        search=search,
        levels=LOG_LEVELS,
        ranges=RANGES,
        **range_choice(request.params, DEFAULT_RANGE),
    )
