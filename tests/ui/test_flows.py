"""The flows list and a flow's read-only tabs: search and filters kept in the URL, each flow's recent history,
Markdown rendered safely, the topology as SVG and as Kestra's FlowGraph, revisions and their diff."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import executions_of, wait_for
from tests.test_graph import FLOW as BIG
from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE = f"""
id: hostile
namespace: dev.flows
description: |
  # Read me
  See [the docs](https://kestra.io/docs) and [this](javascript:alert(3)).

  {EVIL}
labels:
  team: "{EVIL}"
inputs:
  - id: name
    type: STRING
    defaults: "{EVIL}"
    description: "{EVIL}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
SMALL = """
id: small
namespace: dev.graph
labels:
  team: data
tasks:
  - id: fail_or_not
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.greeting ?? 'hi' }}"
"""


def _run(ui: Ui, namespace: str, flow_id: str) -> str:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = ui.call("POST", f"/api/v1/executions/{namespace}/{flow_id}?wait=true", "", form)
    assert status == 200, body
    return str(body["id"])


def _update(ui: Ui, flow: str, source: str) -> None:
    status, body = ui.call("PUT", f"/api/v1/flows/{flow}", source)
    assert status == 200, body


def test_the_graph_api_answers_kestras_flow_graph(ui: Ui) -> None:
    ui.deploy(BIG)
    status, graph = ui.call("GET", "/api/v1/flows/dev.graph/big/graph")
    assert status == 200 and {"nodes", "edges", "clusters"} <= set(graph)
    uids = {n["uid"] for n in graph["nodes"]}
    assert {
        "root.par.p1",
        "root.check.else1",
        "root.pick.case_a",
        "root.loop.inner",
        "root.child",
        "root.alert",
    } <= uids
    relations = {(e["source"], e["target"]): e["relation"]["relationType"] for e in graph["edges"]}
    assert relations[("root.par", "root.par.p1")] == "PARALLEL" and relations[("root._root", "root.alert")] == "ERROR"
    status, posted = ui.call("POST", "/api/v1/flows/graph", BIG)
    assert status == 200 and {n["uid"] for n in posted["nodes"]} == uids
    assert ui.call("POST", "/api/v1/flows/graph", "id: x\nnamespace: y\n")[0] == 422
    assert ui.call("GET", "/api/v1/flows/dev.graph/nothing/graph")[0] == 404
    assert ui.call("GET", "/api/v1/flows/dev.graph/big/graph?revision=x")[0] == 400


def test_an_execution_graph_and_its_coloured_topology(ui: Ui) -> None:
    ui.deploy(SMALL)
    execution_id = _run(ui, "dev.graph", "small")
    status, graph = ui.call("GET", f"/api/v1/executions/{execution_id}/graph")
    node = next(n for n in graph["nodes"] if n["uid"] == "root.fail_or_not")
    assert status == 200 and node["taskRun"]["state"]["current"] == "SUCCESS"
    status, html = ui.call("GET", f"/ui/fragments/topology/{execution_id}")
    assert status == 200 and "state-SUCCESS" in html and "<svg" in html
    assert ui.call("GET", "/ui/fragments/topology/nope")[0] == 404


def test_revisions_api_and_diff_show_an_added_line(ui: Ui) -> None:
    ui.deploy(SMALL)
    _update(ui, "dev.graph/small", SMALL.replace("team: data", "team: data\n  tier: gold"))
    status, revisions = ui.call("GET", "/api/v1/flows/dev.graph/small/revisions")
    assert status == 200 and [r["revision"] for r in revisions] == [1, 2] and "tier" in revisions[1]["source"]
    status, html = ui.call("GET", "/ui/flows/edit/dev.graph/small/revisions?left=1&right=2")
    assert status == 200 and '<span class="add">+  tier: gold</span>' in html


def test_an_unknown_tab_or_flow_is_an_html_404(ui: Ui) -> None:
    ui.deploy(SMALL)
    status, html = ui.call("GET", "/ui/flows/edit/dev.graph/small/nothing")
    assert status == 404 and "<html" in html
    assert ui.call("GET", "/ui/flows/edit/dev.graph/missing")[0] == 404


def test_the_list_shows_each_flows_recent_history(ui: Ui) -> None:
    ui.deploy(SMALL)
    ui.deploy(HOSTILE)
    for _ in range(3):
        _run(ui, "dev.graph", "small")
    wait_for(lambda: len(executions_of(ui.server, "small")) == 3)
    status, html = ui.call("GET", "/ui/flows?namespace=dev")
    assert status == 200 and html.count('class="mark state-SUCCESS"') == 3 and "never run" in html
    status, html = ui.call("GET", "/ui/flows/edit/dev.graph/small/executions")
    assert status == 200 and html.count('href="/ui/executions/dev.graph/small/') == 3
    status, html = ui.call("GET", "/ui/flows?label=team:data")
    assert ">small</a>" in html and ">hostile</a>" not in html
    status, html = ui.call("GET", "/ui/flows?q=HOST")
    assert ">hostile</a>" in html and ">small</a>" not in html


@needs_chromium
def test_a_hostile_flow_reads_as_text_and_markdown_renders(ui: Ui, page: Page) -> None:
    ui.deploy(HOSTILE)
    wait_for(lambda: ui.server.store.trigger_state("dev.flows", "hostile", "nightly"))  # the scheduler saw it
    page.goto(ui.url("/ui/flows/edit/dev.flows/hostile"))
    markdown = page.locator(".markdown")
    assert markdown.locator("h1").inner_text() == "Read me"
    assert markdown.get_by_role("link", name="the docs").get_attribute("href") == "https://kestra.io/docs"
    assert markdown.locator("a", has_text="this").count() == 0  # a javascript: link stays text
    assert EVIL in markdown.inner_text() and page.locator("img").count() == 0
    assert page.locator("table td", has_text=EVIL).count() == 2  # the input's default and description
    assert page.locator(".flow-meta .label").inner_text() == f"team:{EVIL}"
    assert page.locator("td", has_text="nightly").count() == 1 and page.locator("td time").count() == 1
    screenshot(page, "flow-overview")


@needs_chromium
def test_the_flows_list_filters_and_keeps_them(ui: Ui, page: Page) -> None:
    ui.deploy(SMALL)
    ui.deploy(HOSTILE)
    _run(ui, "dev.graph", "small")
    _run(ui, "dev.graph", "small")
    page.goto(ui.url("/ui/flows"))
    page.get_by_label("Label").fill("team:data")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/flows?*label=team%3Adata*")
    assert page.get_by_role("link", name="small").is_visible() and page.get_by_role("link", name="hostile").count() == 0
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name="hostile").wait_for()
    assert page.locator(".history .mark").count() == 2
    screenshot(page, "flows")


