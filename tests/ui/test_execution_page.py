"""The execution page (`/ui/executions/{ns}/{flowId}/{id}/{tab}`) in real Chromium: live logs, the actions
(restart, resume with onResume inputs, kill, labels), outputs (download, preview), a log of 200,000 lines that
stays windowed, and a hostile flow shown as text. API shapes of the endpoints it added go through `ui.call`."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kestractl.model import LogEntry, utcnow
from tests.conftest import wait_for
from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
NS = "dev.ui"
ONE_LOG = "tasks:\n  - id: ok\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def flow(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: {NS}\n{body}"


def run(ui: Ui, flow_id: str, wait: bool = False) -> dict[str, Any]:
    status, execution = ui.call("POST", f"/api/v1/executions/{NS}/{flow_id}" + ("?wait=true" if wait else ""))
    assert status == 200, execution
    return dict(execution)


def state_of(ui: Ui, execution_id: str) -> str:
    return str(ui.call("GET", f"/api/v1/executions/{execution_id}")[1]["state"]["current"])


def reached(ui: Ui, execution_id: str, state: str) -> None:
    wait_for(lambda: state_of(ui, execution_id) == state, 15)


def page_of(ui: Ui, execution: dict[str, Any], tab: str = "") -> str:
    return ui.url(f"/ui/executions/{NS}/{execution['flowId']}/{execution['id']}" + (f"/{tab}" if tab else ""))


def header_state(page: Page, state: str) -> None:
    page.locator(f"#exec-state .state-{state}").wait_for()


@needs_chromium
def test_log_lines_arrive_before_the_execution_ends(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "live",
            """tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: first line
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: second line
""",
        )
    )
    execution = run(ui, "live")
    page.goto(page_of(ui, execution, "logs"))
    page.locator(".log-line", has_text="first line").wait_for()
    assert state_of(ui, execution["id"]) == "RUNNING"
    assert page.locator(".log-line", has_text="second line").count() == 0
    page.locator(".log-line", has_text="second line").wait_for()
    header_state(page, "SUCCESS")
    assert page.locator(".log-line", has_text="first line").count() == 1  # no line twice


@needs_chromium
def test_restart_a_failed_execution_from_its_page(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "fails",
            """tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken
""",
        )
    )
    execution = run(ui, "fails", wait=True)
    assert execution["state"]["current"] == "FAILED"
    page.goto(page_of(ui, execution))
    assert page.get_by_role("button", name="Kill").is_hidden()
    page.get_by_role("button", name="Restart").click()
    page.get_by_text("Restarted.").wait_for()
    histories = wait_for(lambda: _histories(ui, execution["id"], "RESTARTED"))
    assert histories[-1] in ("FAILED", "RUNNING")
    header_state(page, "FAILED")


def _histories(ui: Ui, execution_id: str, wanted: str) -> list[str] | None:
    states = [h["state"] for h in ui.call("GET", f"/api/v1/executions/{execution_id}")[1]["state"]["histories"]]
    return states if wanted in states and states[-1] == "FAILED" else None


@needs_chromium
def test_resume_a_paused_execution_with_an_on_resume_input(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "approve",
            """tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
        description: Why it may go on
      - id: count
        type: INT
        defaults: 1
  - id: said
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.wait.onResume.reason }} x{{ outputs.wait.onResume.count }}"
""",
        )
    )
    execution = run(ui, "approve")
    reached(ui, execution["id"], "PAUSED")
    page.goto(page_of(ui, execution))
    page.get_by_label("reason").fill("looks good")
    page.get_by_label("count").fill("3")
    page.get_by_role("button", name="Resume").click()
    header_state(page, "SUCCESS")
    runs = ui.call("GET", f"/api/v1/executions/{execution['id']}")[1]["taskRunList"]
    said = next(r for r in runs if r["taskId"] == "said")
    assert said["outputs"] == {"value": "looks good x3"}


def test_resume_checks_the_on_resume_inputs(ui: Ui) -> None:
    ui.deploy(
        flow(
            "strict",
            """tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: count
        type: INT
