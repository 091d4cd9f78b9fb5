"""Scenario 3, the peer side by side: kestractl against Prefect 3 on the same 40 sequential tasks, and python
`Script` tasks against starting the same scripts with `python` by hand.

Prefect pins versions that conflict with ours, so it never enters the project's venv: it gets a venv of its own
under ~/.cache/kestractl-bench/prefect, built on first use (pip, from PyPI) and reused afterwards, and runs in
its ephemeral local mode (no API URL: Prefect starts its own local server) as a subprocess that prints its
timings as JSON. `--quick` never installs or runs Prefect, so CI stays offline and fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.harness import KESTRACTL, Figure, cli_env, command_seconds, kestractl, median, samples_of, scratch

TASKS = 40
PEER_TARGET = "≥ 5× faster than Prefect 3"
SCRIPT_TARGET = "≤ 1.5× direct loop"
PREFECT_SPEC = "prefect>=3,<4"
PREFECT_VENV = Path.home() / ".cache" / "kestractl-bench" / "prefect"
PREFECT_TIMEOUT = 900.0
RETURN = '  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{{{ flow.id }}}}-{i}"\n'
SCRIPT_TASK = (
    "  - id: s{i}\n    type: io.kestra.plugin.scripts.python.Script\n"
    "    taskRunner:\n      type: io.kestra.plugin.core.runner.Process\n    script: |\n{script}"
)
FIB = "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\nprint(fib(20))\n"
# The Prefect side: the same 40 tasks, each returning a small string. argv[1] = timed runs after the warm-up.
PREFECT_FLOW = """
import json, sys, time
started = time.perf_counter()
import prefect
from prefect import flow, task
imported = time.perf_counter()

@task
def step(i: int) -> str:
    return f"forty-{i}"

@flow
def forty() -> list[str]:
    return [step(i) for i in range(40)]

def timed() -> float:
    began = time.perf_counter()
    assert len(forty()) == 40
    return time.perf_counter() - began

first = timed()
runs = [timed() for _ in range(int(sys.argv[1]))]
print(json.dumps({"version": prefect.__version__, "import": imported - started, "first": first, "runs": runs}))
"""


class PeerUnavailable(Exception):
    """Prefect could not be installed or run: the figure says why instead of carrying a number."""


def flow_of(flow_id: str, task: str, count: int, **extra: str) -> str:
    return f"id: {flow_id}\nnamespace: bench\ntasks:\n" + "".join(task.format(i=i, **extra) for i in range(count))


def indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" if line else "\n" for line in text.splitlines())


@contextmanager
def engine(home: Path, flows: dict[str, str]) -> Iterator[Callable[[str], None]]:
    """An in-process engine on `home` with `flows` saved; yields `execute(flow_id)` (one run to SUCCESS)."""
    from kestractl.engine.runner import Runner
    from kestractl.storage import LocalStorage
    from kestractl.store import open_store

    store = open_store(home / "kestractl.db")
    for flow_id, source in flows.items():
        store.save_flow("bench", flow_id, source)
    runner = Runner(store, LocalStorage(home / "storage"))

    def execute(flow_id: str) -> None:
        finished = runner.run(runner.create_execution(runner.flows.get("bench", flow_id)).id)
        assert finished.state.current.value == "SUCCESS", finished.state.current

    try:
        yield execute
    finally:
        runner.close()
        store.close()


def kestractl_figures(folder: Path, quick: bool) -> tuple[float, float]:
    """Median seconds of the 40-Return flow in-process (after a warm-up) and as a whole `kestractl execute`."""
    source = flow_of("forty", RETURN, TASKS)
    with engine(folder / "engine", {"forty": source}) as execute:
        execute("forty")
        in_process = median(samples_of(lambda: execute("forty"), 5 if quick else 21))
    home = folder / "cli"
    (folder / "forty.yml").write_text(source)
    kestractl(home, "flow", "deploy", str(folder / "forty.yml"))
    whole = command_seconds([KESTRACTL, "execute", "bench", "forty"], 2 if quick else 7, cli_env(home))
    return in_process, whole


def prefect_python() -> Path:
    """The Prefect venv's interpreter, building the venv first if it is missing or was left half-built."""
    python, done = PREFECT_VENV / "bin" / "python", PREFECT_VENV / ".installed"
    if done.exists() and python.exists():
        return python
    shutil.rmtree(PREFECT_VENV, ignore_errors=True)
    print(f"# peer: installing {PREFECT_SPEC} into {PREFECT_VENV} (first run only)", file=sys.stderr, flush=True)
    run_or_explain([sys.executable, "-m", "venv", str(PREFECT_VENV)], dict(os.environ), "creating Prefect's venv")
    pip = [str(python), "-m", "pip", "install", "-q", PREFECT_SPEC]
    run_or_explain(pip, dict(os.environ), f"pip install '{PREFECT_SPEC}'")
    done.write_text(PREFECT_SPEC + "\n")
    return python


