"""Scenario 5, the scheduler: one due-check tick over 1,000 Schedule triggers, and 10,000 missed fires recovered.

The flows are deployed with the CLI into a scratch home; the scheduler then runs in this process with the
time injected (`Scheduler.tick(now)`, as the server's loop calls it), so a tick is measured without its
loop's sleep and without the executions running. Baselines, in the same run: a raw SELECT of the stored
trigger rows (the floor of any scheduler that keeps its state in the database) for the tick, and one
croniter date per fire for the recovery.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter

from benchmarks.harness import Figure, at_most, kestractl, median, samples_of, scratch
from kestractl.config import Home
from kestractl.engine.runner import Runner
from kestractl.server.scheduler import Scheduler
from kestractl.storage import LocalStorage
from kestractl.store import open_store

SCENARIO = "scheduler"
# A Monday, one minute past ten: none of CRONS is due during the measured ticks.
T0 = datetime(2024, 5, 6, 10, 1, tzinfo=UTC)
# When the server of the recovery figure stopped: a week before T0.
DOWN = T0 - timedelta(days=7)
# What users schedule: every few minutes, hourly, office hours in a timezone, nightly.
CRONS = ("*/5 * * * *", "0 * * * *", "30 9-17 * * MON-FRI", "15 2 * * *")
FLOW = """id: scheduled-{index}
namespace: bench.schedules
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "fired at {{{{ trigger.date }}}}"
triggers:
  - id: schedule
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{cron}"
    timezone: {timezone}
"""
CATCH_UP = """id: every-minute
namespace: bench.recovery
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "fired at {{ trigger.date }}"
triggers:
  - id: minutely
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
    recoverMissedSchedules: ALL
"""


def run(quick: bool) -> list[Figure]:
    flows, fires, ticks = (100, 1_000, 5) if quick else (1_000, 10_000, 25)
    with scratch(SCENARIO) as root:
        return [_tick_figure(root, flows, ticks), _recovery_figure(root, fires, 1 if quick else 3)]


def _scheduler_on(home: Path) -> Scheduler:
    """The server's scheduler over `home`, without the server around it."""
    where = Home(home)
    return Scheduler(Runner(open_store(where.db_path), LocalStorage(where.storage_root), workers=1))


def _tick_figure(root: Path, flows: int, ticks: int) -> Figure:
    """Median of steady-state ticks (flows parsed and next dates known, as after the server's first tick)."""
    home, folder = root / "ticks", root / "flows"
    folder.mkdir()
    for index in range(flows):
        timezone = "Europe/Paris" if index % 2 else "UTC"
        (folder / f"f{index:05d}.yaml").write_text(FLOW.format(index=index, cron=CRONS[index % 4], timezone=timezone))
    kestractl(home, "flow", "deploy", str(folder))
    scheduler = _scheduler_on(home)
    first = samples_of(lambda: _no_fire(scheduler, T0), 1)[0]
    moments = iter([T0 + timedelta(seconds=0.25 * n) for n in range(1, ticks + 1)])
    seconds = median(samples_of(lambda: _no_fire(scheduler, next(moments)), ticks))
    with closing(sqlite3.connect(Home(home).db_path)) as conn:
        baseline = median(samples_of(lambda: _select_triggers(conn, flows), ticks))
    return Figure(
        SCENARIO,
        f"tick, {flows:,} Schedule triggers",
        seconds * 1000,
        "ms",
        baseline * 1000,
        f"SELECT {flows:,} trigger rows",
        "≤ 30 ms",
        at_most(seconds * 1000, 30),
        f"first tick (parse {flows:,} flows, store next dates) {first * 1000:,.0f} ms",
    )


def _no_fire(scheduler: Scheduler, now: datetime) -> None:
    if scheduler.tick(now):
        raise RuntimeError(f"a schedule fired at {now}, during a due-check tick: the benchmark's clock is wrong")


def _select_triggers(conn: sqlite3.Connection, expected: int) -> None:
    """What a scheduler that keeps its schedules in the database alone reads per tick."""
    rows = conn.execute("SELECT namespace, flow_id, trigger_id, signature, next_date FROM triggers").fetchall()
    if len(rows) != expected:
        raise RuntimeError(f"{len(rows)} trigger rows, expected {expected}")


def _recovery_figure(root: Path, fires: int, repeat: int) -> Figure:
    """A per-minute schedule whose server was down for `fires` minutes: ticks until every fire has an execution."""
    samples = [_recover_once(root / f"recovery-{n}", fires) for n in range(repeat)]
    baseline = median(samples_of(lambda: _cron_dates(DOWN, fires), repeat))
    seconds = median(samples)
    return Figure(
        SCENARIO,
        f"recover {fires:,} missed fires",
        seconds,
        "s",
        baseline,
        f"{fires:,} croniter dates",
        "≤ 2 s",
        at_most(seconds, 2),
        f"executions created, not run; {fires / seconds:,.0f} fires/s",
    )


def _recover_once(home: Path, fires: int) -> float:
    """Seconds of the ticks that turn `fires` missed minutes into executions, in a home of its own."""
    source = home.parent / f"{home.name}.yaml"
    source.write_text(CATCH_UP)
    kestractl(home, "flow", "deploy", str(source))
    scheduler = _scheduler_on(home)
    scheduler.tick(DOWN)  # seen once, then the server stops: the next date stays a minute after DOWN
    back = DOWN + timedelta(minutes=fires, seconds=30)
    created = 0
    started = time.perf_counter()
    while created < fires:
        found = len(scheduler.tick(back))
        if not found:
            raise RuntimeError(f"recovery stopped after {created} of {fires} executions")
        created += found
    seconds = time.perf_counter() - started
    if created != fires:
        raise RuntimeError(f"{created} executions for {fires} missed fires")
    return seconds


def _cron_dates(start: datetime, count: int) -> None:
    dates = croniter("* * * * *", start)
    for _ in range(count):
        dates.get_next(datetime)
