"""Scenario 10, the UI's lists: a store of 100,000 executions and 1,000,000 log lines (2,000 and 20,000 with
`--quick`), written straight through the Store API in bulk, once, and read by every repetition.

Timed in this process, server side (the page handler from request to HTML, no socket): the executions list (a page
of 25 filtered by state and namespace), the dashboard, and the logs search page. Each one's baseline is the API
call a script would make for the same data in the same run (`GET /api/v1/executions/search?size=25` with the same
filters, `POST /api/v1/stats/executions/daily`, `GET /api/v1/logs/search?size=100`). Target: ≤ 100 ms each.

The executions start over the last 60 days (so the 7-day default window holds about an eighth of them and the
30-day dashboard half), in 20 namespaces of 50 flows, mostly SUCCESS, some FAILED, WARNING and KILLED, the
newest few RUNNING; each has 10 log lines a second apart, mostly INFO.

Then memory and start-up: the idle server's RSS before and after every UI page has rendered once (the UI may add
≤ 15 MB), and whether `kestractl --version` and `kestractl execute` import `kestractl.ui` or jinja2's
environment for pages (they must not: the UI costs the CLI nothing).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import KESTRACTL, Figure, cli_env, median, rss_mb, scratch
from kestractl.model import Execution, LogEntry, State, StateInfo, new_id, utcnow
from kestractl.store import Store

DAYS = 60
NAMESPACES = [f"company.team{i}" for i in range(10)] + [f"company.team{i}.etl" for i in range(10)]
STATES = [(State.SUCCESS, 85), (State.FAILED, 8), (State.WARNING, 4), (State.KILLED, 3)]
LEVELS = ["INFO"] * 7 + ["DEBUG", "WARN", "ERROR"]
TARGET_MS = 100.0
BATCH = 5_000


def _execution(index: int, now: datetime, rng: random.Random) -> Execution:
    """The `index`-th execution, newest first: ended ones but the first few (still running)."""
    start = now - timedelta(seconds=index * DAYS * 86400 / _execution.total)  # type: ignore[attr-defined]
    namespace = NAMESPACES[index % len(NAMESPACES)]
    state = State.RUNNING if index < 5 else rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
    info = StateInfo.new(State.CREATED, start)
    info.moved(State.RUNNING, start + timedelta(milliseconds=5))
    if state != State.RUNNING:
        info.moved(state, start + timedelta(seconds=rng.uniform(1, 120)))
    labels = [("env", "prod" if index % 3 else "dev"), ("team", namespace.split(".")[1])]
    flow_id = f"flow{index % 50}"
    trigger = {"id": "schedule", "type": "io.kestra.plugin.core.trigger.Schedule"} if index % 4 == 0 else None
    return Execution(new_id(), namespace, flow_id, 1, labels=labels, state=info, trigger=trigger)


def _lines(execution: Execution, count: int, rng: random.Random) -> Iterator[LogEntry]:
    start = execution.state.start_date or utcnow()
    for i in range(count):
        level = rng.choice(LEVELS)
        message = f"task t{i} processed {rng.randrange(10_000)} rows" if level != "ERROR" else "connection refused"
        yield LogEntry(
            execution.id, execution.namespace, execution.flow_id, level, message, start + timedelta(seconds=i), f"t{i}"
        )


def build_store(path: Path, executions: int, lines: int, now: datetime) -> Store:
    """A store of `executions` executions with `lines` log lines in all, written in batches of one transaction."""
    store, rng = Store(path), random.Random(14)
    _execution.total = executions  # type: ignore[attr-defined]
    per = max(1, lines // executions)
    for first in range(0, executions, BATCH):
        batch = [_execution(i, now, rng) for i in range(first, min(first + BATCH, executions))]
        with store.transaction():
            store.save_executions(batch)
            store.append_logs([line for e in batch for line in _lines(e, per, rng)])
    return store


def run(quick: bool) -> list[Figure]:
    raise NotImplementedError


def _timed(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


__all__ = ["build_store", "run", "KESTRACTL", "cli_env", "median", "rss_mb", "scratch", "subprocess", "sys"]