def run_or_explain(command: list[str], env: dict[str, str], doing: str) -> str:
    """stdout of `command`; a failure or a timeout becomes `PeerUnavailable` with stderr's last line."""
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=PREFECT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PeerUnavailable(f"{doing}: {err}") from err
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PeerUnavailable(f"{doing} failed ({result.returncode}): {last[:200]}")
    return result.stdout


def prefect_run(python: Path, home: Path, runs: int) -> tuple[dict[str, Any], float]:
    """One Prefect process in ephemeral mode on a fresh PREFECT_HOME: its JSON timings and its wall seconds."""
    shutil.rmtree(home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    started = time.perf_counter()
    stdout = run_or_explain([str(python), "-c", PREFECT_FLOW, str(runs)], env, "running the Prefect flow")
    wall = time.perf_counter() - started
    try:
        return json.loads(stdout.strip().splitlines()[-1]), wall
    except (ValueError, IndexError) as err:
        raise PeerUnavailable(f"the Prefect flow printed no timings: {stdout[-200:]!r}") from err


def prefect_figures(folder: Path) -> tuple[list[float], float, str]:
    """Prefect's flow runs in one process (after a warm-up), its median whole process running it once, version."""
    python = prefect_python()
    timings, _ = prefect_run(python, folder / "prefect", 9)
    wholes = [prefect_run(python, folder / "prefect", 0)[1] for _ in range(3)]
    return timings["runs"], median(wholes), str(timings["version"])


def peer_figures(folder: Path, quick: bool) -> list[Figure]:
    """kestractl's 40-Return flow, in-process and whole process, each against Prefect 3 in the same run."""
    in_process, whole = kestractl_figures(folder, quick)
    names = (f"{TASKS} Return tasks, in-process Runner, per flow", f"{TASKS} Return tasks, `kestractl execute`")
    values = (in_process, whole)
    figures = [Figure("peer", n, v * 1000, "ms", target=PEER_TARGET) for n, v in zip(names, values, strict=True)]
    if quick:
        for figure in figures:
            figure.note = "Prefect skipped in --quick"
        return figures
    try:
        prefect_runs, prefect_whole, version = prefect_figures(folder)
    except PeerUnavailable as err:
        for figure in figures:
            figure.note = f"no Prefect figure: {err}"
        return figures
    baselines = (
        (median(prefect_runs), f"Prefect {version} flow run, warm"),
        (prefect_whole, f"Prefect {version} process, 1 flow run"),
    )
    for figure, (baseline, name) in zip(figures, baselines, strict=True):
        figure.baseline, figure.baseline_name = baseline * 1000, name
        figure.met = figure.value * 5 <= figure.baseline
        figure.note = f"{figure.baseline / figure.value:.0f}× faster than Prefect"
    figures[0].note += f"; Prefect's fastest warm run {min(prefect_runs) * 1000:,.0f} ms"
    return figures


def script_figure(folder: Path, quick: bool) -> Figure:
    """`count` python Script tasks in the in-process engine against a shell loop running the same files."""
    from kestractl.tasks.scripts import python_command, python_env

    count, repeat = (10, 3) if quick else (TASKS, 7)
    files = [folder / "direct" / f"s{i:02}.py" for i in range(count)]
    files[0].parent.mkdir()
    for file in files:
        file.write_text(FIB)
    loop = ["/bin/sh", "-c", f'set -e; for f in "$@"; do {python_command()} "$f"; done', "sh", *map(str, files)]
    env = {**os.environ, **python_env()}

    def direct() -> None:
        result = subprocess.run(loop, env=env, cwd=files[0].parent, capture_output=True, text=True, check=True)
        assert result.stdout.split() == ["6765"] * count, result.stdout

    flow = flow_of("scripts", SCRIPT_TASK, count, script=indented(FIB, 6))
    engine_samples, direct_samples = [], []
    with engine(folder / "scripts", {"scripts": flow}) as execute:
        execute("scripts")
        direct()
        for _ in range(repeat):  # interleaved, so drift on the shared machine hits both sides alike
            engine_samples += samples_of(lambda: execute("scripts"), 1)
            direct_samples += samples_of(direct, 1)
    value, baseline = median(engine_samples), median(direct_samples)
    return Figure(
        "peer", f"{count} python Script tasks (fib(20)), in-process Runner", value, "s", baseline,
        f"sh loop: {python_command()} FILE ×{count}", SCRIPT_TARGET, value <= 1.5 * baseline,
    )  # fmt: skip


def run(quick: bool) -> list[Figure]:
    with scratch("peer") as folder:
        return [*peer_figures(folder, quick), script_figure(folder, quick)]
