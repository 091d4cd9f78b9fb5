"""The frame every page shares: where `/` leads, assets from the package, the security headers, the HTML
error page, and the refusal of state-changing requests from another origin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FLOW = f"""
id: hello
namespace: dev.ui
description: "{EVIL}"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_the_root_and_ui_lead_to_the_dashboard(ui: Ui) -> None:
    import http.client

    for path in ("/", "/ui", "/ui/"):
        connection = http.client.HTTPConnection("127.0.0.1", ui.server.port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        assert (response.status, response.getheader("Location")) == (302, "/ui/dashboards"), path
        connection.close()


def test_assets_come_from_the_package_and_nothing_else(ui: Ui) -> None:
    status, body = ui.call("GET", "/ui/static/app.js")
    assert status == 200 and "export async function api" in body
    assert ui.call("GET", "/ui/static/..%2Fapp.py")[0] == 404
    assert ui.call("GET", "/ui/static/nothing.js")[0] == 404


def test_a_page_carries_a_policy_that_forbids_inline_script(ui: Ui) -> None:
    import urllib.request

    with urllib.request.urlopen(ui.url("/ui/flows"), timeout=5) as response:
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_a_cross_origin_state_change_is_refused_and_changes_nothing(ui: Ui) -> None:
    ui.deploy(FLOW)
    status, body = ui.call("DELETE", "/api/v1/flows/dev.ui/hello", headers={"Origin": "http://evil.example"})
    assert status == 403 and "another origin" in body["message"]
    status, body = ui.call("DELETE", "/api/v1/flows/dev.ui/hello", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert ui.call("GET", "/api/v1/flows/dev.ui/hello")[0] == 200
    same = {"Origin": ui.base, "Sec-Fetch-Site": "same-origin"}
    assert ui.call("DELETE", "/api/v1/flows/dev.ui/hello", headers=same)[0] == 204


def test_a_filter_matching_nothing_says_so(ui: Ui) -> None:
    status, body = ui.call("GET", "/ui/flows?namespace=" + "x" * 3)
    assert status == 200 and "No flow matches" in body


@needs_chromium
def test_the_flows_list_shows_a_hostile_flow_as_text(ui: Ui, page: Page) -> None:
    ui.deploy(FLOW)
    page.goto(ui.url("/ui/flows"))
    page.get_by_role("link", name="hello").wait_for()
    page.get_by_label("Search").fill("hell")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/flows?q=hell*")
    assert page.get_by_role("link", name="hello").is_visible()
    screenshot(page, "flows")


def test_basic_auth_covers_the_pages_and_their_assets(tmp_path: Path) -> None:
    import base64
    import threading
    import urllib.error
    import urllib.request

    from kestractl.config import Home
    from kestractl.server.app import ServerOptions, StandaloneServer

    options = ServerOptions(port=0, basic_auth=("admin", "s3cret"), grace_seconds=1)
    server = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        for path in ("/ui/flows", "/ui/static/app.css"):
            url = f"http://127.0.0.1:{server.port}{path}"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=5)
            assert refused.value.code == 401
            token = base64.b64encode(b"admin:s3cret").decode()
            request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
    finally:
        server.stop_event.set()
        thread.join(10)


def test_a_cross_origin_kill_is_refused_and_the_execution_runs_on(ui: Ui) -> None:
    ui.deploy(SLEEPER)
    status, execution = ui.call("POST", "/api/v1/executions/dev.ui/sleeper", "")
    assert status == 200, execution
    kill = f"/api/v1/executions/{execution['id']}/kill"
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        status, body = ui.call("DELETE", kill, headers=headers)
        assert status == 403, (headers, body)
    state = ui.call("GET", f"/api/v1/executions/{execution['id']}")[1]["state"]["current"]
    assert state in ("CREATED", "RUNNING")
    assert ui.call("DELETE", kill)[0] in (202, 204)


MAIN_PAGES = ["/ui/dashboards", "/ui/flows", "/ui/executions", "/ui/logs", "/ui/namespaces", "/ui/flows/new"]


@needs_chromium
def test_every_form_control_of_the_main_pages_has_a_label(ui: Ui, page: Page) -> None:
    ui.deploy(FLOW)
    for path in [*MAIN_PAGES, "/ui/flows/edit/dev.ui/hello/execute", "/ui/namespaces/edit/dev.ui/kv"]:
        page.goto(ui.url(path))
        unlabelled = page.evaluate(UNLABELLED)
        assert unlabelled == [], (path, unlabelled)


# Controls a screen reader could not name: no <label>, no aria-label(ledby), no title.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby') && !el.title && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


@needs_chromium
def test_a_narrow_window_scrolls_only_downwards_and_dark_mode_is_dark(browser: Browser, ui: Ui) -> None:
    ui.deploy(FLOW)
    context = browser.new_context(viewport={"width": 380, "height": 800}, color_scheme="dark")
    narrow = context.new_page()
    try:
        for path in MAIN_PAGES:
            narrow.goto(ui.url(path))
            overflow = narrow.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, (path, overflow)
        background = narrow.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        screenshot(narrow, "narrow-dark-editor")
    finally:
        context.close()


SLEEPER = """
id: sleeper
namespace: dev.ui
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
"""
