"""The development gate (`./lint`, run by ./test before the tests) fails on a mistake, not just on a good day.

A test of the gate script, not of the code base: it runs on a scratch copy of the package, first untouched
(it must pass), then with one deliberate mistake at a time (it must fail and name the mistake). The copy
takes the clone's mypy cache along when there is one, so mypy only re-checks the file that changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = "kestractl/gate_probe.py"
MISTAKES = {
    "mistyped": ("def half(n: int) -> int:\n    return n / 2\n", f"{PROBE}:2: error: Incompatible return value"),
    "lint": ('"""Unused."""\n\nimport os\n', f"{PROBE}:3:8: F401"),
    "format": ('"""Badly laid out."""\n\nx = {"a":1}\n', f"{PROBE}:3:10: unformatted"),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package, its pyproject.toml and the gate script, copied; no virtual environment (PYTHON says which)."""
    copy = tmp_path_factory.mktemp("gate")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("kestractl", "build_onefile"):  # what [tool.mypy] checks
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    for name in ("pyproject.toml", "lint"):
        shutil.copy2(ROOT / name, copy / name)
    if (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", copy / ".mypy_cache")
    return copy


def gate(root: Path) -> subprocess.CompletedProcess[str]:
    """`./lint ROOT` with this interpreter's ruff and mypy."""
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(root / "lint"), str(root)], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def mistake(scratch: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """One mistake written into the copy for the test's length; yields what the gate must say about it."""
    text, expected = MISTAKES[request.param]
    (scratch / PROBE).write_text(text)
    yield expected
    (scratch / PROBE).unlink()


def test_the_gate_passes_on_an_untouched_copy(scratch: Path) -> None:
    result = gate(scratch)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mistake", sorted(MISTAKES), indirect=True)
def test_the_gate_fails_naming_the_mistake(scratch: Path, mistake: str) -> None:
    result = gate(scratch)
    assert result.returncode != 0
    assert mistake in result.stdout + result.stderr, result.stdout + result.stderr


def test_test_runs_the_gate_before_the_tests() -> None:
    """./test (and so CI's .ci/run) calls ./lint before its first pytest."""
    script = (ROOT / "test").read_text()
    gate_at, pytest_at = re.search(r"^\./lint\b", script, re.M), script.find("-m pytest")
    assert gate_at and 0 <= gate_at.start() < pytest_at, "./test must run ./lint before pytest"
