"""The executions list, the dashboard and the logs search: their API endpoints in Kestra's shapes, filters kept in
the URL (reload, back and forward), paging, running rows refreshed, the daily chart, hostile text shown as text,
and a CLI that never loads the UI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from kestractl.model import Execution, State, StateInfo, new_id, utcnow
from tests.conftest import wait_for
from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE = f"""
id: hostile
namespace: dev.lists
labels:
  note: "{EVIL}"
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "found {EVIL}"
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: careful
"""
SLOW = """
id: slow
namespace: dev.lists
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1.5S
"""
SCHEDULED = """
id: nightly
namespace: dev.lists
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: every-night
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""


def _seed(ui: Ui, namespace: str, state: State, count: int, ago: timedelta = timedelta(minutes=5)) -> list[str]:
    """`count` ended executions written straight to the store, a second apart, the newest `ago` before now."""
    executions = []
    for i in range(count):
        start = utcnow() - ago - timedelta(seconds=i)
        info = StateInfo.new(State.CREATED, start)
        info.moved(state, start + timedelta(seconds=2))
        executions.append(Execution(new_id(), namespace, "seeded", 1, labels=[("team", "a")], state=info))
    with ui.server.store.transaction():
        ui.server.store.save_executions(executions)
    return [e.id for e in executions]


def test_the_executions_search_api_filters_pages_and_sorts_in_kestra_shape(ui: Ui) -> None:
    _seed(ui, "dev.a", State.FAILED, 12)
    _seed(ui, "dev.a.child", State.SUCCESS, 3)
    old = _seed(ui, "dev.b", State.SUCCESS, 1, timedelta(days=10))
    status, body = ui.call("GET", "/api/v1/executions/search?namespace=dev.a&state=FAILED&size=5&page=3")
    assert status == 200 and body["total"] == 12 and len(body["results"]) == 2
    assert {r["state"]["current"] for r in body["results"]} == {"FAILED"}
    assert ui.call("GET", "/api/v1/executions/search?namespace=dev.a&labels=team:a")[1]["total"] == 15
    week = quote((utcnow() - timedelta(days=7)).isoformat())
    assert ui.call("GET", f"/api/v1/executions/search?namespace=dev&startDate={week}")[1]["total"] == 15
    assert ui.call("GET", "/api/v1/executions/search?q=dev.b")[1]["results"][0]["id"] == old[0]
    oldest = ui.call("GET", "/api/v1/executions/search?sort=state.startDate:asc&size=1")[1]["results"]
    assert oldest[0]["id"] == old[0]
    assert ui.call("GET", "/api/v1/executions/search?page=" + "9" * 30)[1] == {"results": [], "total": 15 + 1}
    for bad in ("state=NOPE", "sort=nope:desc", "startDate=yesterday", "labels=nocolon", "size=x"):
        status, body = ui.call("GET", f"/api/v1/executions/search?{bad}")
        assert status == 400 and body["message"], bad


def test_daily_statistics_come_in_kestra_shape(ui: Ui) -> None:
    _seed(ui, "dev.a", State.SUCCESS, 3)
    _seed(ui, "dev.b", State.FAILED, 2)
    status, days = ui.call("POST", "/api/v1/stats/executions/daily", {})
    assert status == 200 and len(days) == 31
    today = days[-1]
    assert today["startDate"] == utcnow().date().isoformat() + "T00:00:00.000Z" and today["groupBy"] == "day"
    assert today["executionCounts"]["SUCCESS"] == 3 and today["executionCounts"]["FAILED"] == 2
    assert set(today["executionCounts"]) >= {"CREATED", "RUNNING", "PAUSED", "QUEUED", "CANCELLED", "KILLED"}
    assert today["duration"] == {"min": "PT2S", "avg": "PT2S", "max": "PT2S", "sum": "PT10S", "count": 5}
    body = {"namespace": "dev.b", "startDate": utcnow().isoformat(), "endDate": utcnow().isoformat()}
    assert ui.call("POST", "/api/v1/stats/executions/daily", body)[1][0]["executionCounts"]["SUCCESS"] == 0
    assert ui.call("POST", "/api/v1/stats/executions/daily", {"startDate": "soon"})[0] == 400
    assert ui.call("POST", "/api/v1/stats/executions/daily", {"startDate": "1900-01-01T00:00:00Z"})[0] == 400


def test_logs_and_triggers_search_come_in_kestra_shape(ui: Ui) -> None:
    ui.deploy(HOSTILE)
    ui.deploy(SCHEDULED)
    status, _ = ui.call("POST", "/api/v1/executions/dev.lists/hostile?wait=true")
    status, body = ui.call("GET", "/api/v1/logs/search?namespace=dev.lists&minLevel=WARN")
    assert status == 200 and body["total"] == 1 and body["results"][0]["message"] == "careful"
    assert body["results"][0]["flowId"] == "hostile" and body["results"][0]["namespace"] == "dev.lists"
    assert ui.call("GET", "/api/v1/logs/search?q=found&size=1")[1]["total"] == 1
    assert ui.call("GET", "/api/v1/logs/search?minLevel=LOUD")[0] == 400
    found = wait_for(lambda: ui.call("GET", "/api/v1/triggers/search")[1]["results"])
    assert found[0]["triggerContext"]["triggerId"] == "every-night"
    assert found[0]["triggerContext"]["nextExecutionDate"].endswith("T03:00:00.000Z")
    assert found[0]["abstractTrigger"]["cron"] == "0 3 * * *"


