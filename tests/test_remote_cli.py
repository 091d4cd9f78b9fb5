"""`kestractl --server URL`: the CLI, run as a subprocess with an empty home of its own, drives a real
`kestractl server standalone` on 127.0.0.1 (an OS-assigned port) through Kestra's API, and prints what local
mode prints, with its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FLOWS
from tests.services.kestractl_server import standalone

EXE = str(Path(sys.executable).parent / "kestractl")
FAIL_UNTIL_KV = """id: fail-until-kv
namespace: tests
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: before
  - id: needs-go
    type: io.kestra.plugin.core.log.Log
    message: "go is {{ kv('go') }}"
"""
FILE_INPUT = """id: file-input
namespace: tests
inputs:
  - id: data
    type: FILE
  - id: who
    type: STRING
tasks:
  - id: content
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.who }} sent {{ read(inputs.data) }}"
"""


@dataclass
class Remote:
    """A server process and the CLI pointed at it (`--server`), each with a home of its own."""

    url: str
    tmp: Path
    user: str | None = None

    def __call__(self, *args: str, home: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EXE, *self.options(), *args], env=self.env(home, env), capture_output=True, text=True, timeout=60
        )

    def options(self) -> list[str]:
        return ["--server", self.url, *(["--user", self.user] if self.user else [])]

    def env(self, home: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        return dict(os.environ, KESTRACTL_HOME=str(home or self.tmp / "cli-home"), NO_COLOR="1", **(extra or {}))

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def newest(self, flow_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = self.json("executions", "list", "--flow", flow_id)
        return found[0]


def _serve(tmp: Path, *options: str) -> Iterator[str]:
    """`kestractl server standalone` on a free port, with a home of its own."""
    command = [EXE, "server", "standalone", "--grace", "2", *options]
    with standalone(command, tmp / "server-home", tmp, tmp / "server.log") as url:
        yield url


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    for url in _serve(tmp_path):
        yield Remote(url, tmp_path)


def _local(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp / "local-home"), NO_COLOR="1")
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_flows_print_what_local_mode_prints(remote: Remote, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nnamespace: tests\ntasks:\n  - id: t\n    type: io.kestra.nope.Nothing\n")
    files = [str(FLOWS / "hello.yaml"), str(FLOWS / "pause.yaml")]
    commands = [
        ["flow", "deploy", *files],
        ["flow", "deploy", files[0]],
        ["flow", "validate", files[0]],
        ["flow", "validate", str(bad)],
        ["flow", "deploy", str(bad)],
        ["flow", "list"],
        ["flow", "list", "--json"],
        ["flow", "show", "tests", "hello"],
        ["flow", "show", "tests", "nope"],
        ["flow", "delete", "tests", "pause"],
        ["flow", "list", "--namespace", "tests"],
    ]
    for command in commands:
        local, there = _local(tmp_path, *command), remote(*command)
        assert (there.returncode, there.stdout, there.stderr) == (local.returncode, local.stdout, local.stderr), command
    assert remote("flow", "validate", str(bad)).returncode == 2
    assert remote.ok("flow", "export", str(tmp_path / "there")).stdout == f"1 flow(s) exported to {tmp_path}/there\n"
    assert _local(tmp_path, "flow", "export", str(tmp_path / "here")).returncode == 0
    assert (tmp_path / "there/tests/hello.yaml").read_text() == (tmp_path / "here/tests/hello.yaml").read_text()
    kestra_0x = Remote(f"{remote.url}/api/v1", tmp_path)  # an API path given in the URL is used as it is
    assert kestra_0x("flow", "list").stdout == _local(tmp_path, "flow", "list").stdout
    assert not (tmp_path / "cli-home").exists()  # nothing was stored on this side


def test_execute_with_inputs_and_a_file_follows_logs_and_exits_with_the_final_state(
    remote: Remote, tmp_path: Path
) -> None:
    (tmp_path / "file-input.yaml").write_text(FILE_INPUT)
    (tmp_path / "data.txt").write_text("forty-two")
    remote.ok("flow", "deploy", str(tmp_path / "file-input.yaml"), str(FLOWS / "hello.yaml"))

    hello = remote("execute", "tests", "hello", "--input", "greeting=hey", "--label", "team=cli")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.endswith(" INFO  say hey, from tests.hello\n")
    assert "tests.hello  rev 1  SUCCESS" in hello.stderr

    sent = remote("execute", "tests", "file-input", "-i", f"data={tmp_path / 'data.txt'}", "-i", "who=ann", "--json")
    assert sent.returncode == 0, sent.stderr
    assert "content ann sent forty-two" in sent.stderr
    execution = json.loads(sent.stdout)
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["inputs"]["data"].startswith("kestra:///tests/file-input/executions/")
    assert remote.ok("executions", "file", execution["id"], execution["inputs"]["data"]).stdout == "forty-two"
    uri = execution["inputs"]["data"]  # a kestra:/// URI is passed on: the server decides (another execution's file)
    reused = remote("execute", "tests", "file-input", "-i", f"data={uri}", "-i", "who=ann")
    assert reused.returncode == 1 and "as it didn't belong to the current execution" in reused.stdout

    local_hello = _local(tmp_path, "flow", "deploy", str(FLOWS / "hello.yaml"))
    assert local_hello.returncode == 0
    local = json.loads(_local(tmp_path, "execute", "tests", "hello", "--json").stdout)
    there = json.loads(remote.ok("execute", "tests", "hello", "--json").stdout)
    assert _shape(there) == _shape(local)

    missing = remote("execute", "tests", "nope")
    assert (missing.returncode, missing.stderr) == (2, "Error: flow not found: tests.nope\n")
    refused = remote("execute", "tests", "file-input", "-i", "who=ann", "-i", f"data={tmp_path / 'gone.txt'}")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr


def _shape(data: Any) -> Any:
    """The keys of every object, nested: what two executions of one flow share whatever their values."""
    if isinstance(data, dict):
        return {key: _shape(value) for key, value in data.items() if key not in ("inputs", "labels")}
    if isinstance(data, list):
        return [_shape(item) for item in data[:1]]
    return type(data).__name__


def test_executions_list_show_logs_and_restart_a_failed_one(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "fail.yaml").write_text(FAIL_UNTIL_KV)
    remote.ok("flow", "deploy", str(tmp_path / "fail.yaml"))
    failed = remote("execute", "tests", "fail-until-kv")
    assert failed.returncode == 1 and "FAILED" in failed.stderr
    execution = remote.newest("fail-until-kv")
    assert execution["state"]["current"] == "FAILED"

    listed = remote.ok("executions", "list", "--state", "FAILED").stdout.splitlines()
    assert listed[0].split("\t")[:4] == ["ID", "FLOW", "REV", "STATE"]
    assert listed[1].split("\t")[:4] == [execution["id"], "tests.fail-until-kv", "1", "FAILED"]
    shown = remote.ok("executions", "show", execution["id"]).stdout
    assert "├─ first  SUCCESS" in shown and "├─ needs-go  FAILED" in shown
    logs = remote.ok("executions", "logs", execution["id"]).stdout
    assert " INFO  first before\n" in logs
    assert remote.ok("executions", "logs", execution["id"], "--level", "ERROR").stdout.count(" ERROR ") >= 1
    assert remote.ok("executions", "logs", execution["id"], "--task", "first").stdout.endswith(" INFO  first before\n")

    remote.ok("kv", "set", "tests", "go", "yes")
    restarted = remote("executions", "restart", execution["id"])
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.endswith(" INFO  needs-go go is yes\n")
    assert "first before" not in restarted.stdout  # the first attempt's lines are not printed again
    assert f"{execution['id']}  tests.fail-until-kv  rev 1  SUCCESS" in restarted.stderr


def test_kill_a_running_execution_and_resume_a_paused_one(remote: Remote) -> None:
    remote.ok("flow", "deploy", str(FLOWS / "kill-me.yaml"), str(FLOWS / "pause.yaml"))
    running = subprocess.Popen(
        [EXE, *remote.options(), "execute", "tests", "kill-me"],
        env=remote.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while remote("executions", "list", "--flow", "kill-me", "--state", "RUNNING", "--json").stdout.strip() == "[]":
        assert time.monotonic() < deadline, "kill-me never ran"
        time.sleep(0.2)
    victim = remote.newest("kill-me")["id"]
    killed = remote.ok("executions", "kill", victim)
    assert killed.stdout == f"{victim}  KILLED\n"
    out, err = running.communicate(timeout=30)
    assert running.returncode == 1, err
    assert f"{victim}  tests.kill-me  rev 1  KILLED" in err

    paused = remote("execute", "tests", "pause")
    assert paused.returncode == 0 and " PAUSED " in paused.stderr
    waiting = remote.newest("pause")["id"]
    resumed = remote("executions", "resume", waiting, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"]["current"] == "SUCCESS"
    again = remote("executions", "resume", waiting)
    assert (again.returncode, again.stderr) == (4, f"Error: execution {waiting} is SUCCESS, not PAUSED\n")


def test_kv_and_namespace_files(remote: Remote, tmp_path: Path) -> None:
    remote.ok("kv", "set", "dev", "orders", '{"count": 3}')
    remote.ok("kv", "set", "dev", "note", "hello there", "--ttl", "PT1H")
    assert remote.ok("kv", "get", "dev", "orders").stdout == '{"count":3}\n'
    assert remote.ok("kv", "get", "dev", "note").stdout == "hello there\n"
    listed = remote.json("kv", "list", "dev")
    assert sorted(e["key"] for e in listed) == ["note", "orders"]
    assert ["expirationDate" in e for e in sorted(listed, key=lambda e: e["key"])] == [True, False]
    assert remote.ok("kv", "delete", "dev", "orders").stdout == "dev orders  deleted\n"
    gone = remote("kv", "get", "dev", "orders")
    assert (gone.returncode, gone.stderr) == (3, "Error: No value found for key 'orders' in namespace 'dev'\n")
    assert remote("kv", "delete", "dev", "orders").returncode == 3

    folder = tmp_path / "scripts"
    (folder / "sql").mkdir(parents=True)
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "sql" / "q.sql").write_bytes(b"select 1;\n\x00\xff")
    uploaded = remote.ok("namespace", "files", "update", "dev", str(folder), "/app").stdout
    assert uploaded.count("Successfully uploaded") == 2
    assert remote.ok("namespace", "files", "list", "dev").stdout == "/app/main.py\n/app/sql/q.sql\n"
    downloaded = subprocess.run(
        [EXE, *remote.options(), "namespace", "files", "get", "dev", "app/sql/q.sql"],
        env=remote.env(),
        capture_output=True,
    )
    assert downloaded.stdout == b"select 1;\n\x00\xff"
    assert remote.ok("namespace", "files", "delete", "dev", "app/main.py").stdout == "/app/main.py  deleted from dev\n"
    assert remote.ok("namespace", "files", "list", "dev").stdout == "/app/sql/q.sql\n"
    assert remote("namespace", "files", "delete", "dev", "app/main.py").returncode == 3


def test_basic_auth(tmp_path: Path) -> None:
    for url in _serve(tmp_path, "--basic-auth", "admin:s3cret"):
        anonymous = Remote(url, tmp_path)("flow", "list")
        assert anonymous.returncode == 1
        assert anonymous.stderr == f"Error: {url} refused the credentials (401): give --user user:password\n"
        assert Remote(url, tmp_path, "admin:wrong")("flow", "list").returncode == 1
        allowed = Remote(url, tmp_path, "admin:s3cret")
        assert allowed("flow", "deploy", str(FLOWS / "hello.yaml")).returncode == 0
        by_env = Remote(url, tmp_path)("execute", "tests", "hello", KESTRACTL_USER="admin:s3cret")
        assert by_env.returncode == 0 and "say hello, from tests.hello" in by_env.stdout


def test_network_errors_are_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for command in (["flow", "list"], ["execute", "tests", "hello"], ["kv", "get", "dev", "k"]):
            result = Remote(url, tmp_path)(*command)
            assert result.returncode == 1, command
            assert result.stderr == f"Error: cannot reach {url}: Connection refused\n", result.stderr
    with subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    ) as web:  # a web server, but no API
        assert web.stdout is not None
        port = web.stdout.readline().split(" port ")[1].split()[0]
        elsewhere = Remote(f"http://127.0.0.1:{port}", tmp_path)("flow", "list")
        web.terminate()
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == (
        f"Error: http://127.0.0.1:{port} answered 404 to /api/v1/main/flows/search: no Kestra API there?\n"
    )
    unknown = Remote("http://no-such-host.invalid", tmp_path)("executions", "list")
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: cannot reach http://no-such-host.invalid: ")
    assert unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
    by_env = subprocess.run(
        [EXE, "flow", "list"], env=dict(os.environ, KESTRACTL_SERVER="ftp://x"), capture_output=True, text=True
    )
    assert (by_env.returncode, by_env.stderr) == (1, "Error: --server ftp://x: expected an http:// or https:// URL\n")
    bad_port = Remote("http://host:abc", tmp_path)("flow", "list")
    assert (bad_port.returncode, bad_port.stderr) == (1, "Error: --server http://host:abc: Invalid port: 'abc'\n")
    bad_user = Remote("http://127.0.0.1:9", tmp_path, "nocolon")("flow", "list")
    assert (bad_user.returncode, bad_user.stderr) == (1, "Error: --user: expected user:password\n")


def test_each_mode_imports_only_its_own_side(tmp_path: Path) -> None:
    """Local mode never imports the HTTP client; remote mode never imports the engine."""
    code = (
        "import sys; from kestractl.cli.app import main\n"
        "try: main(sys.argv[1:])\n"
        "except SystemExit: pass\n"
        "print(*sorted(m for m in sys.modules if m.startswith(('httpx', 'kestractl.cli.remote', 'kestractl.engine'))))"
    )
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path))

    def imported(*args: str) -> set[str]:
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
        return {name.split(".")[0] if name.startswith("httpx") else name for name in out.stdout.split()}

    local = imported("execute", "dev", "missing")
    assert "kestractl.engine.runner" in local and not local & {"httpx", "kestractl.cli.remote"}
    remote = imported("--server", "http://127.0.0.1:9", "flow", "list")
    assert "httpx" in remote and "kestractl.cli.remote" in remote
    assert not {m for m in remote if m.startswith("kestractl.engine")}
