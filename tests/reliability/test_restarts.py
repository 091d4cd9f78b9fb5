"""Real processes stopped under work: SIGKILL and SIGTERM of the server, then a restart finishes
what was accepted (the interrupted task run gets a new attempt, as Kestra resubmits a dead worker's job)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

EXE = str(Path(sys.executable).parent / "kestractl")
FLOW = """id: slow
namespace: tests.reliability
tasks:
  - id: work
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 1.5
      - echo done
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: finished
"""


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.env = dict(os.environ, KESTRACTL_HOME=str(tmp_path / "home"), NO_COLOR="1")
        self.flows = tmp_path / "flows"
        self.flows.mkdir(exist_ok=True)
        (self.flows / "slow.yaml").write_text(FLOW)
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [EXE, "server", "standalone", "-f", str(self.flows), "--port", "0", "--grace", "0.3"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "listening on " in line:
                self.url = line.strip().rsplit(" ", 1)[-1]
                # keep reading its output, or a full pipe would block the server
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
        raise AssertionError("the server did not start")

    def call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_state(self, execution_id: str, wanted: str, seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            execution = self.call("GET", f"/api/v1/executions/{execution_id}")
            runs = {r["taskId"]: r for r in execution.get("taskRunList") or []}
            if wanted == "work-running" and runs.get("work", {}).get("state", {}).get("current") == "RUNNING":
                return execution
            if execution["state"]["current"] == wanted:
                return execution
            time.sleep(0.05)
        raise AssertionError(f"{execution_id} never reached {wanted}")

    def start_and_wait(self, execution_id: str, wanted: str) -> dict[str, Any]:
        """Start again, wait for the execution to reach `wanted`, stop cleanly (also when it never does)."""
        self.start()
        try:
            return self.wait_state(execution_id, wanted)
        finally:
            self.stop(signal.SIGTERM)

    def stop(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_an_interrupted_task_run_gets_a_new_attempt_after_restart(tmp_path: Path, sig: int) -> None:
    server = Server(tmp_path)
    server.start()
    created = server.call("POST", "/api/v1/executions/tests.reliability/slow")
    server.wait_state(created["id"], "work-running")
    code = server.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    done = server.start_and_wait(created["id"], "SUCCESS")
    runs = {r["taskId"]: r for r in done["taskRunList"]}
    assert len(done["taskRunList"]) == 2
    attempts = [a["state"]["current"] for a in runs["work"]["attempts"]]
    assert attempts[-1] == "SUCCESS" and len(attempts) == 2
    assert runs["after"]["outputs"] == {"value": "finished"}


def test_an_accepted_request_survives_an_immediate_kill(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    created = server.call("POST", "/api/v1/executions/tests.reliability/slow")
    server.stop(signal.SIGKILL)
    done = server.start_and_wait(created["id"], "SUCCESS")
    assert done["id"] == created["id"]


def test_an_execution_whose_flow_is_gone_fails_and_the_server_starts(tmp_path: Path) -> None:
    """A store holding an execution whose flow rows are missing (copied from elsewhere, or damaged): the
    server says so on that execution and goes on serving, instead of exiting at start."""
    import sqlite3

    from kestractl.config import Home
    from kestractl.engine.runner import Runner
    from kestractl.model import State
    from kestractl.parser import parse_flow
    from kestractl.storage import LocalStorage
    from kestractl.store import open_store

    home = Home(tmp_path / "home").ensure()
    store = open_store(home.db_path)
    store.save_flow("tests.reliability", "slow", FLOW)
    runner = Runner(store, LocalStorage(home.storage_root))
    started = runner.create_execution(parse_flow(FLOW, "slow.yaml"), {}, [])
    waiting = runner.create_execution(parse_flow(FLOW, "slow.yaml"), {}, [])
    store.set_execution_state(started.id, State.RUNNING)
    runner.close()
    with sqlite3.connect(home.db_path) as conn:
        conn.execute("DELETE FROM flows")
    server = Server(tmp_path)
    (server.flows / "slow.yaml").unlink()
    server.start()
    try:
        for execution_id in (started.id, waiting.id):
            server.wait_state(execution_id, "FAILED")
            logs = server.call("GET", f"/api/v1/logs/{execution_id}")
            assert any("flow not found" in line["message"] for line in logs), logs
        assert server.process is not None and server.process.poll() is None
    finally:
        assert server.stop(signal.SIGTERM) == 0
