"""The flow editor: validation as you type with each problem at its line, create and update through the API
(each save a revision), and a flow from the watched folder shown read-only with its file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import wait_for
from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
BROKEN = f"""id: edited
namespace: dev.ui
description: "{EVIL}"

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    mesage: hi
"""
FIXED = BROKEN.replace("mesage:", "message:")


def test_validate_gives_each_problem_its_line_in_the_whole_body(ui: Ui) -> None:
    body = "id: ok\nnamespace: dev.ui\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    status, results = ui.call("POST", "/api/v1/flows/validate", body + "---\n" + BROKEN)
    assert status == 200 and [r["index"] for r in results] == [0, 1]
    assert results[0]["flow"] == "ok" and "problems" not in results[0]
    assert results[1]["constraints"].startswith("document 1:8: tasks[0].mesage: Unrecognized field")
    lines = [(p["line"], p["message"].split(":")[0]) for p in results[1]["problems"]]
    assert lines == [(15, "tasks[0].mesage"), (13, "tasks[0].message")]  # 7 lines of document 0 and `---`


def test_pages_answer_a_missing_flow_with_an_html_404(ui: Ui) -> None:
    status, body = ui.call("GET", "/ui/flows/edit/dev.ui/nothing/editor")
    assert status == 404 and "flow not found" in body


@needs_chromium
def test_create_a_flow_see_its_problem_at_its_line_fix_save_and_edit(ui: Ui, page: Page) -> None:
    page.goto(ui.url("/ui/flows/new?namespace=dev.ui"))
    source = page.get_by_label("Flow YAML")
    assert "namespace: dev.ui" in source.input_value()
    source.fill(BROKEN)
    page.locator(".editor-gutter div.bad", has_text="8").wait_for()
    problem = page.locator(".editor-problem", has_text="Line 8: tasks[0].mesage: Unrecognized field")
    problem.wait_for()
    assert page.locator(".editor-problem", has_text="Line 6: tasks[0].message: required").is_visible()
    screenshot(page, "editor")
    page.get_by_role("button", name="Save").click()
    page.locator("#notice.bad", has_text="request body:8: tasks[0].mesage").wait_for()
    source.fill(FIXED)
    page.locator(".editor-status", has_text="Valid").wait_for()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/ui/flows/edit/dev.ui/edited/editor")
    page.reload()
    assert page.locator(".editor-revision").inner_text() == "1"
    assert page.get_by_label("Flow YAML").input_value() == FIXED
    page.get_by_label("Flow YAML").fill(FIXED.replace("message: hi", "message: again"))
    page.keyboard.press("Control+s")
    page.locator("#notice", has_text="Saved: revision 2").wait_for()
    assert page.locator(".editor-revision").inner_text() == "2"
    status, flow = ui.call("GET", "/api/v1/flows/dev.ui/edited?source=true")
    assert status == 200 and flow["revision"] == 2 and "message: again" in flow["source"]


@needs_chromium
def test_tab_indents_and_the_gutter_follows_the_scroll(ui: Ui, page: Page) -> None:
    ui.deploy(FIXED)
    page.goto(ui.url("/ui/flows/edit/dev.ui/edited/editor"))
    source = page.get_by_label("Flow YAML")
    source.fill("\n" * 200)
    source.press("Control+Home")
    source.press("Tab")
    assert source.input_value().startswith("  \n")
    source.evaluate("element => { element.scrollTop = 600; element.dispatchEvent(new Event('scroll')); }")
    gutter = page.locator(".editor-gutter")
    wait_for(lambda: gutter.evaluate("element => element.scrollTop") == source.evaluate("e => e.scrollTop"))
    assert page.locator(".editor-gutter div").count() == 201


@needs_chromium
def test_a_flow_from_the_watched_folder_is_read_only_with_its_file_shown(ui: Ui, page: Page) -> None:
    path = ui.flows / "watched.yaml"
    path.write_text(FIXED.replace("id: edited", "id: watched"))
    wait_for(lambda: ui.call("GET", "/api/v1/flows/dev.ui/watched")[0] == 200)
    page.goto(ui.url("/ui/flows/edit/dev.ui/watched/editor"))
    source = page.get_by_label("Flow YAML")
    assert source.get_attribute("readonly") is not None
    assert page.get_by_role("button", name="Save").count() == 0
    assert str(path) in page.locator(".editor-readonly").inner_text()
    assert "Edit the file" in page.locator(".editor-readonly").inner_text()
