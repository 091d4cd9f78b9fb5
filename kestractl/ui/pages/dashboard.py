"""`/ui/dashboards` (where `/` leads): executions per day by state over the last 30 days as a stacked bar chart
(server-rendered SVG), counts per state, what runs now, what failed recently, and the next schedule dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kestractl.model import State, utcnow
from kestractl.server.http import Request, Response, Router
from kestractl.store.search import DailyStatistics, ExecutionSearch
from kestractl.ui.context import UiContext
from kestractl.ui.render import html_errors, page

DAYS = 30
TABLE_ROWS = 10
LIVE = tuple(s.value for s in State if not s.is_terminated())
FAILED = (State.FAILED.value, State.KILLED.value)
# Stacked bottom to top: ended well, ended badly, still going.
STACK = [
    *(State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.SKIPPED, State.RETRIED),
    *(State.PAUSED, State.QUEUED, State.CREATED, State.RESTARTED, State.RETRYING, State.RUNNING, State.KILLING),
]
# The chart's viewBox: bars in [LEFT, WIDTH] × [TOP, TOP + PLOT], day labels below.
WIDTH, LEFT, TOP, PLOT, HEIGHT = 1000.0, 36.0, 8.0, 170.0, 200.0


@dataclass(frozen=True)
class Bar:
    day: str
    state: str
    count: int
    x: float
    y: float
    width: float
    height: float


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/dashboards", html_errors(lambda request: dashboard(ui, request)))


def dashboard(ui: UiContext, request: Request) -> Response:
    store, now = ui.runner.store, utcnow()
    first = datetime.combine((now - timedelta(days=DAYS - 1)).date(), datetime.min.time(), UTC)
    days = store.daily_statistics(ExecutionSearch(), first, now)
    running = ExecutionSearch(states=LIVE)
    failed = ExecutionSearch(states=FAILED, start=now - timedelta(days=7))
    fires, _ = store.next_fires(TABLE_ROWS)
    return page(
        "dashboard.html",
        request,
        days=days,
        bars=bars(days),
        peak=max((d.total for d in days), default=0),
        totals=totals(days),
        running=store.execution_heads(store.search_execution_ids(running, TABLE_ROWS)),
        running_total=store.count_searched_executions(running),
        failed=store.execution_heads(store.search_execution_ids(failed, TABLE_ROWS)),
        fires=fires,
        live=LIVE,
        geometry={"width": WIDTH, "left": LEFT, "top": TOP, "plot": PLOT, "height": HEIGHT},
    )


def totals(days: list[DailyStatistics]) -> list[tuple[str, int]]:
    """(state, executions) over the chart's days, in the chart's order, states without any left out."""
    counts = {s.value: sum(d.counts.get(s.value, 0) for d in days) for s in STACK}
    return [(state, n) for state, n in counts.items() if n]


def bars(days: list[DailyStatistics]) -> list[Bar]:
    """One rectangle per day and state, stacked, scaled to the busiest day."""
    peak = max((d.total for d in days), default=0) or 1
    slot = (WIDTH - LEFT) / max(1, len(days))
    out = []
    for index, day in enumerate(days):
        bottom = TOP + PLOT
        for state in STACK:
            count = day.counts.get(state.value, 0)
            if count:
                height = count / peak * PLOT
                bottom -= height
                x = LEFT + index * slot + slot * 0.1
                out.append(Bar(day.start.date().isoformat(), state.value, count, x, bottom, slot * 0.8, height))
    return out