@needs_chromium
def test_the_topology_and_revisions_tabs(ui: Ui, page: Page) -> None:
    ui.deploy(BIG)
    _update(ui, "dev.graph/big", BIG.replace("message: hi", "message: hello"))
    page.goto(ui.url("/ui/flows/edit/dev.graph/big/topology"))
    svg = page.locator("svg.topology")
    for task_id in ("start", "par", "p1", "p2", "then1", "else1", "case_a", "other", "inner", "child", "alert"):
        assert svg.locator("g.node text.id", has_text=task_id).count() >= 1, task_id
    assert svg.get_by_role("link").first.get_attribute("href") == "/ui/flows/edit/dev.graph/small"
    screenshot(page, "flow-topology")
    page.get_by_role("link", name="Revisions").click()
    page.get_by_label("From").select_option("1")
    page.get_by_label("To").select_option("2")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/revisions?left=1&right=2")
    assert page.locator(".diff .add").inner_text() == "+    message: hello"
    screenshot(page, "flow-revisions")


def test_the_list_pages_many_flows_and_keeps_its_filters(ui: Ui) -> None:
    for n in range(27):
        ui.deploy(SMALL.replace("id: small", f"id: flow{n:02d}"))
    status, html = ui.call("GET", "/ui/flows?namespace=dev.graph")
    assert status == 200 and "27 flows" in html and ">flow24</a>" in html and ">flow25</a>" not in html
    assert 'href="/ui/flows?namespace=dev.graph&amp;page=2"' in html
    status, html = ui.call("GET", "/ui/flows?namespace=dev.graph&page=2")
    assert ">flow25</a>" in html and ">flow26</a>" in html and "Page 2 of 2" in html
