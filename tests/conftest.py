"""Shared fixtures: a fresh kestractl home per test, the CLI through Typer's runner, flow files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kestractl.cli.app import app

FLOWS = Path(__file__).parent / "flows"


class Cli:
    """Runs `kestractl --home <tmp> ...` in-process and keeps stdout and stderr apart."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(app, ["--home", str(self.home), *args], catch_exceptions=False)

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
