"""A flow's page, `/ui/flows/edit/{namespace}/{id}/{tab}`: the read-only tabs (overview, topology, revisions,
executions) and the topology of an execution's flow coloured by its task runs' states (a fragment). The editor
and execute tabs are routes of their own (literal segments win over `{tab}`)."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from markupsafe import Markup

from kestractl.errors import NotFoundError
from kestractl.graph import flow_graph, short_type
from kestractl.model import Flow, State, parse_iso, utcnow, worst_state
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import int_param
from kestractl.triggers import schedule
from kestractl.ui.context import UiContext
from kestractl.ui.render import fragment, html_errors, page
from kestractl.ui.topology import layout

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

BASE = "/ui/flows/edit/{namespace}/{id}"
EXECUTIONS_PAGE = 25
Tab = Callable[[UiContext, Request, Flow], Response]


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", BASE, html_errors(lambda request: _tab(ui, request, "overview")))
    router.add("GET", BASE + "/{tab}", html_errors(lambda request: _tab(ui, request, request.path_params["tab"])))
    router.add(
        "GET", "/ui/fragments/topology/{executionId}", html_errors(lambda request: execution_topology(ui, request))
    )


def _tab(ui: UiContext, request: Request, tab: str) -> Response:
    handler = TABS.get(tab)
    if handler is None:
        raise NotFoundError(f"Not Found: no tab `{tab}` on a flow's page")
    ns, flow_id = request.path_params["namespace"], request.path_params["id"]
    return handler(ui, request, ui.runner.flows.get(ns, flow_id))


def _page(template: str, ui: UiContext, request: Request, flow: Flow, tab: str, **context: Any) -> Response:
    """A tab inside the flow's frame: its name, labels, and where it comes from when a file is its source."""
    path = ui.flow_file(flow.namespace, flow.id)
    return page(
        template,
        request,
        flow=flow,
        flow_namespace=flow.namespace,
        flow_id=flow.id,
        flow_labels=flow.labels,
        flow_file=str(path) if path else None,
        tab=tab,
        **context,
    )


def overview(ui: UiContext, request: Request, flow: Flow) -> Response:
    # markdown-it with raw HTML off: the description's own tags come out as escaped text.
    description = Markup(markdown().render(flow.description)) if flow.description else ""
    triggers = [_trigger_row(ui, flow, trigger) for trigger in flow.triggers]
    return _page("flows/overview.html", ui, request, flow, "overview", description=description, triggers=triggers)


def _trigger_row(ui: UiContext, flow: Flow, trigger: dict[str, Any]) -> dict[str, Any]:
    """A trigger's id, short type, whether it is off, and a schedule's next fire: the scheduler's stored date,
    or the cron's next one when the scheduler has not seen the trigger yet."""
    store, trigger_id, kind = ui.runner.store, str(trigger.get("id", "")), short_type(str(trigger.get("type", "")))
    off = bool(trigger.get("disabled")) or (flow.namespace, flow.id, trigger_id) in store.disabled_triggers()
    next_date = None
    if kind == "Schedule" and not off:
        state = store.trigger_state(flow.namespace, flow.id, trigger_id)
        next_date = state.next_date if state else schedule.first_next(trigger, utcnow())
    return {"id": trigger_id, "type": kind, "next": next_date, "off": off}


def topology(ui: UiContext, request: Request, flow: Flow) -> Response:
    drawing = layout(flow_graph(flow))
    return _page("flows/topology.html", ui, request, flow, "topology", drawing=drawing)


def revisions(ui: UiContext, request: Request, flow: Flow) -> Response:
    """Every revision, and the unified diff between the two chosen (by default the latest and the one before)."""
    listed = [(n, parse_iso(created)) for n, created in ui.runner.store.revision_dates(flow.namespace, flow.id)]
    numbers = [number for number, _ in listed]
    right = _chosen(request, "right", numbers, numbers[0])
    left = _chosen(request, "left", numbers, numbers[1] if len(numbers) > 1 else numbers[0])
    diff = _diff(ui, flow, left, right)
    return _page(
        "flows/revisions.html", ui, request, flow, "revisions", revisions=listed, left=left, right=right, diff=diff
    )


def executions(ui: UiContext, request: Request, flow: Flow) -> Response:
    number = int_param(request.params, "page", 1, minimum=1)
    found, total = ui.runner.store.flow_executions(
        flow.namespace, flow.id, EXECUTIONS_PAGE, (number - 1) * EXECUTIONS_PAGE
    )
    pages = max((total + EXECUTIONS_PAGE - 1) // EXECUTIONS_PAGE, 1)
    context = {"executions": found, "total": total, "page_number": number, "pages": pages}
    return _page("flows/executions.html", ui, request, flow, "executions", **context)


def execution_topology(ui: UiContext, request: Request) -> Response:
    """The revision the execution ran, each task's box in the worst state among its task runs (an Each's
    iterations, retries) while they have all ended, else the state of the one still going."""
    store = ui.runner.store
    execution = store.load_executions([request.path_params["executionId"]])
    if not execution:
        raise NotFoundError(f"execution not found: {request.path_params['executionId']}")
    head = execution[0]
    flow = ui.runner.flows.get(head.namespace, head.flow_id, head.flow_revision)
    states = {task_id: _summary(found) for task_id, found in store.task_states(head.id).items()}
    return fragment("flows/topology_fragment.html", drawing=layout(flow_graph(flow), states), flow=flow)


def _summary(states: list[str]) -> str:
    known = [State(s) for s in states if s in State.__members__]
    going = [s for s in known if not s.is_terminated()]
    if going:
        return going[0].value
    return worst_state(known).value if any(s.is_failed() or s == State.WARNING for s in known) else known[0].value


def _chosen(request: Request, name: str, numbers: list[int], default: int) -> int:
    chosen = int_param(request.params, name, default)
    return chosen if chosen in numbers else default


def _diff(ui: UiContext, flow: Flow, left: int, right: int) -> list[tuple[str, str]]:
    """(class, line) of the unified diff from revision `left` to `right`: add, del, hunk, meta or context."""
    store = ui.runner.store
    old = store.flow_revision(flow.namespace, flow.id, left).source.splitlines()
    new = store.flow_revision(flow.namespace, flow.id, right).source.splitlines()
    lines = difflib.unified_diff(old, new, f"revision {left}", f"revision {right}", lineterm="", n=3)
    return [(_line_class(line), line) for line in lines]


def _line_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "meta"
    return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "context")


@functools.cache
def markdown() -> MarkdownIt:
    """CommonMark with raw HTML off (escaped as text); links and images only to http(s) or relative URLs."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]
    return md


def _safe_link(url: str) -> bool:
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return scheme in ("", "http", "https")


TABS: dict[str, Tab] = {"overview": overview, "topology": topology, "revisions": revisions, "executions": executions}
