"""`server standalone` over real HTTP on 127.0.0.1: the seed's curl commands, the official `kestra`
client, schedules, flow triggers, webhooks, the watched flow directory and the REST API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWS, wait_for

from kestractl.config import Home
from kestractl.server.app import ServerOptions, StandaloneServer

SEED = Path(__file__).parent.parent / "sample_flows" / "hello-world.yaml"
SERVER_FLOWS = FLOWS / "server"


@dataclass
class Running:
    server: StandaloneServer
    flows: Path
    said: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        """(status, parsed JSON or text) of one request."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, _decode(response.read(), response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read(), error.headers.get("Content-Type", ""))

    def add_flow(self, source: Path, name: str | None = None) -> None:
        shutil.copy(source, self.flows / (name or source.name))

    def wait_for(self, check: Callable[[], Any], seconds: float = 10) -> Any:
        return wait_for(check, seconds)

    def execution_done(self, execution_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            _, execution = self.call("GET", f"/api/v1/executions/{execution_id}")
            return execution if execution["state"]["current"] in ("SUCCESS", "WARNING", "FAILED", "KILLED") else None

        result: dict[str, Any] = self.wait_for(done)
        return result

    def executions_of(self, flow_id: str) -> list[dict[str, Any]]:
        _, found = self.call("GET", f"/api/v1/executions/search?flowId={flow_id}&size=100")
        return list(found["results"])

    def has_flow(self, namespace: str, flow_id: str) -> bool:
        return bool(self.call("GET", f"/api/v1/flows/{namespace}/{flow_id}")[0] == 200)


def _decode(data: bytes, content_type: str) -> Any:
    if "json" in content_type and data:
        return json.loads(data)
    return data.decode()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(SEED, flows / "hello-world.yaml")
    options = ServerOptions(flow_path=flows, port=0, grace_seconds=2, tick_seconds=0.05, watch_seconds=0.1, workers=4)
    said: list[tuple[str, str]] = []
    server = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda lvl, msg: said.append((lvl, msg)))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    handle = Running(server, flows, said)
    handle.wait_for(lambda: handle.has_flow("dev", "hello-world"))
    yield handle
    server.stop_event.set()
    thread.join(15)
    assert not thread.is_alive()


def test_the_seeds_curl_trigger_with_a_form_field(running: Running) -> None:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{running.url}/api/v1/executions/trigger/dev/hello-world",
            "-F",
            "greeting=hey there",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    created = json.loads(out)
    assert created["namespace"] == "dev" and created["inputs"] == {"greeting": "hey there"}
    assert running.execution_done(created["id"])["state"]["current"] == "SUCCESS"
    status, logs = running.call("GET", f"/api/v1/logs/{created['id']}/download")
    assert status == 200 and "hey there, kestra team wishes you a great day!" in logs


def test_trigger_a_given_revision(running: Running) -> None:
    (running.flows / "hello-world.yaml").write_text(SEED.read_text().replace("defaults: hello", "defaults: howdy"))
    running.wait_for(lambda: running.call("GET", "/api/v1/flows/dev/hello-world")[1]["revision"] == 2)
    status, old = running.call("POST", "/api/v1/executions/trigger/dev/hello-world?revision=1&wait=true")
    assert status == 200 and old["flowRevision"] == 1 and old["state"]["current"] == "SUCCESS"
    _, new = running.call("POST", "/api/v1/executions/dev/hello-world?wait=true&labels=team:data")
    assert new["flowRevision"] == 2 and {"key": "team", "value": "data"} in new["labels"]
    _, logs = running.call("GET", f"/api/v1/logs/{new['id']}")
    assert any("howdy, kestra team" in entry["message"] for entry in logs)


