"""Core benchmarks, each against a baseline measured in the same run.

  - cold `kestractl --help`   vs  `python -c pass`
  - `kestractl execute dev hello-world` (a whole CLI run)  vs  cold `--help`
  - per-task cost of a 200-Log-task flow (in-process engine)  vs  200 raw sqlite3 commits (WAL)

Usage: .venv/bin/python benchmarks/bench_core.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KESTRACTL = str(Path(sys.executable).parent / "kestractl")


def timed(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    """Median wall time of a command, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def many_logs_flow(count: int) -> str:
    tasks = "".join(
        f'  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "task {i} of {{{{ flow.id }}}}"\n'
        for i in range(count)
    )
    return f"id: many-logs\nnamespace: bench\ntasks:\n{tasks}"


def engine_per_task(home: Path, count: int, repeat: int) -> float:
    """Seconds per task for an in-process run of a `count`-Log flow (median of `repeat`)."""
    from kestractl.engine.runner import Runner
    from kestractl.storage import Storage
    from kestractl.store import Store

    store, storage = Store(home / "bench.db"), Storage(home / "storage")
    store.save_flow("bench", "many-logs", many_logs_flow(count))
    runner = Runner(store, storage)
    flow = runner.flows.get("bench", "many-logs")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        execution = runner.create_execution(flow)
        finished = runner.run(execution.id)
        samples.append((time.perf_counter() - started) / count)
        assert finished.state.current.value == "SUCCESS", finished.state.current
    runner.close()
    return statistics.median(samples)


def sqlite_per_commit(path: Path, count: int, repeat: int) -> float:
    """Seconds per commit of one small row, with the store's own connection settings."""
    from kestractl.store import connect

    conn = connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, data TEXT)")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (data) VALUES (?)", (f"row {i}",))
            conn.execute("COMMIT")
        samples.append((time.perf_counter() - started) / count)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
        home = Path(tmp)
        env = dict(os.environ, KESTRACTL_HOME=str(home / "cli"), NO_COLOR="1")
        python_pass = timed([sys.executable, "-c", "pass"], env, args.repeat)
        help_time = timed([KESTRACTL, "--help"], env, args.repeat)
        subprocess.run(
            [KESTRACTL, "flow", "deploy", str(ROOT / "sample_flows")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        execute = timed([KESTRACTL, "execute", "dev", "hello-world", "--input", "greeting=hey"], env, args.repeat)
        per_task = engine_per_task(home, args.tasks, args.repeat)
        per_commit = sqlite_per_commit(home / "raw.db", args.tasks, args.repeat)
    print(
        f"cold start:  kestractl --help {help_time * 1000:7.1f} ms   python -c pass {python_pass * 1000:6.1f} ms"
        f"   ratio {help_time / python_pass:5.1f}x"
    )
    print(
        f"execute:     hello-world      {execute * 1000:7.1f} ms   kestractl --help {help_time * 1000:6.1f} ms"
        f"   ratio {execute / help_time:5.1f}x"
    )
    print(
        f"per task:    {args.tasks}-Log flow     {per_task * 1e6:7.0f} µs"
        f"   raw sqlite commit {per_commit * 1e6:5.0f} µs"
        f"   ratio {per_task / per_commit:5.1f}x"
    )


if __name__ == "__main__":
    main()
