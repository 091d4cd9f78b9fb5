"""Guards: secrets masked, basic auth (webhooks excepted), hostile sizes refused, a damaged store
named in one line, and timers (pause delays, retries) that survive a killed server."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_restarts import EXE, Server
from typer.testing import CliRunner

from kestractl.cli.app import app
from kestractl.errors import ExpressionError, ValidationError
from kestractl.parser import parse_flow

SECRETS = """id: secrets
namespace: tests.guards
inputs:
  - id: password
    type: SECRET
tasks:
  - id: use
    type: io.kestra.plugin.core.log.Log
    message: "password {{ inputs.password }} token {{ secret('API_TOKEN') }}"
  - id: seen
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.password | length }}"
"""


def test_secret_inputs_and_secret_function_are_masked_outside_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_API_TOKEN", base64.b64encode(b"tok-123456").decode())
    runner, home = CliRunner(), str(tmp_path / "home")
    (tmp_path / "secrets.yaml").write_text(SECRETS)
    runner.invoke(app, ["--home", home, "flow", "deploy", str(tmp_path / "secrets.yaml")])
    result = runner.invoke(
        app, ["--home", home, "execute", "tests.guards", "secrets", "-i", "password=hunter22", "--json"]
    )
    execution = json.loads(result.stdout)
    assert execution["inputs"]["password"] == "******"
    assert execution["taskRunList"][1]["outputs"]["value"] == "8"
    logs = runner.invoke(app, ["--home", home, "executions", "logs", execution["id"]]).stdout
    assert "password ****** token ******" in logs
    everything = result.stdout + result.stderr + logs
    assert "hunter22" not in everything and "tok-123456" not in everything


def test_basic_auth_guards_the_api_but_not_webhooks(tmp_path: Path) -> None:
    server = Server(tmp_path)
    (server.flows / "hook.yaml").write_text(
        "id: hook\nnamespace: tests.guards\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: ok\ntriggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: the-key\n"
    )
    server.env["KESTRACTL_BASIC_AUTH"] = "admin:s3cret"
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.call("GET", "/api/v1/flows/search")
        assert refused.value.code == 401
        token = base64.b64encode(b"admin:s3cret").decode()
        request = urllib.request.Request(
            server.url + "/api/v1/flows/search", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert server.call("POST", "/api/v1/executions/webhook/tests.guards/hook/the-key")["id"]
    finally:
        server.stop(signal.SIGTERM)


def test_hostile_sizes_are_refused_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="nested more than 64 levels"):
        parse_flow("id: x\nnamespace: n\ntasks: " + "[" * 2000 + "]" * 2000, "deep.yaml")
    with pytest.raises(ValidationError, match="at most 1,000,000 characters"):
        parse_flow("id: x\n#" + "x" * 1_000_001, "big.yaml")
    from kestractl import expressions

    monkeypatch.setattr(expressions, "MAX_OUTPUT_CHARS", 100)
    with pytest.raises(ExpressionError, match="over 100 characters"):
        expressions.render("{% for i in range(1, 200) %}x{% endfor %}", {})


def test_a_runaway_fan_out_fails_its_execution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kestractl.engine import executor

    monkeypatch.setattr(executor, "MAX_TASK_RUNS", 5)
    runner, home = CliRunner(), str(tmp_path / "home")
    flow = tmp_path / "fan.yaml"
    flow.write_text(
        "id: fan\nnamespace: tests\ntasks:\n  - id: loop\n    type: io.kestra.plugin.core.flow.ForEach\n"
        "    values: '[1,2,3,4,5,6,7,8]'\n    concurrencyLimit: 0\n    tasks:\n      - id: r\n"
        "        type: io.kestra.plugin.core.debug.Return\n        format: x\n"
    )
    runner.invoke(app, ["--home", home, "flow", "deploy", str(flow)])
    result = runner.invoke(app, ["--home", home, "execute", "tests", "fan", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["state"]["current"] == "FAILED"
    assert "at most 5 task runs" in result.stderr


def test_a_damaged_or_unusable_home_is_one_line(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "kestractl.db").write_bytes(b"this is not sqlite at all, sorry" * 10)
    result = subprocess.run([EXE, "--home", str(damaged), "flow", "list"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "kestractl.db: file is not a database" in result.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = subprocess.run([EXE, "--home", str(blocker / "home"), "flow", "list"], capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr and str(blocker) in result.stderr


TIMERS = """id: timers
namespace: tests.guards
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1.5S
  - id: flaky
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - test -f "{marker}" || (touch "{marker}"; exit 1)
    retry:
      type: constant
      interval: PT1.5S
      maxAttempt: 3
"""


def test_pause_delays_and_retry_waits_survive_a_killed_server(tmp_path: Path) -> None:
    server = Server(tmp_path)
    (server.flows / "timers.yaml").write_text(TIMERS.replace("{marker}", str(tmp_path / "marker")))
    server.start()
    created = server.call("POST", "/api/v1/executions/tests.guards/timers")
    server.wait_state(created["id"], "PAUSED")
    server.stop(signal.SIGKILL)
    time.sleep(2)  # the delay passes while nobody runs
    server.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait for the retry to be pending, then kill again
        runs = {r["taskId"]: r for r in server.call("GET", f"/api/v1/executions/{created['id']}")["taskRunList"]}
        if runs.get("flaky", {}).get("state", {}).get("current") == "RETRYING":
            break
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    server.start()
    try:
        done = server.wait_state(created["id"], "SUCCESS")
    finally:
        server.stop(signal.SIGTERM)
    runs = {r["taskId"]: r for r in done["taskRunList"]}
    assert [h["state"] for h in runs["nap"]["state"]["histories"]].count("PAUSED") == 1
    assert [a["state"]["current"] for a in runs["flaky"]["attempts"]] == ["FAILED", "SUCCESS"]


def test_schedule_dates_missed_while_down_fire_once_after_restart(tmp_path: Path) -> None:
    server = Server(tmp_path)
    (server.flows / "tick.yaml").write_text(
        "id: tick\nnamespace: tests.guards\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: '{{ trigger.date }}'\ntriggers:\n  - id: every-second\n"
        "    type: io.kestra.plugin.core.trigger.Schedule\n    withSeconds: true\n    cron: '* * * * * *'\n"
    )
    server.start()
    time.sleep(1.5)
    server.stop(signal.SIGKILL)
    time.sleep(3)
    server.start()
    time.sleep(2)
    try:
        found = server.call("GET", "/api/v1/executions/search?flowId=tick&size=1000")["results"]
    finally:
        server.stop(signal.SIGTERM)
    dates = sorted(e["trigger"]["variables"]["date"] for e in found)
    assert len(dates) == len(set(dates)), "a date fired twice"
    from datetime import datetime

    seconds = [datetime.fromisoformat(d).timestamp() for d in dates]
    gaps = [b - a for a, b in zip(seconds, seconds[1:], strict=False)]
    assert len(dates) >= 5 and all(gap == 1 for gap in gaps), dates
