"""Kestra's searches and statistics: `GET /api/v1/executions/search`, `POST /api/v1/stats/executions/daily`,
`GET /api/v1/logs/search` and `GET /api/v1/triggers/search`, in Kestra's shapes, filtered, paged and counted by
the store's SQL. The UI's lists read their filters from the query string with the same functions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from kestractl.durations import parse_duration
from kestractl.errors import KestraError
from kestractl.model import LOG_LEVELS, Execution, Flow, State, iso, iso_duration, utcnow
from kestractl.server.http import BadRequest, Request, Response, Router
from kestractl.server.params import Params, date_param, labels_param, page_param, param, parse_date
from kestractl.store import Store
from kestractl.store.search import SORTS, DailyStatistics, ExecutionSearch, LogSearch, NextFire

STATS_DAYS = 30
MAX_STATS_DAYS = 3_660  # one entry per day is answered


def time_window(params: Params, default: timedelta | None) -> tuple[datetime | None, datetime | None]:
    """`startDate`/`endDate`, or `timeRange` (an ISO duration back from now, Kestra's relative range), or
    `default` back from now when none is given (None: unbounded)."""
    start, end = date_param(params, "startDate"), date_param(params, "endDate")
    text = param(params, "timeRange")
    if text is not None:
        try:
            default = parse_duration(text)
        except (KestraError, ValueError):
            raise BadRequest(f"`timeRange` must be an ISO-8601 duration like PT24H or P7D, got `{text}`") from None
    if start is None and end is None and default is not None:
        start = utcnow() - default
    return start, end


def execution_search(params: Params, default_window: timedelta | None = None) -> ExecutionSearch:
    """The filters of Kestra's executions search from a query string."""
    states = tuple(s.strip().upper() for v in params.get("state", []) for s in v.split(",") if s.strip())
    unknown = [s for s in states if s not in State.__members__]
    if unknown:
        raise BadRequest(f"unknown state `{unknown[0]}` (one of {', '.join(State.__members__)})")
    start, end = time_window(params, default_window)
    return ExecutionSearch(
        namespace=param(params, "namespace"),
        flow_id=param(params, "flowId"),
        states=states,
        start=start,
        end=end,
        labels=tuple(labels_param(params)),
        q=param(params, "q"),
    )


def log_search(params: Params, default_window: timedelta | None = None) -> LogSearch:
    level = (param(params, "minLevel") or "TRACE").upper()
    if level not in LOG_LEVELS:
        raise BadRequest(f"`minLevel` must be one of {', '.join(LOG_LEVELS)}, got `{level}`")
    start, end = time_window(params, default_window)
    return LogSearch(param(params, "namespace"), param(params, "flowId"), level, start, end, param(params, "q"))


def sort_param(params: Params) -> tuple[str, bool]:
    """Kestra's `sort=state.startDate:desc` → (a key of `SORTS`, descending)."""
    text = param(params, "sort") or "state.startDate:desc"
    field, _, order = text.partition(":")
    if field not in SORTS or order.lower() not in ("", "asc", "desc"):
        raise BadRequest(f"`sort` must be one of {', '.join(SORTS)} with :asc or :desc, got `{text}`")
    return field, order.lower() != "asc"


def daily_json(day: DailyStatistics) -> dict[str, Any]:
    """Kestra's `DailyExecutionStatistics`: durations as ISO-8601 durations, a count for every state."""
    low, avg, high, total, count = day.duration()
    durations = {k: iso_duration(timedelta(seconds=v)) for k, v in (("min", low), ("avg", avg), ("max", high))}
    return {
        "startDate": iso(day.start),
        "duration": {**durations, "sum": iso_duration(timedelta(seconds=total)), "count": count},
        "executionCounts": {s.value: day.counts.get(s.value, 0) for s in State},
        "groupBy": "day",
    }


def stats_request(body: Any) -> tuple[ExecutionSearch, datetime, datetime]:
    """Kestra's `StatisticRequest` body → (filters, start, end)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    end = parse_date(body.get("endDate"), "endDate") or utcnow()
    start = parse_date(body.get("startDate"), "startDate") or end - timedelta(days=STATS_DAYS)
    if end - start > timedelta(days=MAX_STATS_DAYS):
        raise BadRequest(f"from `startDate` to `endDate` is at most {MAX_STATS_DAYS} days")
    states = body.get("state") or []
    params = {name: [str(body.get(name) or "")] for name in ("namespace", "flowId", "q")}
    search = execution_search({**params, "state": [str(s) for s in (states if isinstance(states, list) else [states])]})
    return search, start, end


class SearchApi:
    def __init__(
        self,
        store: Store,
        execution_json: Callable[[Execution], dict[str, Any]],
        flow: Callable[[str, str], Flow],
    ) -> None:
        self.store = store
        self.execution_json = execution_json
        self.flow = flow

    def add_routes(self, router: Router) -> None:
        router.add("GET", "/api/v1/executions/search", self.search_executions)
        router.add("POST", "/api/v1/stats/executions/daily", self.daily_statistics)
        router.add("GET", "/api/v1/logs/search", self.search_logs)
        router.add("GET", "/api/v1/triggers/search", self.search_triggers)

    def search_executions(self, request: Request) -> Response:
        """`{results, total}`, newest first unless `sort` says otherwise."""
        search, (page, size) = execution_search(request.params), page_param(request.params, 10)
        field, desc = sort_param(request.params)
        ids = self.store.search_execution_ids(search, size, (page - 1) * size, field, desc)
        results = [self.execution_json(e) for e in self.store.load_executions(ids)]
        return Response(body={"results": results, "total": self.store.count_searched_executions(search)})

    def daily_statistics(self, request: Request) -> Response:
        """Body `{namespace, flowId, startDate, endDate, state}`; the last 30 days by default. Days are those of
        `startDate`'s offset (UTC without one)."""
        search, start, end = stats_request(request.json() if request.body.strip() else {})
        days = self.store.daily_statistics(search, start, end, start.utcoffset() or timedelta(0))
        return Response(body=[daily_json(d) for d in days])

    def search_logs(self, request: Request) -> Response:
        """`{results, total}` of log lines across executions, newest first."""
        search, (page, size) = log_search(request.params), page_param(request.params, 10)
        entries = self.store.search_logs(search, size, (page - 1) * size)
        return Response(
            body={"results": [e.to_api() for e in entries], "total": self.store.count_searched_logs(search)}
        )

    def search_triggers(self, request: Request) -> Response:
        """`{results: [{abstractTrigger, triggerContext}], total}`: each schedule's definition and where it stands
        (its next date), soonest first."""
        page, size = page_param(request.params, 10)
        fires, total = self.store.next_fires(size, (page - 1) * size)
        return Response(body={"results": [self._trigger_json(f) for f in fires], "total": total})

    def _trigger_json(self, fire: NextFire) -> dict[str, Any]:
        try:
            triggers = self.flow(fire.namespace, fire.flow_id).triggers
        except KestraError:  # a flow that no longer parses: its state is still worth showing
            triggers = []
        context = {"namespace": fire.namespace, "flowId": fire.flow_id, "triggerId": fire.trigger_id,
                   "nextExecutionDate": iso(fire.next_date), "disabled": False}  # fmt: skip
        definition = next((t for t in triggers if t.get("id") == fire.trigger_id), None)
        return {"abstractTrigger": definition, "triggerContext": context}
