"""Scenario 6, fan-out: ForEachItem over a 1,000,000-line file into 100 batches, and 10,000 child executions.

Both run as a user runs them, `kestractl execute … --json` in its own process, whose peak RSS is GNU time's
(`harness.peak_run`). The split is the `<id>_split` task run (RUNNING to SUCCESS) against `split -l` on the same
file.
The 10,000 children are what a Kestra user writes for one execution per item: ForEachItem with
`batch: rows: 1`, each child a flow of one Return task reading its item; its baseline is the persistence
such a child needs at the least, done with raw sqlite3 (an execution row and a task-run row created, then
each moved to RUNNING and SUCCESS: five commits).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    KESTRACTL,
    Figure,
    at_most,
    cli_env,
    kestractl,
    median,
    peak_run,
    samples_of,
    scratch,
)

SCENARIO = "fanout"
RSS_LIMIT_MB = 150
MANY_RSS_LIMIT_MB = 300
# 10,000 children, each created and finished by a whole `execute`, against the raw floor of their five commits.
RAW_RATIO = 4
# One `kestractl execute --json`: the execution, its wall seconds, the process's peak RSS in MB.
Run = tuple[dict[str, Any], float, float]
CHILD = """id: batch
namespace: bench.fanout
inputs:
  - id: items
    type: STRING
tasks:
  - id: size
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileSize(inputs.items) }}"
"""
ITEM = """id: item
namespace: bench.fanout
inputs:
  - id: items
    type: STRING
tasks:
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
"""
PARENT = """id: {id}
namespace: bench.fanout
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ inputs.file }}}}"
    batch:
      rows: {rows}
    namespace: bench.fanout
    flowId: {child}
    inputs:
      items: "{{{{ taskrun.items }}}}"
"""


def run(quick: bool) -> list[Figure]:
    lines, children, repeat = (100_000, 1_000, 1) if quick else (1_000_000, 10_000, 3)
    many = 2_000 if quick else 100_000
    with scratch(SCENARIO) as root:
        kestractl(root / "home", "flow", "deploy", *_flow_files(root, lines // 100))
        figures = [*_split_figures(root, lines, repeat), *_children_figures(root, children, repeat)]
        return [*figures, *_many_children_figures(root, many)]


def _flow_files(root: Path, rows: int) -> list[str]:
    sources = {
        "batch.yaml": CHILD,
        "item.yaml": ITEM,
        "split.yaml": PARENT.format(id="split", rows=rows, child="batch"),
        "each.yaml": PARENT.format(id="each", rows=1, child="item"),
    }
    for name, source in sources.items():
        (root / name).write_text(source)
    return [str(root / name) for name in sources]


def _items(path: Path, count: int) -> Path:
    with path.open("w") as out:
        out.writelines(f"{i:>20}\n" for i in range(1, count + 1))
    return path


def _split_figures(root: Path, lines: int, repeat: int) -> list[Figure]:
    data = _items(root / "lines.txt", lines)
    rows = lines // 100
    # Alternated, so that both see the same page cache and the same neighbours on the machine.
    baselines: list[float] = []
    runs: list[Run] = []
    for _ in range(repeat):
        baselines.append(_split_l(root, data, rows))
        runs.append(_execute(root, "split", data))
    _check(runs, 100)
    split_s = median([_task_seconds(execution, "each_split") for execution, _, _ in runs])
    total = median([seconds for _, seconds, _ in runs])
    peak = max(peak for _, _, peak in runs)
    baseline = median(baselines)
    name = f"ForEachItem {lines:,} lines → 100 batches"
    return [
        Figure(
            SCENARIO,
            f"{name}: split",
            split_s,
            "s",
            baseline,
            f"split -l {rows:,}",
            "≤ 3× split -l",
            split_s <= 3 * baseline,
        ),
        Figure(SCENARIO, f"{name}: whole execute", total, "s", note="start-up, split, 100 subflows, merge"),
        _peak_figure(name, peak, repeat),
    ]


def _peak_figure(name: str, peak: float, repeat: int) -> Figure:
    return Figure(
        SCENARIO,
        f"{name}: peak RSS",
        peak,
        "MB",
        target=f"≤ {RSS_LIMIT_MB} MB",
        met=at_most(peak, RSS_LIMIT_MB),
        note=f"highest of {repeat} `kestractl execute` processes",
    )


def _children_figures(root: Path, children: int, repeat: int) -> list[Figure]:
    data = _items(root / "children.txt", children)
    runs = [_execute(root, "each", data) for _ in range(repeat)]
    _check(runs, children)
    seconds = median([seconds for _, seconds, _ in runs])
    peak = max(peak for _, _, peak in runs)
    baseline = median(samples_of(lambda: _raw_children(root / "raw.db", children), repeat))
    name = f"{children:,} child executions (ForEachItem rows: 1)"
    return [
        Figure(
            SCENARIO,
            f"{name}: created and finished",
            seconds,
            "s",
            baseline,
            "raw sqlite3, 5 commits each",
            f"≤ {RAW_RATIO}× raw sqlite3",
            seconds <= RAW_RATIO * baseline,
            f"{children / seconds:,.0f} children/s, whole execute",
        ),
        _peak_figure(name, peak, repeat),
    ]


def _many_children_figures(root: Path, children: int) -> list[Figure]:
    """One execution with more children than the runner drives at once (they wait as rows): time and memory."""
    execution, seconds, peak = _execute(root, "each", _items(root / "many.txt", children))
    _check([(execution, seconds, peak)], children)
    name = f"{children:,} child executions (ForEachItem rows: 1)"
    return [
        Figure(SCENARIO, f"{name}: created and finished", seconds, "s", note=f"{children / seconds:,.0f} children/s"),
        Figure(
            SCENARIO,
            f"{name}: peak RSS",
            peak,
            "MB",
            target=f"≤ {MANY_RSS_LIMIT_MB} MB",
            met=at_most(peak, MANY_RSS_LIMIT_MB),
            note="children beyond the runner's window wait as CREATED rows",
        ),
    ]


def _execute(root: Path, flow_id: str, data: Path) -> Run:
    """One `kestractl execute --json`: the execution, its wall seconds and the process's peak RSS in MB."""
    out = root / "execution.json"
    command = [KESTRACTL, "execute", "bench.fanout", flow_id, "--input", f"file={data}", "--json"]
    seconds, peak = peak_run(command, cli_env(root / "home"), out)
    execution: dict[str, Any] = json.loads(out.read_text())
    return execution, seconds, peak