""",
        )
    )
    execution = run(ui, "strict")
    reached(ui, execution["id"], "PAUSED")
    status, body = ui.call("POST", f"/api/v1/executions/{execution['id']}/resume")
    assert status in (400, 422) and "count" in body["message"]
    assert state_of(ui, execution["id"]) == "PAUSED"


@needs_chromium
def test_kill_a_running_execution(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "long",
            """tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
""",
        )
    )
    execution = run(ui, "long")
    reached(ui, execution["id"], "RUNNING")
    page.goto(page_of(ui, execution, "gantt"))
    page.get_by_role("button", name="Kill").click()
    header_state(page, "KILLED")
    assert state_of(ui, execution["id"]) == "KILLED"
    page.get_by_role("button", name="Restart").wait_for()


@needs_chromium
def test_change_labels(ui: Ui, page: Page) -> None:
    ui.deploy(flow("labelled", "labels:\n  team: data\n" + ONE_LOG))
    execution = run(ui, "labelled", wait=True)
    page.goto(page_of(ui, execution))
    page.get_by_role("button", name="Edit labels").click()
    page.get_by_role("button", name="Add label").click()
    page.get_by_label("Label key").last.fill("owner")
    page.get_by_label("Label value").last.fill("ana")
    page.get_by_role("button", name="Save labels").click()
    page.locator("#exec-labels .label", has_text="owner:ana").wait_for()
    labels = {lbl["key"]: lbl["value"] for lbl in ui.call("GET", f"/api/v1/executions/{execution['id']}")[1]["labels"]}
    assert labels["owner"] == "ana" and labels["team"] == "data" and "system.correlationId" in labels


def test_labels_api_keeps_system_labels_and_refuses_foreign_ones(ui: Ui) -> None:
    ui.deploy(flow("plain", ONE_LOG))
    execution = run(ui, "plain", wait=True)
    path = f"/api/v1/executions/{execution['id']}/labels"
    status, body = ui.call("POST", path, [{"key": "a", "value": "1"}])
    assert status == 200 and [lbl["key"] for lbl in body["labels"]] == ["a", "system.correlationId"]
    status, body = ui.call("POST", path, [{"key": "system.x", "value": "1"}])
    assert status == 400 and "System labels" in body["message"]
    assert ui.call("POST", "/api/v1/executions/nope/labels", [])[0] == 404


@needs_chromium
def test_outputs_download_and_csv_preview(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "report",
            """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["eu", "us", "asia"]
    tasks:
      - id: say
        type: io.kestra.plugin.core.log.Log
        message: "region {{ taskrun.value }}"
  - id: csv
    type: io.kestra.plugin.core.storage.Write
    extension: .csv
    content: "city,people\\nParis,2100000\\n\\"Lyon, FR\\",520000\\n"
outputs:
  - id: table
    type: STRING
    value: "{{ outputs.csv.uri }}"
""",
        )
    )
    execution = run(ui, "report", wait=True)
    page.goto(page_of(ui, execution, "outputs"))
    link = page.locator("a.file").first
    with page.expect_download() as download:
        link.click()
    assert download.value.path().read_text().startswith("city,people")
    page.get_by_role("button", name="Preview").first.click()
    page.locator("#preview-body td", has_text="Lyon, FR").wait_for()
    screenshot(page, "execution-outputs")
    page.goto(page_of(ui, execution, "gantt"))
    assert page.locator(".gantt-row rect.bar").count() >= 5
    screenshot(page, "execution-gantt")
    page.goto(page_of(ui, execution))
    page.locator("table.runs td.depth-1").first.wait_for()
    screenshot(page, "execution-overview")


def test_file_preview_answers_in_kestras_shape(ui: Ui) -> None:
    ui.deploy(
        flow(
            "ion",
            """tasks:
  - id: rows
    type: io.kestra.plugin.core.storage.Write
    extension: .ion
    content: "{a:1,b:\\"x\\"}\\n{a:2,b:\\"y\\"}\\n"
