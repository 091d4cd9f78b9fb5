"""UI scenario: opening one big execution's page (issue 14: 5,000 task runs and 200,000 log lines first render
in <= 1 s).

The store is built directly through the Store API (no engine run): one ended execution of a ForEach whose
5,000 task runs each have an attempt and outputs, and 200,000 log lines. A real `kestractl server standalone`
then serves it. Timed, each on a fresh connection, median of several calls: the overview tab (header and the
first page of the task-run tree), the Gantt tab, and the logs tab plus its first window of lines (what the
browser fetches before it can draw any line). The baseline, measured in the same run, is the API's
`GET /api/v1/executions/{id}` of the same execution: the JSON the page would otherwise have to start from.
"""

from __future__ import annotations

import http.client
import time
from datetime import datetime, timedelta

from benchmarks import server as scenario4
from benchmarks.harness import Figure, median, scratch
from kestractl.config import Home
from kestractl.model import Attempt, Execution, LogEntry, State, StateInfo, TaskRun, new_id, utcnow
from kestractl.store import open_store

NS, FLOW = "bench.ui", "big"
TARGET_MS = 1000.0


def build(home: Home, runs: int, lines: int) -> str:
    """The big execution, written straight into the home's store; returns its id."""
    start = utcnow() - timedelta(hours=1)
    execution = Execution(new_id(), NS, FLOW, 1, state=StateInfo.new(State.CREATED, start))
    parent = TaskRun(new_id(), execution.id, "each", state=StateInfo.new(State.CREATED, start))
    execution.task_runs = [parent, *(_child(execution.id, parent.id, i, start) for i in range(runs - 1))]
    end = start + timedelta(milliseconds=10 * runs + 10)
    for info in (execution.state, parent.state):
        info.moved(State.RUNNING, start)
        info.moved(State.SUCCESS, end)
    store = open_store(home.db_path)
    with store.transaction():
        store.save_execution(execution)
        store.save_task_runs(execution.id, enumerate(execution.task_runs))
    for first in range(0, lines, 50_000):
        batch = [_line(execution, i, start) for i in range(first, min(lines, first + 50_000))]
        with store.transaction():
            store.append_logs(batch)
    store.close()
    return execution.id


def _child(execution_id: str, parent_id: str, index: int, start: datetime) -> TaskRun:
    begin = start + timedelta(milliseconds=10 * index)
    state = StateInfo.new(State.CREATED, begin)
    state.moved(State.RUNNING, begin)
    state.moved(State.SUCCESS, begin + timedelta(milliseconds=8))
    attempt = Attempt(
        StateInfo(State.SUCCESS, [(State.RUNNING, begin), (State.SUCCESS, begin + timedelta(milliseconds=8))])
    )
    outputs = {"value": f"item {index}", "size": index}
    return TaskRun(new_id(), execution_id, "work", parent_id, f"item-{index}", None, state, [attempt], outputs)


def _line(execution: Execution, index: int, start: datetime) -> LogEntry:
    at = start + timedelta(milliseconds=index // 20)
    return LogEntry(execution.id, NS, FLOW, "INFO", f"processing record {index} of the batch", at, "work")


def _seconds(host: str, port: int, paths: list[str]) -> float:
    """Wall seconds of GETting `paths` one after the other, each on a fresh connection (as a browser's first
    visit), bodies read in full."""
    started = time.perf_counter()
    for path in paths:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path} -> {response.status}")
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    runs, lines, repeat = (500, 20_000, 3) if quick else (5_000, 200_000, 9)
    with scratch("ui-execution") as folder:
        flows = folder / "flows"
        flows.mkdir()
        execution_id = build(Home(folder / "home").ensure(), runs, lines)
        with scenario4.standalone(folder, flows) as server:
            return _measure(server, execution_id, repeat, f"{runs:,} task runs, {lines:,} log lines")


def _measure(server: scenario4.ServerProcess, execution_id: str, repeat: int, size: str) -> list[Figure]:
    page = f"/ui/executions/{NS}/{FLOW}/{execution_id}"
    window = f"/ui/fragments/execution-logs/{execution_id}?offset=0&limit=500"
    cases = {
        "overview tab": [page],
        "gantt tab": [page + "/gantt"],
        "logs tab + first window": [page + "/logs", window],
        "baseline": [f"/api/v1/executions/{execution_id}"],
    }
    _seconds(server.host, server.port, [p for paths in cases.values() for p in paths])  # warm-up
    rounds = [{name: _seconds(server.host, server.port, paths) for name, paths in cases.items()} for _ in range(repeat)]
    ms = {name: median([r[name] for r in rounds]) * 1000 for name in cases}
    return [
        Figure(
            "ui_execution",
            f"{name} ({size})",
            ms[name],
            "ms",
            baseline=ms["baseline"],
            baseline_name="GET /api/v1/executions/{id}",
            target=f"<= {TARGET_MS:.0f} ms",
            met=ms[name] <= TARGET_MS,
        )
        for name in cases
        if name != "baseline"
    ]
