"""The namespaces pages: the list (from flows, KV entries, files), a namespace's KV entries and files edited in
the browser and checked through the API, hostile values shown as text, and `/api/v1/namespaces`."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FLOW = """
id: hello
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
JSON = {"Content-Type": "application/json"}


def upload(ui: Ui, namespace: str, path: str, data: bytes) -> None:
    """A file through the namespace-files API, as curl -F would post it."""
    boundary = "kestractl-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="fileContent"; filename="{Path(path).name}"\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        ui.url(f"/api/v1/namespaces/{namespace}/files?path={path}"),
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_search_lists_namespaces_of_flows_kv_and_files_with_their_parents(ui: Ui) -> None:
    ui.deploy(FLOW)
    assert ui.call("PUT", "/api/v1/namespaces/only.kv/kv/k", '"v"', JSON)[0] == 200
    upload(ui, "only.files", "a.txt", b"a")
    status, body = ui.call("GET", "/api/v1/namespaces/search?size=100")
    assert status == 200
    ids = [n["id"] for n in body["results"]]
    assert ids == ["company", "company.team", "only", "only.files", "only.kv"] and body["total"] == 5
    status, body = ui.call("GET", "/api/v1/namespaces/search?q=TEAM&page=1&size=1")
    assert body == {"results": [{"id": "company.team", "deleted": False}], "total": 1}
    assert ui.call("GET", "/api/v1/namespaces/search?size=2&page=2")[1]["results"][0]["id"] == "only"
    assert ui.call("GET", "/api/v1/main/namespaces/company")[1] == {"id": "company", "deleted": False}
    assert ui.call("GET", "/api/v1/namespaces/search?size=0")[0] == 400


def test_a_cross_origin_kv_write_is_refused(ui: Ui) -> None:
    evil = {**JSON, "Origin": "http://evil.example"}
    status, body = ui.call("PUT", "/api/v1/namespaces/dev/kv/k", '"x"', evil)
    assert status == 403 and "another origin" in body["message"]
    assert ui.call("GET", "/api/v1/namespaces/dev/kv/k")[0] == 404


def test_the_overview_counts_flows_executions_keys_and_files(ui: Ui) -> None:
    ui.deploy(FLOW)
    status, execution = ui.call("POST", "/api/v1/executions/company.team/hello?wait=true")
    assert status == 200 and execution["state"]["current"] == "SUCCESS"
    assert ui.call("PUT", "/api/v1/namespaces/company.team/kv/k", "1", JSON)[0] == 200
    upload(ui, "company.team", "bin/blob.dat", b"\x00\x01binary")
    status, html = ui.call("GET", "/ui/namespaces/edit/company.team")
    counts = re.findall(r'<p class="count"><a href="[^"]*">(\d+)</a>', html)
    assert status == 200 and counts == ["1", "1", "1", "1"] and "state-SUCCESS" in html
    status, html = ui.call("GET", "/ui/namespaces/edit/company.team/files?path=bin/blob.dat")
    assert status == 200 and "binary or too large" in html and 'download="blob.dat"' in html


def test_bad_namespace_and_tab_answer_with_an_error_page(ui: Ui) -> None:
    assert ui.call("GET", "/ui/namespaces/edit/dev/nothing")[0] == 404
    status, body = ui.call("GET", "/ui/namespaces/edit/dev/files?path=../up")
    assert status == 422 and "&#39;..&#39;" in body


@needs_chromium
def test_the_list_shows_namespaces_from_a_flow_and_from_a_kv_entry(ui: Ui, page: Page) -> None:
    ui.deploy(FLOW)
    assert ui.call("PUT", "/api/v1/namespaces/only.kv/kv/k", '"v"', JSON)[0] == 200
    page.goto(ui.url("/ui/namespaces"))
    assert page.get_by_role("link", name="company.team").is_visible()
    assert page.get_by_role("link", name="only.kv").is_visible()
    screenshot(page, "namespaces")
    page.get_by_label("Filter").fill("kv")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/namespaces?q=kv")
    assert page.get_by_role("link", name="company.team").count() == 0
    page.get_by_role("link", name="only.kv").click()
    page.get_by_role("link", name="KV Store").click()
    page.get_by_role("cell", name="k", exact=True).wait_for()