def test_a_bad_filter_answers_with_an_error_page(ui: Ui) -> None:
    status, body = ui.call("GET", "/ui/executions?state=NOPE")
    assert status == 400 and "unknown state" in body and "<html" in body
    assert ui.call("GET", "/ui/logs?timeRange=forever")[0] == 400
    assert ui.call("GET", "/ui/fragments/executions?ids=" + ",".join(["x"] * 101))[0] == 400


@needs_chromium
def test_filters_stay_through_reload_back_and_forward_and_pages(ui: Ui, page: Page) -> None:
    _seed(ui, "dev.a", State.FAILED, 30)
    _seed(ui, "dev.b", State.FAILED, 4)
    _seed(ui, "dev.a", State.SUCCESS, 2, timedelta(days=8))  # outside the default window
    page.goto(ui.url("/ui/executions"))
    assert "default window" in page.locator("#window").inner_text()
    page.get_by_label("Namespace").fill("dev.a")
    page.get_by_label("States").select_option(["FAILED"])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**namespace=dev.a**")
    rows = page.locator("#executions tbody tr")
    assert rows.count() == 25 and page.get_by_text("Page 1 of 2").is_visible()
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**page=2**")
    assert rows.count() == 5
    page.reload()
    assert rows.count() == 5 and page.get_by_label("Namespace").input_value() == "dev.a"
    assert page.get_by_label("States").evaluate("s => [...s.selectedOptions].map(o => o.value)") == ["FAILED"]
    page.go_back()
    page.wait_for_url(lambda url: "page=2" not in url)
    assert rows.count() == 25 and page.get_by_label("Namespace").input_value() == "dev.a"
    page.go_back()
    assert page.get_by_label("Namespace").input_value() == ""
    page.go_forward()
    assert page.get_by_label("Namespace").input_value() == "dev.a"
    page.get_by_label("States").select_option([])
    page.get_by_label("Started").select_option("all")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("32 found").wait_for()
    screenshot(page, "executions")


@needs_chromium
def test_running_rows_refresh_and_hostile_labels_show_as_text(ui: Ui, page: Page) -> None:
    ui.deploy(SLOW)
    ui.deploy(HOSTILE)
    ui.call("POST", "/api/v1/executions/dev.lists/hostile?wait=true")
    _, running = ui.call("POST", "/api/v1/executions/dev.lists/slow")
    page.goto(ui.url("/ui/executions?namespace=dev.lists"))
    row = page.locator(f'tr[data-id="{running["id"]}"]')
    assert row.get_attribute("data-live") is not None  # still going when the page was rendered
    row.locator(".state-SUCCESS").wait_for(timeout=10_000)  # refreshed in place, no reload
    assert page.get_by_text(f"note:{EVIL}").is_visible()


@needs_chromium
def test_the_dashboard_charts_today_and_lists_running_failed_and_scheduled(ui: Ui, page: Page) -> None:
    ui.deploy(SCHEDULED)
    _seed(ui, "dev.a", State.SUCCESS, 3)
    failed = _seed(ui, "dev.b", State.FAILED, 2)
    wait_for(lambda: ui.call("GET", "/api/v1/triggers/search")[1]["total"])
    page.goto(ui.url("/"))
    page.wait_for_url("**/ui/dashboards")
    today = utcnow().date().isoformat()
    bars = page.locator(f'svg.chart rect[data-day="{today}"]')
    counts = {bars.nth(i).get_attribute("data-state"): bars.nth(i).get_attribute("data-count") for i in range(2)}
    assert counts == {"SUCCESS": "3", "FAILED": "2"}
    assert page.get_by_role("img", name="Executions per day by state").is_visible()
    assert page.locator(f'a[title="{failed[0]}"]').is_visible()
    assert page.get_by_role("link", name="dev.lists.nightly").is_visible()
    screenshot(page, "dashboard")


@needs_chromium
def test_the_logs_search_finds_a_line_by_text_and_level_and_shows_it_as_text(ui: Ui, page: Page) -> None:
    ui.deploy(HOSTILE)
    _, execution = ui.call("POST", "/api/v1/executions/dev.lists/hostile?wait=true")
    page.goto(ui.url("/ui/logs"))
    page.get_by_label("Search").fill("onerror")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=onerror**")
    assert page.get_by_text(f"found {EVIL}").is_visible()
    link = page.locator("#logs tbody a").first
    assert link.get_attribute("href") == f"/ui/executions/dev.lists/hostile/{execution['id']}/logs"
    page.get_by_label("Search").fill("")
    page.get_by_label("Minimum level").select_option("WARN")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**minLevel=WARN**")
    assert page.locator("#logs tbody tr").count() == 1 and page.get_by_text("careful").is_visible()
    page.get_by_label("Minimum level").select_option("TRACE")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("found <script>").wait_for()
    screenshot(page, "logs")


def test_the_cli_never_imports_the_ui(tmp_path: Path) -> None:
    """`--version` loads neither the UI nor Jinja2; `execute` (Jinja2 renders its expressions) not the UI."""
    env = {**os.environ, "KESTRACTL_HOME": str(tmp_path / "home")}
    flow = tmp_path / "flow.yaml"
    flow.write_text("id: tiny\nnamespace: dev\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n")
    subprocess.run([sys.executable, "-m", "kestractl", "flow", "deploy", str(flow)], env=env, check=True)
    for command, banned in (
        (["--version"], ("kestractl.ui", "jinja2")),
        (["execute", "dev", "tiny"], ("kestractl.ui",)),
    ):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kestractl", *command], env=env,
                                capture_output=True, text=True, check=True)  # fmt: skip
        imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
        assert "kestractl" in imported and not [m for m in imported if m.startswith(banned)], command
