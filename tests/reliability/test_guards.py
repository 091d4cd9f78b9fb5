"""Guards: secrets masked, basic auth (webhooks excepted), hostile sizes refused, a damaged store
named in one line, and timers (pause delays, retries) that survive a killed server."""

from __future__ import annotations

import base64
import json
import re
import resource
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


def test_expression_bombs_are_refused_before_they_allocate() -> None:
    """Every part of a render is bounded, not only its final text: loops, padding, joins, concatenation."""
    from kestractl.expressions import render

    bombs = {
        "{% for i in range(1, 5000) %}{% for j in range(1, 5000) %}{% endfor %}{% endfor %}": "1,000,000 iterations",
        "{{ 'a'|center(10**8)|length }}": "`center` would be over",
        "{{ 'a'.ljust(10**8)|length }}": "`ljust` would be over",
        "{{ 'abcdefghijkl'.replace('', 'x' ~ ('y'|center(10**6))) }}": "`replace` would be over",
        "{{ '%100000000s'|format(1) }}": "`format` would be over",
        "{{ '{:>100000000}'.format(1) }}": "`format` would be over",
        "{{ 'a\nb\nc'|indent(10**7) }}": "`indent` would be over",
        "{% set n = namespace(s='ab') %}{% for i in range(1, 40) %}{% set n.s = n.s ~ n.s %}{% endfor %}": "text",
        # found by review: each built tens of MB (or any size) before the final check
        "{% for i in range(1, 30) %}{{ ''|center(9000000) }}{% endfor %}": "the result is over",
        "{{ range(1, 100000)|join(''|center(200)) }}": "`join` would be over",
        "{{ 'a,b,c,d,e,f'|replace(',', ''|center(3000000)) }}": "`replace` would be over",
        "{{ '{:{}}'.format('', 30000000) }}": "`format` would be over",
        "{{ '%(a)30000000s'|format(a='x') }}": "`format` would be over",
        "{% set s = ''|center(9000000) %}{{ '{0}{0}{0}{0}'.format(s) }}": "`format` would be over",
        "{{ ('a'|center(100)).translate({32: ''|center(300000)}) }}": "`translate` would be over",
        "{{ ('a b '|center(3000000))|wordwrap(2, true, ''|center(20)) }}": "`wordwrap` would be over",
        """{% set m = fromJson('{"' ~ (range(1, 2000)|join('":1,"')) ~ '":1}') %}"""
        "{% for a in m %}{% for b in m %}{% endfor %}{% endfor %}": "1,000,000 iterations",  # maps count too
    }
    for template, reason in bombs.items():
        with pytest.raises(ExpressionError, match=re.escape(reason)):
            render(template, {})
    assert render("{{ 'ab'|center(6) }}|{{ '%3s'|format(1) }}|{{ 'a'.ljust(3, '.') }}", {}) == "  ab  |  1|a.."
    big = "x" * 6_000_000  # a result as long as its input is no bomb
    assert render("{{ s.replace('x', 'y') }}", {"s": big}) == "y" * 6_000_000
    assert render("{{ s.expandtabs() }}", {"s": big}) == big


def test_a_jq_memory_bomb_stops_its_own_process_not_ours() -> None:
    """jq runs in a child with a memory cap: a program that builds a gigabyte fails in one line, the next runs."""
    from kestractl.expressions import render

    with pytest.raises(ExpressionError, match="stopped its process"):
        render("{{ 0 | jq('\"x\" * 1e9 | length') }}", {})
    assert render("{{ {'a': [1, 2]} | jq('.a | add') }}", {}) == "[3]"


def test_text_utf8_cannot_hold_is_logged_and_stored(tmp_path: Path) -> None:
    """`"\\ud83d\\ude00"` is one emoji as in Java; a lone `"\\ud800"` becomes U+FFFD instead of failing the store."""
    runner, home = CliRunner(), str(tmp_path / "home")
    flow = tmp_path / "odd.yaml"
    flow.write_text(
        "id: odd\nnamespace: tests\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: \"pair \\ud83d\\ude00 lone \\ud800 rendered {{ '\\ud800' }}\"\n"
    )
    assert runner.invoke(app, ["--home", home, "flow", "deploy", str(flow)]).exit_code == 0
    result = runner.invoke(app, ["--home", home, "execute", "tests", "odd", "--json"])
    assert result.exit_code == 0, result.stderr
    logs = runner.invoke(app, ["--home", home, "executions", "logs", json.loads(result.stdout)["id"]]).stdout
    assert "pair \U0001f600 lone \ufffd rendered \ufffd" in logs


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