@needs_chromium
def test_kv_entries_are_added_edited_and_deleted_and_a_hostile_value_stays_text(ui: Ui, page: Page) -> None:
    from playwright.sync_api import expect

    assert ui.call("PUT", "/api/v1/namespaces/dev/kv/evil", '"' + EVIL.replace('"', '\\"') + '"', JSON)[0] == 200
    page.goto(ui.url("/ui/namespaces/edit/dev/kv"))
    assert page.get_by_role("cell", name=EVIL).is_visible()

    page.get_by_role("button", name="Add a key").click()
    dialog = page.locator("#kv-dialog")
    dialog.get_by_label("Key").fill("limit")
    dialog.get_by_label("Type").select_option("NUMBER")
    dialog.get_by_label("Value").fill("42")
    dialog.get_by_label("TTL").fill("PT1H")
    dialog.get_by_label("Description").fill("max rows")
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name="max rows").wait_for()
    assert ui.call("GET", "/api/v1/namespaces/dev/kv/limit")[1]["value"] == 42
    listed = {e["key"]: e for e in ui.call("GET", "/api/v1/namespaces/dev/kv")[1]}
    assert "expirationDate" in listed["limit"] and listed["limit"]["description"] == "max rows"
    screenshot(page, "namespace-kv")

    page.get_by_role("button", name="Edit limit").click()
    expect(dialog.get_by_label("Value")).to_have_value("42")
    assert re.fullmatch(r"PT3[56]\d\dS", dialog.get_by_label("TTL").input_value())  # what is left of PT1H
    dialog.get_by_label("Type").select_option("JSON")
    dialog.get_by_label("Value").fill('{"rows": [1, 2]}')
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name='{"rows": [1, 2]}').wait_for()
    edited = ui.call("GET", "/api/v1/namespaces/dev/kv/limit")[1]
    assert (edited["type"], edited["value"]) == ("JSON", {"rows": [1, 2]})
    assert "expirationDate" in next(e for e in ui.call("GET", "/api/v1/namespaces/dev/kv")[1] if e["key"] == "limit")

    page.get_by_role("button", name="Delete limit").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    page.get_by_role("cell", name="limit", exact=True).wait_for(state="detached")
    assert ui.call("GET", "/api/v1/namespaces/dev/kv/limit")[0] == 404


@needs_chromium
def test_files_are_uploaded_viewed_edited_created_and_deleted(ui: Ui, page: Page, tmp_path: Path) -> None:
    upload(ui, "dev", "scripts/evil.html", EVIL.encode())
    page.goto(ui.url("/ui/namespaces/edit/dev/files"))
    page.get_by_role("link", name="scripts").click()
    page.get_by_role("link", name="evil.html").click()
    assert page.locator("#file-view").inner_text() == EVIL

    local = tmp_path / "job.py"
    local.write_text("print('hi')\n")
    page.get_by_label("Upload into /scripts").set_input_files(local)
    page.wait_for_url("**/files?path=scripts%2Fjob.py")
    assert page.locator("#file-view .line").first.inner_text() == "print('hi')"
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Content of /scripts/job.py").fill("print('edited')\n")
    page.get_by_role("button", name="Save").click()
    page.locator("#file-view", has_text="edited").wait_for()
    assert ui.call("GET", "/api/v1/namespaces/dev/files?path=scripts/job.py")[1] == "print('edited')\n"
    screenshot(page, "namespace-files")

    new = page.locator("#new-dialog")
    page.get_by_role("button", name="New file").click()
    new.get_by_label("Path").fill("scripts/job.py")
    new.get_by_role("button", name="Create").click()
    new.get_by_text("/scripts/job.py already exists").wait_for()
    new.get_by_label("Path").fill("notes.md")
    new.get_by_role("button", name="Create").click()
    page.wait_for_url("**/files?path=notes.md")
    assert ui.call("GET", "/api/v1/namespaces/dev/files?path=notes.md")[1] == ""

    page.get_by_role("button", name="New folder").click()
    new.get_by_label("Path").fill("scripts/sql")
    new.get_by_role("button", name="Create").click()
    page.wait_for_url("**/files?path=scripts%2Fsql")
    assert ui.call("GET", "/api/v1/namespaces/dev/files/stats?path=scripts/sql")[1]["type"] == "Directory"

    page.goto(ui.url("/ui/namespaces/edit/dev/files?path=scripts%2Fevil.html"))
    page.get_by_role("button", name="Delete").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/dev/files")
    assert ui.call("GET", "/api/v1/namespaces/dev/files?path=scripts/evil.html")[0] == 404
    assert page.get_by_role("link", name="evil.html").count() == 0
