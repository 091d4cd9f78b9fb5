"""Shared fixtures: a fresh kestractl home per test, the CLI through Typer's runner, flow files."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from kestractl.cli.app import app

if TYPE_CHECKING:
    from kestractl.server.app import StandaloneServer

FLOWS = Path(__file__).parent / "flows"


class Cli:
    """Runs `kestractl --home <tmp> ...` in-process and keeps stdout and stderr apart."""

    def __init__(self, home: Path, database: str | None = None) -> None:
        self.home = home
        self.runner = CliRunner()
        self.options = ["--home", str(home), *(["--database", database] if database else [])]

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(app, [*self.options, *args], catch_exceptions=False)

    def deploy(self, *names: str) -> None:
        result = self("flow", "deploy", *[str(FLOWS / n) for n in names])
        assert result.exit_code == 0, result.stdout + result.stderr

    def execute(self, namespace: str, flow_id: str, *args: str) -> tuple[int, dict[str, Any]]:
        result = self("execute", namespace, flow_id, "--json", *args)
        return result.exit_code, json.loads(result.stdout)


def needs_tool(name: str, path: str | None = None) -> pytest.MarkDecorator:
    """Skip a test whose tool is missing on a developer's machine (on PATH, or `path` when given); in CI
    (`CI=true`) it runs, and fails."""
    missing = shutil.which(name, path=path) is None
    return pytest.mark.skipif(missing and os.environ.get("CI") != "true", reason=f"needs `{name}`")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def runs(execution: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [r for r in execution.get("taskRunList") or [] if r["taskId"] == task_id]


def state(obj: dict[str, Any]) -> str:
    return obj["state"]["current"]


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[StandaloneServer, Path]]:
    """A standalone server on a thread, watching a flows folder (the scheduler ticks every 50 ms)."""
    from kestractl.config import Home
    from kestractl.server.app import ServerOptions, StandaloneServer

    flows = tmp_path / "flows"
    flows.mkdir()
    options = ServerOptions(flow_path=flows, port=0, grace_seconds=2, tick_seconds=0.05, workers=4)

    server = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server, flows
    server.stop_event.set()
    thread.join(15)
    assert not thread.is_alive()


def executions_of(server: StandaloneServer, flow_id: str) -> list[Any]:
    ids = server.store.find_execution_ids(flow_id=flow_id, limit=100)
    return [server.store.load_execution(i) for i in ids]


def wait_for(check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