def test_the_official_kestra_client_runs_a_flow(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    kestra = pytest.importorskip("kestra")
    monkeypatch.setenv("KESTRA_HOSTNAME", running.url)
    monkeypatch.delenv("KESTRA_USER", raising=False)
    monkeypatch.delenv("KESTRA_API_TOKEN", raising=False)
    result = kestra.Flow(poll_interval=0.2).execute("dev", "hello-world", {"greeting": "hello from Python"})
    assert result.status == "SUCCESS"
    assert "hello from Python, kestra team wishes you a great day!" in result.log


def test_a_one_second_schedule_fires_on_time(running: Running) -> None:
    running.add_flow(SERVER_FLOWS / "every-second.yaml")
    found = running.wait_for(
        lambda: [e for e in running.executions_of("every-second") if e["state"]["current"] == "SUCCESS"][:2] or None
    )
    for execution in found:
        fired = execution["trigger"]["variables"]["date"]
        started = execution["state"]["startDate"]
        lag = _seconds(started) - _seconds(fired)
        assert 0 <= lag < 1.0, (fired, started)
        assert execution["taskRunList"][0]["outputs"]["value"] == fired
    (running.flows / "every-second.yaml").unlink()
    running.wait_for(lambda: not running.has_flow("tests.server", "every-second"))


def _seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_flow_triggers_fire_once_per_upstream_end_and_namespace_alerts(running: Running) -> None:
    for name in ("upstream.yaml", "downstream.yaml", "alerts.yaml"):
        running.add_flow(SERVER_FLOWS / name)
    running.wait_for(lambda: running.has_flow("tests.ops", "alerts") and running.has_flow("tests.server", "downstream"))
    _, ok = running.call("POST", "/api/v1/executions/tests.server/upstream?wait=true")
    downstream = running.wait_for(lambda: running.executions_of("downstream"))
    done = running.execution_done(downstream[0]["id"])
    assert done["taskRunList"][0]["outputs"]["value"] == f"made by {ok['id']} / upstream / SUCCESS"
    assert done["trigger"]["variables"]["executionId"] == ok["id"]
    _, failed = running.call(
        "POST",
        "/api/v1/executions/tests.server/upstream?wait=true",
        b"fail=true",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert failed["state"]["current"] == "FAILED"
    alerts = running.wait_for(lambda: running.executions_of("alerts"))
    alert = running.execution_done(alerts[0]["id"])
    assert alert["taskRunList"][0]["outputs"]["value"] == "tests.server.upstream FAILED"
    time.sleep(0.5)
    assert len(running.executions_of("downstream")) == 1
    assert len(running.executions_of("alerts")) == 1


def test_webhook_body_headers_parameters_conditions_and_wrong_keys(running: Running) -> None:
    running.add_flow(SERVER_FLOWS / "hook.yaml")
    running.wait_for(lambda: running.has_flow("tests.server", "hook"))
    base = "/api/v1/executions/webhook/tests.server/hook"
    status, created = running.call(
        "POST",
        f"{base}/a-secret-key?age=12&age=13",
        b'{"name": "john"}',
        {"Content-Type": "application/json", "X-Team": "data"},
    )
    assert status == 200 and created["state"]["current"] == "CREATED"
    assert {"key": "source", "value": "webhook"} in created["labels"]
    done = running.execution_done(created["id"])
    assert done["taskRunList"][0]["outputs"]["value"] == 'john data ["12","13"]'
    status, _ = running.call("PUT", f"{base}/a-secret-key", b"skip")
    assert status == 204
    status, body = running.call("POST", f"{base}/wrong-key", b"{}")
    assert status == 404 and "Webhook not found" in body["message"]
    status, body = running.call("GET", "/api/v1/executions/webhook/tests.server/nope/a-secret-key")
    assert status == 404 and "Flow not found" in body["message"]
    status, plain = running.call("GET", f"{base}/a-secret-key")
    assert status == 200 and plain["trigger"]["variables"]["body"] is None


def test_the_watched_directory_follows_edits_and_deletions(running: Running) -> None:
    (running.flows / "hello-world.yaml").write_text(SEED.read_text().replace("great day", "fine evening"))
    running.wait_for(lambda: running.call("GET", "/api/v1/flows/dev/hello-world")[1]["revision"] == 2)
    _, execution = running.call("POST", "/api/v1/executions/dev/hello-world?wait=true")
    _, logs = running.call("GET", f"/api/v1/logs/{execution['id']}/download")
    assert "kestra team wishes you a fine evening!" in logs
    (running.flows / "broken.yaml").write_text("id: broken\nnamespace: dev\ntasks: [\n")
    running.wait_for(lambda: any("broken.yaml:4" in msg for _, msg in running.said))
    (running.flows / "hello-world.yaml").unlink()
    running.wait_for(lambda: not running.has_flow("dev", "hello-world"))
    assert any("dev.hello-world  deleted" in msg for _, msg in running.said)


def test_flow_api_create_read_update_search_validate_and_delete(running: Running) -> None:
    yaml_type = {"Content-Type": "application/x-yaml"}
    source = (
        b"id: api-flow\nnamespace: tests.api\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
        b"    format: one\n"
    )
    status, created = running.call("POST", "/api/v1/flows", source, yaml_type)
    assert status == 200 and created["revision"] == 1 and created["source"] == source.decode()
    assert running.call("POST", "/api/v1/flows", source, yaml_type)[0] == 409
    status, updated = running.call("PUT", "/api/v1/flows/tests.api/api-flow", source.replace(b"one", b"two"), yaml_type)
    assert status == 200 and updated["revision"] == 2
    _, fetched = running.call("GET", "/api/v1/flows/tests.api/api-flow?revision=1&source=true")
    assert "format: one" in fetched["source"]
    _, search = running.call("GET", "/api/v1/flows/search?namespace=tests")
    assert search["total"] == 1 and search["results"][0]["id"] == "api-flow"
    status, invalid = running.call("POST", "/api/v1/flows", b"id: x\nnamespace: tests\ntasks: []\n", yaml_type)
    assert status == 422 and "tasks" in invalid["message"]
    _, checked = running.call("POST", "/api/v1/flows/validate", source + b"---\nid: y\nnamespace: n\n", yaml_type)
    assert "constraints" not in checked[0] and "tasks: required" in checked[1]["constraints"]
    bulk = source.replace(b"api-flow", b"other")
    status, replaced = running.call("POST", "/api/v1/flows/tests.api", bulk, yaml_type)
    assert status == 200 and [f["id"] for f in replaced] == ["other"]
    assert not running.has_flow("tests.api", "api-flow")
    assert running.call("DELETE", "/api/v1/flows/tests.api/other")[0] == 204
    assert running.call("GET", "/api/v1/flows/tests.api/other")[0] == 404


def test_execution_api_kill_restart_resume_and_errors(running: Running, tmp_path: Path) -> None:
    shutil.copy(FLOWS / "pause.yaml", running.flows / "pause.yaml")
    shutil.copy(FLOWS / "kill-me.yaml", running.flows / "kill-me.yaml")
    running.wait_for(lambda: running.has_flow("tests", "pause") and running.has_flow("tests", "kill-me"))
    _, paused = running.call("POST", "/api/v1/executions/tests/pause")
    running.wait_for(
        lambda: running.call("GET", f"/api/v1/executions/{paused['id']}")[1]["state"]["current"] == "PAUSED"
    )
    status, _ = running.call("POST", f"/api/v1/executions/{paused['id']}/resume")
    assert status == 200
    assert running.execution_done(paused["id"])["state"]["current"] == "SUCCESS"
    assert running.call("POST", f"/api/v1/executions/{paused['id']}/resume")[0] == 409
    _, long = running.call("POST", "/api/v1/executions/tests/kill-me")
    running.wait_for(
        lambda: running.call("GET", f"/api/v1/executions/{long['id']}")[1]["state"]["current"] == "RUNNING"
    )
    status, killed = running.call("DELETE", f"/api/v1/executions/{long['id']}/kill")
    assert status == 202 and killed["state"]["current"] == "KILLED"
    status, restarted = running.call("POST", f"/api/v1/executions/{long['id']}/restart")
    assert status == 200 and restarted["id"] == long["id"]
    running.call("DELETE", f"/api/v1/executions/{long['id']}/kill")
    assert running.call("GET", "/api/v1/executions/nope")[0] == 404
    status, refused = running.call("POST", "/api/v1/executions/dev/nope")
    assert status == 404 and "flow not found" in refused["message"]
    status, refused = running.call("POST", "/api/v1/executions/tests/pause?revision=x")
    assert status == 400


def test_log_stream_follows_an_execution(running: Running) -> None:
    _, created = running.call("POST", "/api/v1/executions/dev/hello-world")
    with urllib.request.urlopen(f"{running.url}/api/v1/logs/{created['id']}/follow", timeout=10) as stream:
        text = stream.read().decode()
    assert "event: log" in text and "kestra team wishes you a great day" in text


def test_cli_server_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path / "home"), NO_COLOR="1")
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(SEED, flows / "hello-world.yaml")
    exe = str(Path(sys.executable).parent / "kestractl")
    process = subprocess.Popen(
        [exe, "server", "standalone", "-f", str(flows), "--port", "0", "--grace", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if "listening on " in line:
            url = line.strip().rsplit(" ", 1)[-1]
            break
    request = urllib.request.Request(f"{url}/api/v1/executions/dev/hello-world?wait=true", method="POST")
    with urllib.request.urlopen(request, timeout=20) as response:
        assert json.loads(response.read())["state"]["current"] == "SUCCESS"
    other = subprocess.run([exe, "flow", "list", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(other.stdout)[0]["id"] == "hello-world"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_webhook_inputs_query_parameter(running: Running) -> None:
    (running.flows / "hook-inputs.yaml").write_text(
        "id: hook-inputs\nnamespace: tests.server\ninputs:\n  - id: who\n    type: STRING\n    defaults: nobody\n"
        "tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{ inputs.who }}'\n"
        "triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n"
    )
    running.wait_for(lambda: running.has_flow("tests.server", "hook-inputs"))
    _, created = running.call("POST", "/api/v1/executions/webhook/tests.server/hook-inputs/k?inputs=who:alice")
    assert running.execution_done(created["id"])["taskRunList"][0]["outputs"]["value"] == "alice"
    _, default = running.call("POST", "/api/v1/executions/webhook/tests.server/hook-inputs/k")
    assert running.execution_done(default["id"])["taskRunList"][0]["outputs"]["value"] == "nobody"


def test_executions_left_waiting_are_picked_up_at_start(tmp_path: Path) -> None:
    from kestractl.engine.runner import Runner
    from kestractl.storage import LocalStorage
    from kestractl.store import open_store

    home = Home(tmp_path / "home").ensure()
    store = open_store(home.db_path)
    store.save_flow("dev", "hello-world", SEED.read_text())
    runner = Runner(store, LocalStorage(home.storage_root))
    waiting = runner.create_execution(runner.flows.get("dev", "hello-world"), {"greeting": "later"})
    runner.close()
    server = StandaloneServer(home, ServerOptions(port=0, tick_seconds=0.05), say=lambda lvl, msg: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        handle = Running(server, tmp_path)
        assert handle.execution_done(waiting.id)["state"]["current"] == "SUCCESS"
    finally:
        server.stop_event.set()
        thread.join(15)


def test_cli_execute_runs_beside_a_server_on_the_same_home(running: Running, tmp_path: Path) -> None:
    home = str(running.server.store.path.parent)
    exe = str(Path(sys.executable).parent / "kestractl")
    env = dict(os.environ, KESTRACTL_HOME=home, NO_COLOR="1")
    results = [
        subprocess.run([exe, "execute", "dev", "hello-world", "--json"], env=env, capture_output=True, text=True)
        for _ in range(3)
    ]
    assert all(r.returncode == 0 and "locked" not in r.stderr for r in results)
    _, server_side = running.call("POST", "/api/v1/executions/dev/hello-world?wait=true")
    assert server_side["state"]["current"] == "SUCCESS"
    assert len(running.executions_of("hello-world")) == 4


def test_a_file_input_given_as_a_text_field_is_refused(running: Running) -> None:
    (running.flows / "files.yaml").write_text(
        "id: files\nnamespace: tests.server\ninputs:\n  - id: upload\n    type: FILE\ntasks:\n"
        "  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{ read(inputs.upload) }}'\n"
    )
    running.wait_for(lambda: running.has_flow("tests.server", "files"))
    status, refused = running.call(
        "POST",
        "/api/v1/executions/tests.server/files",
        b"upload=/etc/passwd",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 422 and "must be uploaded as a file part" in refused["message"]
    boundary = "xyz"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n\r\n'
        f"uploaded text\r\n--{boundary}--\r\n"
    ).encode()
    status, created = running.call(
        "POST",
        "/api/v1/executions/tests.server/files?wait=true",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200 and created["taskRunList"][0]["outputs"]["value"] == "uploaded text"


def test_the_watcher_reports_a_refused_deploy_and_deploys_the_file_at_the_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kestractl.errors import StoreError
    from kestractl.server.watch import FlowDirectory
    from kestractl.store import open_store

    store = open_store(tmp_path / "kestractl.db")
    flows = tmp_path / "flows"
    flows.mkdir()
    said: list[tuple[str, str]] = []
    directory = FlowDirectory(flows, store, lambda level, message: said.append((level, message)))
    refusals = [StoreError("database is locked")]
    save_flow = store.save_flow

    def refuse_once(namespace: str, flow_id: str, source: str) -> tuple[int, bool]:
        if refusals:
            raise refusals.pop()
        return save_flow(namespace, flow_id, source)

    monkeypatch.setattr(store, "save_flow", refuse_once)
    stop = threading.Event()
    watcher = threading.Thread(target=directory.watch, args=(stop, 0.01))
    watcher.start()
    try:
        shutil.copy(SEED, flows / "hello-world.yaml")
        deadline = time.monotonic() + 10
        while store.latest_flow("dev", "hello-world") is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        watcher.join(5)
    assert store.latest_flow("dev", "hello-world") is not None and not watcher.is_alive()
    assert ("ERROR", f"watching {flows}: database is locked") in said


def test_a_webhook_turned_off_by_toggle_answers_404_until_turned_on(running: Running) -> None:
    running.add_flow(SERVER_FLOWS / "hook.yaml")
    toggle = (
        "id: toggler\nnamespace: tests.server\ninputs:\n  - id: enabled\n    type: BOOLEAN\ntasks:\n"
        "  - id: toggle\n    type: io.kestra.plugin.core.trigger.Toggle\n    namespace: tests.server\n"
        "    flowId: hook\n    trigger: hook\n    enabled: '{{ inputs.enabled }}'\n"
    )
    (running.flows / "toggler.yaml").write_text(toggle)
    running.wait_for(lambda: running.has_flow("tests.server", "hook") and running.has_flow("tests.server", "toggler"))
    hook = "/api/v1/executions/webhook/tests.server/hook/a-secret-key"
    for enabled, status in (("false", 404), ("true", 200)):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        url = "/api/v1/executions/tests.server/toggler?wait=true"
        _, execution = running.call("POST", url, f"enabled={enabled}".encode(), form)
        assert execution["state"]["current"] == "SUCCESS", execution
        assert running.call("POST", hook, b'{"name": "x"}', {"Content-Type": "application/json"})[0] == status


def _limited(behavior: str) -> str:
    return (
        f"id: limited-{behavior.lower()}\nnamespace: tests.server\nconcurrency:\n  limit: 1\n  behavior: {behavior}\n"
        "tasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.3S\n"
    )


def test_a_flow_concurrency_limit_queues_cancels_or_fails_the_executions_over_it(running: Running) -> None:
    for behavior in ("QUEUE", "CANCEL", "FAIL"):
        (running.flows / f"{behavior}.yaml").write_text(_limited(behavior))
    running.wait_for(lambda: all(running.has_flow("tests.server", f"limited-{b}") for b in ("queue", "cancel", "fail")))
    for behavior, others in (("queue", "SUCCESS"), ("cancel", "CANCELLED"), ("fail", "FAILED")):
        ids = [running.call("POST", f"/api/v1/executions/tests.server/limited-{behavior}")[1]["id"] for _ in range(3)]
        done = [running.execution_done(i) if others == "SUCCESS" else running.wait_for(_ended(running, i)) for i in ids]
        assert [d["state"]["current"] for d in done] == ["SUCCESS", others, others], behavior
    queued = [running.execution_done(e["id"]) for e in running.executions_of("limited-queue")]
    running_spans = sorted(
        (_at(next(h["date"] for h in e["state"]["histories"] if h["state"] == "RUNNING")), _at(e["state"]["endDate"]))
        for e in queued
    )
    assert all(earlier[1] <= later[0] for earlier, later in pairwise(running_spans)), running_spans  # one at a time
    histories = [[h["state"] for h in e["state"]["histories"]] for e in queued]
    assert sum("QUEUED" in h for h in histories) == 2


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ended(running: Running, execution_id: str) -> Any:
    def check() -> dict[str, Any] | None:
        execution = running.call("GET", f"/api/v1/executions/{execution_id}")[1]
        return execution if execution["state"]["current"] in ("SUCCESS", "CANCELLED", "FAILED") else None

    return check