SAMPLES = Path(__file__).parents[2] / "sample_flows"


def _small_disk() -> None:
    """A disk that is full past 300 kB: a file may not grow beyond it (SIGXFSZ ignored, so writes fail)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))


def test_a_full_disk_is_one_line_and_keeps_the_store(tmp_path: Path) -> None:
    home, big = tmp_path / "home", tmp_path / "big.yaml"
    subprocess.run([EXE, "--home", str(home), "flow", "deploy", str(SAMPLES / "hello-world.yaml")], check=True)
    big.write_text(
        (SAMPLES / "hello-world.yaml").read_text().replace("id: hello-world", "id: big") + "# " + "x" * 600_000 + "\n"
    )
    before = (home / "kestractl.db").read_bytes()
    result = subprocess.run(
        [EXE, "--home", str(home), "flow", "deploy", str(big)], capture_output=True, text=True, preexec_fn=_small_disk
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and str(home / "kestractl.db") in result.stderr
    assert "free space" in result.stderr
    listed = subprocess.run([EXE, "--home", str(home), "flow", "list"], capture_output=True, text=True, check=True)
    assert "hello-world" in listed.stdout and "big" not in listed.stdout
    assert (home / "kestractl.db").read_bytes() == before


def _read_only(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run kestractl with `home` mounted read-only (a user namespace makes this possible without root)."""
    script = f'mount --bind "{home}" "{home}" && mount -o remount,bind,ro "{home}" && exec "$@"'
    command = ["unshare", "-Urm", "sh", "-c", script, "sh", EXE, "--home", str(home), *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_a_read_only_home_is_one_line_and_keeps_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run([EXE, "--home", str(home), "flow", "deploy", str(SAMPLES / "hello-world.yaml")], check=True)
    if _read_only(home, "--version").returncode != 0:
        pytest.skip("this machine cannot mount a read-only view of a folder (no user namespaces)")
    before = (home / "kestractl.db").read_bytes()
    for args in (
        ("flow", "deploy", str(SAMPLES / "subflow.yaml")),
        ("execute", "dev", "hello-world"),
        ("flow", "list"),
    ):
        result = _read_only(home, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "the folder must be writable" in result.stderr
        assert str(home / "kestractl.db") in result.stderr
    assert (home / "kestractl.db").read_bytes() == before


READER = """id: reader
namespace: tests.guards
inputs:
  - id: data
    type: FILE
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(inputs.data) }}"
"""


def test_a_missing_internal_storage_file_is_one_line(tmp_path: Path) -> None:
    """A file deleted from storage behind kestractl's back: the CLI and the task that reads it say which."""
    runner, home = CliRunner(), tmp_path / "home"
    (tmp_path / "reader.yaml").write_text(READER)
    (tmp_path / "data.txt").write_text("payload")
    runner.invoke(app, ["--home", str(home), "flow", "deploy", str(tmp_path / "reader.yaml")])
    first = runner.invoke(
        app, ["--home", str(home), "execute", "tests.guards", "reader", "-i", f"data={tmp_path / 'data.txt'}", "--json"]
    )
    execution = json.loads(first.stdout)
    uri = execution["inputs"]["data"]
    stored = next((home / "storage").rglob("data.txt"))
    stored.unlink()
    shown = subprocess.run(
        [EXE, "--home", str(home), "executions", "file", execution["id"], uri], capture_output=True, text=True
    )
    assert shown.returncode == 1 and "Traceback" not in shown.stderr and shown.stderr.count("\n") == 1
    assert uri in shown.stderr and str(stored) in shown.stderr
    resumed = runner.invoke(app, ["--home", str(home), "executions", "resume", execution["id"]])
    assert resumed.exit_code == 1 and "Traceback" not in resumed.stderr
    logs = runner.invoke(app, ["--home", str(home), "executions", "logs", execution["id"]]).stdout
    assert f"file not found in internal storage: {uri}" in logs


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
    done = server.start_and_wait(created["id"], "SUCCESS")
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
