"""The UI's tests: a real standalone server on a free port, and Debian's Chromium driven by Playwright.

Every page a test opens is watched: a JavaScript dialog (an escaped `<script>` that ran after all), a page
error or a Content-Security-Policy violation fails the test. Screenshots go to `build/screenshots/`
(`KESTRACTL_SCREENSHOTS` to change it), named after the page.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import needs_tool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from kestractl.server.app import StandaloneServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless on a closed network: no sandbox as root, and none of Chromium's own background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("KESTRACTL_SCREENSHOTS") or Path(__file__).parents[2] / "build" / "screenshots")
needs_chromium = needs_tool("chromium", os.path.dirname(CHROMIUM))


@dataclass
class Ui:
    """The server under test, addressed as a browser (`url`) and as an API client (`call`)."""

    server: StandaloneServer
    flows: Path
    base: str
    problems: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """`/api/v1` as curl would call it (no Origin, no Sec-Fetch-Site); returns (status, JSON or text)."""
        data = body.encode() if isinstance(body, str) else None if body is None else json.dumps(body).encode()
        kind = {"Content-Type": "application/x-yaml" if isinstance(body, str) else "application/json"}
        request = urllib.request.Request(self.url(path), data, {**kind, **(headers or {})}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, _decoded(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decoded(error.read())

    def deploy(self, source: str) -> None:
        status, body = self.call("POST", "/api/v1/flows", source)
        assert status == 200, body


def _decoded(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


@pytest.fixture
def ui(standalone: tuple[StandaloneServer, Path]) -> Ui:
    server, flows = standalone
    return Ui(server, flows, f"http://127.0.0.1:{server.port}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip("needs `chromium` (Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, ui: Ui) -> Iterator[Page]:
    """A fresh browser context per test; dialogs, page errors and CSP violations are recorded and fail it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.on("dialog", lambda dialog: (ui.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    opened.on("pageerror", lambda error: ui.problems.append(f"page error: {error}"))
    opened.on("console", lambda message: _console(ui, message.type, message.text))
    yield opened
    context.close()
    assert not ui.problems, ui.problems


def _console(ui: Ui, kind: str, text: str) -> None:
    if kind == "error" and ("Content Security Policy" in text or "Uncaught" in text):
        ui.problems.append(f"console: {text}")


def screenshot(page: Page, name: str) -> Path:
    """Saved for people to look at (and for README's pictures); full page, after the page settled."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
