"""`server webserver` beside a `server standalone` on one PostgreSQL database: the webserver runs nothing itself.
What it creates stays a CREATED row for the executors; a kill, a resume and a restart it writes on the rows are
taken up by the standalone that drives (or drove) the execution."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kestractl.config import Home
from kestractl.server.app import ServerOptions, StandaloneServer
from kestractl.server.webserver import WebServer
from kestractl.store.service_records import ServiceType
from tests.services.postgres import Postgres, postgres  # noqa: F401  (the session fixture)
from tests.services.stores import fresh_database

FLOWS = {
    "hook": "tasks:\n  - {id: hi, type: io.kestra.plugin.core.log.Log, message: hi}\n"
    "triggers:\n  - {id: w, type: io.kestra.plugin.core.trigger.Webhook, key: k3y}\n",
    "long": "tasks:\n  - {id: nap, type: io.kestra.plugin.core.flow.Sleep, duration: PT60S}\n",
    "paused": "tasks:\n  - {id: wait, type: io.kestra.plugin.core.flow.Pause}\n"
    "  - {id: after, type: io.kestra.plugin.core.log.Log, message: resumed}\n",
    "failing": "tasks:\n  - {id: boom, type: io.kestra.plugin.core.execution.Fail}\n",
}


@pytest.fixture
def servers(tmp_path: Path, postgres: Postgres) -> Iterator[tuple[str, str, WebServer]]:  # noqa: F811
    """(standalone API, webserver API, webserver) on one fresh database."""
    for url in fresh_database(postgres):
        quiet = lambda level, message: None  # noqa: E731
        options = ServerOptions(port=0, grace_seconds=1, tick_seconds=0.05, workers=2, database=url)
        standalone = StandaloneServer(Home(tmp_path / "a").ensure(), options, say=quiet)
        web = WebServer(Home(tmp_path / "b").ensure(), ServerOptions(port=0, database=url), say=quiet)
        threads = [threading.Thread(target=s.serve, daemon=True) for s in (standalone, web)]
        for thread in threads:
            thread.start()
        try:
            yield (f"http://127.0.0.1:{standalone.port}/api/v1", f"http://127.0.0.1:{web.port}/api/v1", web)
        finally:
            standalone.stop_event.set()
            web.stop_event.set()
            for thread in threads:
                thread.join(20)
            web.store.close()


def _call(method: str, url: str, body: bytes | None = None, kind: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": kind} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _state(api: str, execution_id: str) -> str:
    return str(_call("GET", f"{api}/executions/{execution_id}")[1]["state"]["current"])


def _until(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _start(api: str, flow_id: str, state: str) -> str:
    """An execution started through the standalone (its runner drives it), once it is `state`."""
    execution_id = str(_call("POST", f"{api}/executions/dev/{flow_id}")[1]["id"])
    _until(lambda: _state(api, execution_id) == state, f"{flow_id} {state}")
    return execution_id


def test_the_webserver_writes_rows_the_standalone_takes_up(servers: tuple[str, str, WebServer]) -> None:
    standalone, web, webserver = servers
    for flow_id, tasks in FLOWS.items():
        assert (
            _call("POST", f"{web}/flows", f"id: {flow_id}\nnamespace: dev\n{tasks}".encode(), "application/x-yaml")[0]
            == 200
        )
    assert {i.type for i in webserver.store.service_instances() if i.server_id == webserver.liveness.server_id} == {
        ServiceType.WEBSERVER
    }
    status, created = _call("POST", f"{web}/executions/webhook/dev/hook/k3y", b'{"a": 1}')
    assert status == 200 and created["state"]["current"] == "CREATED"
    time.sleep(1)  # nobody runs it in the webserver: still CREATED (executors claim such rows)
    assert _state(web, created["id"]) == "CREATED"

    long = _start(standalone, "long", "RUNNING")
    status, body = _call("DELETE", f"{web}/executions/{long}/kill")
    assert status == 202 and body["state"]["current"] == "KILLED", body  # the standalone polled KILLING and stopped it
    assert [run["state"]["current"] for run in body["taskRunList"]] == ["KILLED"]

    paused = _start(standalone, "paused", "PAUSED")
    assert _call("POST", f"{web}/executions/{paused}/resume", b"", "multipart/form-data; boundary=x")[0] == 200
    _until(lambda: _state(standalone, paused) == "SUCCESS", "resumed by the webserver, run by the standalone")

    failed = _start(standalone, "failing", "FAILED")
    status, body = _call("POST", f"{web}/executions/{failed}/restart")
    assert status == 200 and body["state"]["current"] == "RESTARTED", body
    _until(lambda: _call("GET", f"{web}/executions/{failed}")[1]["taskRunList"][0]["attempts"].__len__() == 2, "rerun")
    _until(lambda: _state(web, failed) == "FAILED", "the restart ran to its end")
    assert _call("POST", f"{web}/executions/{paused}/resume", b"", "multipart/form-data; boundary=x")[0] == 409