def _check(runs: list[Run], children: int) -> None:
    """A figure counts only if every child execution ran and succeeded."""
    for execution, _, _ in runs:
        iterations = _task_run(execution, "each_items")["outputs"]["iterations"]
        if iterations.get("SUCCESS") != children:
            raise RuntimeError(f"{children} child executions expected to succeed: {iterations}")


def _task_run(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in execution["taskRunList"] if r["taskId"] == task_id)
    return found


def _task_seconds(execution: dict[str, Any], task_id: str) -> float:
    """From RUNNING to the end of the task run, as its state history records it."""
    histories = _task_run(execution, task_id)["state"]["histories"]
    dates = {h["state"]: datetime.fromisoformat(h["date"].replace("Z", "+00:00")) for h in histories}
    return (dates[histories[-1]["state"]] - dates["RUNNING"]).total_seconds()


def _split_l(root: Path, data: Path, rows: int) -> float:
    """Wall seconds of coreutils splitting the same file into the same batches."""
    folder = root / f"split-{time.perf_counter_ns()}"
    folder.mkdir()
    started = time.perf_counter()
    subprocess.run(["split", "-l", str(rows), str(data), str(folder / "part-")], check=True)
    return time.perf_counter() - started


def _raw_children(path: Path, children: int) -> None:
    """The least a child costs in state: two rows created, then moved to RUNNING and SUCCESS, one commit each."""
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the store sets it
        conn.execute("CREATE TABLE executions (id TEXT PRIMARY KEY, state TEXT, data TEXT)")
        conn.execute("CREATE TABLE task_runs (id TEXT PRIMARY KEY, execution_id TEXT, state TEXT, data TEXT)")
        for n in range(children):
            data = json.dumps({"id": n, "inputs": {"items": f"kestra:///bench/{n:06d}.txt"}})
            for sql in (
                "INSERT INTO executions VALUES (?1, 'CREATED', ?2)",
                "INSERT INTO task_runs VALUES (?1, ?1, 'CREATED', ?2)",
                "UPDATE executions SET state='RUNNING', data=?2 WHERE id=?1",
                "UPDATE task_runs SET state='SUCCESS', data=?2 WHERE id=?1",
                "UPDATE executions SET state='SUCCESS', data=?2 WHERE id=?1",
            ):
                conn.execute(sql, (str(n), data))
