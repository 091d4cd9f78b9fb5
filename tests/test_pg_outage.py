"""PostgreSQL restarted under a running `server standalone` while executions run and webhooks arrive: every request is
answered 2xx or 503 (never a 500, never a hang), every accepted execution ends SUCCESS, none stays RUNNING, and
the server goes on serving. The cluster is the test's own (a restart would end every other test's sessions)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestractl.model import State
from kestractl.store import open_store
from tests.services.postgres import Cluster, Postgres, own_cluster

EXE = str(Path(sys.executable).parent / "kestractl")
FLOW = """id: outage
namespace: dev
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k3y
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ trigger.body.n ?? 'api' }}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.4S
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message: bye
"""
CLIENT_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, Postgres]]:
    with own_cluster() as started:
        yield started


def _call(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
    """(status, JSON body); a client timeout or a dropped connection raises: the test fails on it."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Traffic:
    """Webhooks and API creations sent one after the other until stopped; every answer kept."""

    def __init__(self, api: str) -> None:
        self.api, self.answers, self.stop = api, [], threading.Event()
        self.answers: list[tuple[int, Any]] = []
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            n += 1
            hook = ("POST", f"{self.api}/executions/webhook/dev/outage/k3y", json.dumps({"n": n}).encode())
            create = ("POST", f"{self.api}/executions/dev/outage", None)
            method, url, body = create if n % 5 == 0 else hook
            try:
                self.answers.append(_call(method, url, body))
            except Exception as exc:  # noqa: BLE001  (a hang or a reset is what the test looks for)
                self.failures.append(f"{url}: {type(exc).__name__}: {exc}")

    def accepted(self) -> list[str]:
        return [body["id"] for status, body in self.answers if status == 200]

    def refused(self) -> list[Any]:
        return [body for status, body in self.answers if status == 503]


def _listening(log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        if found:
            return found.group(1) + "/api/v1/main"
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(log.read_text())


def _unfinished(url: str) -> list[tuple[str, str]]:
    store = open_store(url)
    try:
        ids = store.find_execution_ids(flow_id="outage", limit=100_000)
        return [
            (e.id, e.state.current.value) for e in store.load_executions(ids) if not e.state.current.is_terminated()
        ]
    finally:
        store.close()


def test_a_postgresql_restart_under_load_loses_nothing(tmp_path: Path, cluster: tuple[Cluster, Postgres]) -> None:
    own, server = cluster
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path / "home"), NO_COLOR="1")
    log = tmp_path / "server.log"
    args = [EXE, "--database", server.url, "server", "standalone", "--port", "0", "--grace", "2", "--workers", "4"]
    process = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        api = _listening(log, process)
        assert _call("POST", f"{api}/flows", FLOW.encode())[0] == 200
        traffic = Traffic(api)
        traffic.thread.start()
        time.sleep(3)
        own.restart(down_seconds=3)
        time.sleep(3)
        traffic.stop.set()
        traffic.thread.join(CLIENT_TIMEOUT + 5)
        statuses = {status for status, _ in traffic.answers}
        assert not traffic.failures and statuses <= {200, 503}, (traffic.failures, statuses, log.read_text()[-3000:])
        assert traffic.refused() and all(isinstance(body.get("message"), str) for body in traffic.refused())
        accepted = traffic.accepted()
        assert len(accepted) > 20, len(accepted)
        deadline = time.monotonic() + 60
        while _unfinished(server.url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _unfinished(server.url) == [], log.read_text()[-3000:]
        ended = [_call("GET", f"{api}/executions/{i}")[1] for i in accepted]
        assert {e["state"]["current"] for e in ended} == {State.SUCCESS.value}, ended
        # Each task ran once: no result lost (a second attempt) nor taken twice.
        assert all(len(run["attempts"]) == 1 for e in ended for run in e["taskRunList"]), ended
        said = log.read_text()
        assert said.count("waiting for the database") == 1 and "answers again" in said, said[-3000:]
        assert "Traceback" not in said, said
        status, fresh = _call("POST", f"{api}/executions/webhook/dev/outage/k3y", b'{"n": 0}')  # still serving
        assert status == 200 and process.poll() is None
        deadline = time.monotonic() + 20
        while _call("GET", f"{api}/executions/{fresh['id']}")[1]["state"]["current"] != "SUCCESS":
            assert time.monotonic() < deadline, "an execution after the outage did not end"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(30)