""",
        )
    )
    execution = run(ui, "ion", wait=True)
    uri = next(r for r in execution["taskRunList"] if r["taskId"] == "rows")["outputs"]["uri"]
    status, body = ui.call("GET", f"/api/v1/executions/{execution['id']}/file/preview?path={uri}&maxRows=1")
    assert status == 200
    assert body == {"extension": "ion", "type": "LIST", "content": [{"a": 1, "b": "x"}], "truncated": True}
    outside = "kestra:///other/file.txt"
    assert ui.call("GET", f"/api/v1/executions/{execution['id']}/file/preview?path={outside}")[0] >= 400


@needs_chromium
def test_a_log_of_200000_lines_stays_windowed_and_scrolls_to_the_end(ui: Ui, page: Page) -> None:
    ui.deploy(flow("chatty", "tasks:\n  - id: talk\n    type: io.kestra.plugin.core.log.Log\n    message: start\n"))
    execution = run(ui, "chatty", wait=True)
    store, start = ui.server.store, utcnow()
    entries = [
        LogEntry(execution["id"], NS, "chatty", "INFO", f"line {i}", start + timedelta(microseconds=i), "talk")
        for i in range(200_000)
    ]
    with store.transaction():
        store.append_logs(entries)
    page.goto(page_of(ui, execution, "logs"))
    page.locator(".log-line", has_text="line 0").first.wait_for()
    assert page.locator(".log-line").count() < 500
    page.get_by_role("button", name="Go to the end").click()
    page.locator(".log-line", has_text="line 199999").wait_for()
    assert page.locator(".log-line").count() < 500
    assert "200,001 lines" in page.locator("#logs-status").inner_text()
    page.get_by_label("Search").fill("line 1999")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*q=line\+1999.*"))
    page.locator(".log-line", has_text="line 19999").first.wait_for()
    assert "111 lines" in page.locator("#logs-status").inner_text()
    screenshot(page, "execution-logs")


@needs_chromium
def test_a_hostile_execution_is_shown_as_text(ui: Ui, page: Page) -> None:
    ui.deploy(
        flow(
            "hostile",
            f"""labels:
  evil: "{EVIL}"
inputs:
  - id: text
    type: STRING
    defaults: "{EVIL}"
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.text }}}}"
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      evil: "{{{{ inputs.text }}}}"
outputs:
  - id: evil
    type: STRING
    value: "{{{{ inputs.text }}}}"
""",
        )
    )
    execution = run(ui, "hostile", wait=True)
    page.goto(page_of(ui, execution))
    page.locator("#exec-labels .label", has_text=EVIL).wait_for()
    assert page.get_by_text(EVIL).first.is_visible()
    page.goto(page_of(ui, execution, "logs"))
    page.locator(".log-line", has_text=EVIL).wait_for()
    page.goto(page_of(ui, execution, "outputs"))
    assert page.locator(".value", has_text=EVIL).count() >= 2
    assert page.locator("img").count() == 0


def test_follow_sends_the_execution_then_ends(ui: Ui) -> None:
    ui.deploy(flow("short", ONE_LOG))
    execution = run(ui, "short", wait=True)
    status, body = ui.call("GET", f"/api/v1/executions/{execution['id']}/follow")
    events = [block.split("\n") for block in body.strip().split("\n\n")]
    assert status == 200 and [e[0] for e in events] == ["id: progress", "id: end"]
    assert json.loads(events[-1][1].removeprefix("data: "))["state"]["current"] == "SUCCESS"
    assert ui.call("GET", "/api/v1/executions/nope/follow")[0] == 404


def test_bad_addresses_answer_with_an_error_page_or_json(ui: Ui) -> None:
    ui.deploy(flow("plain", ONE_LOG))
    execution = run(ui, "plain", wait=True)
    status, body = ui.call("GET", f"/ui/executions/{NS}/plain/nope")
    assert status == 404 and "execution not found" in body and "Traceback" not in body
    assert ui.call("GET", page_of(ui, execution, "nope").removeprefix(ui.base))[0] == 404
    window = f"/ui/fragments/execution-logs/{execution['id']}"
    status, body = ui.call("GET", window + "?minLevel=LOUD")
    assert status == 400 and "minLevel" in body["message"]
    status, body = ui.call("GET", window + "?limit=1")
    assert status == 200 and body["total"] == 1 and body["lines"][0][2:4] == ["INFO", "ok"]
