"""Python environments for script tasks' `dependencies`: built once, kept in the cache, shared.

An environment is a virtualenv keyed by its interpreter and the sorted, normalised requirement list, so
every run in every process asking for the same packages reuses it. A virtualenv cannot be moved once built
(its scripts name their folder), so it is built in place under an exclusive file lock and marked ready
last: two tasks asking at once build it once, and a build that died half-way is redone by the next run.
Packages are installed with `uv` (a dependency of kestractl, as it is Kestra's default), else with pip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import PIPE

from kestractl.errors import TaskError
from kestractl.tasks.base import Killed, RunContext

READY = ".kestractl-ready"
POLL_SECONDS = 0.05
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SPACES_AROUND = re.compile(r"\s*([<>=!~,;\[\]]+)\s*")
PREFIX = re.compile(r"^(error|cause):\s*", re.IGNORECASE)
INSTALL_ENV = {"NO_COLOR": "1", "UV_PYTHON_DOWNLOADS": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def normalise(requirements: list[str]) -> list[str]:
    """Sorted, without blanks or duplicates; names in PEP 503 form: ` Foo_Bar >= 1` → `foo-bar>=1`."""
    return sorted({_normal(req) for req in requirements if req.strip()})


def _normal(requirement: str) -> str:
    text = " ".join(requirement.split())
    name = NAME.match(text)
    if name is None:
        return text
    return re.sub(r"[-_.]+", "-", name.group()).lower() + SPACES_AROUND.sub(r"\1", text[name.end() :])


def find_python(version: str | None) -> str:
    """The interpreter for `pythonVersion`: kestractl's own when it matches (or none is asked), else
    `pythonX.Y` on PATH. Nothing is downloaded."""
    wanted = version.strip().split(".") if version else []
    if platform.python_version().split(".")[: len(wanted)] == wanted:
        return sys.executable
    found = shutil.which("python" + ".".join(wanted[:2]))
    if found is None:
        raise TaskError(f"pythonVersion: Python {version} is not installed on this machine")
    return found


def environment_path(root: Path, python: str, requirements: list[str]) -> Path:
    """The folder of the environment for these packages on this interpreter (its real file: venvs share)."""
    identity = [os.path.realpath(python), platform.python_version() if python == sys.executable else "", requirements]
    return root / hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def prepare(ctx: RunContext, path: Path, python: str, requirements: list[str], manager: str) -> Path:
    """The ready environment at `path`, built now if needed; logs one line saying which."""
    created = _build_once(path, lambda: _build(ctx, path, python, requirements, manager))
    what = ", ".join(requirements) or "no packages"
    ctx.log("INFO", f"Python environment ({what}) {'created' if created else 'reused'}: {path}")
    return path


def _build_once(path: Path, build: Callable[[], None]) -> bool:
    if (path / READY).exists():
        return False
    with _locked(path):
        if (path / READY).exists():
            return False
        shutil.rmtree(path, ignore_errors=True)
        try:
            build()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        (path / READY).touch()
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside `path`, held across processes until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(ctx: RunContext, path: Path, python: str, requirements: list[str], manager: str) -> None:
    uv = _uv() if manager.upper() == "UV" else None
    if uv is None and manager.upper() == "UV":
        ctx.log("WARN", "UV not available, falling back to PIP")
    venv_python = str(path / "bin" / "python")
    if uv is not None:
        steps = [[uv, "venv", "--quiet", "--python", python, str(path)]]
        install = [uv, "pip", "install", "--quiet", "--python", venv_python]
    else:
        steps = [[python, "-m", "venv", str(path)]]
        install = [venv_python, "-m", "pip", "install", "--quiet"]
    for argv in steps + ([install + requirements] if requirements else []):
        _check(ctx, argv, requirements)


def _uv() -> str | None:
    """The `uv` binary of the `uv` package, else one on PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _check(ctx: RunContext, argv: list[str], requirements: list[str]) -> None:
    """Run one build step; a kill or timeout of the task stops it too (the half-built folder is removed)."""
    env = {**os.environ, **INSTALL_ENV}
    with subprocess.Popen(argv, stdout=PIPE, stderr=PIPE, text=True, env=env, start_new_session=True) as proc:
        output = _communicate(ctx, proc)
    if proc.returncode != 0:
        reason = _reason(output[1] or output[0], requirements)
        raise TaskError(f"Failed to install Python dependencies [{', '.join(requirements)}]: {reason}")


def _communicate(ctx: RunContext, proc: subprocess.Popen[str]) -> tuple[str, str]:
    while True:
        if ctx.stop.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise Killed()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.communicate(timeout=POLL_SECONDS)


def _reason(output: str, requirements: list[str]) -> str:
    """The installer's line naming one of the packages, else its last line, without its `error:` prefix."""
    lines = [line.strip() for line in output.splitlines() if line.strip()] or ["no output"]
    names = [match.group() for match in map(NAME.match, requirements) if match]
    naming = [line for line in lines if any(name in line.lower() for name in names)]
    return PREFIX.sub("", naming[0] if naming else lines[-1])
