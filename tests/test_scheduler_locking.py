"""Schedulers lock triggers (Kestra's scheduler locking): a due trigger row is claimed in the transaction that
fires it, so a fire date fires once however many schedulers share the database, whatever each one remembers.
On both stores (SQLite: BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE SKIP LOCKED), and with two real
`kestractl server scheduler` processes over one PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kestractl.engine.runner import Runner
from kestractl.model import Execution, State, parse_iso
from kestractl.plugin import PollContext, PollingTrigger, register
from kestractl.server.scheduler import Scheduler
from kestractl.storage import LocalStorage
from kestractl.store import Store, TriggerState, open_store
from tests.services.postgres import Postgres
from tests.services.stores import fresh_database, postgres, store_url  # noqa: F401  (fixtures)

# How long the two scheduler processes run (the figure).
SECONDS = 30
T0 = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)
KEY = ("tests", "sched", "hourly")
POLL_KEY = ("tests", "sched", "poll")
FLOW = """id: sched
namespace: tests
tasks:
  - id: d
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
"""
EVERY_SECOND = """id: every-second
namespace: tests
tasks:
  - id: d
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
triggers:
  - id: second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
"""


def test_a_claimed_trigger_waits_for_its_holder_and_then_shows_the_new_date(store_url: str) -> None:  # noqa: F811
    """Two connections race for one row: while the first holds it, PostgreSQL passes over it (None at once) and
    SQLite waits for the write lock; either way the second sees the date the first stored, never the old one."""
    first, second = open_store(store_url), open_store(store_url)
    with first.transaction():
        first.save_trigger_state(TriggerState(*KEY, "sig", T0))
    seen: list[TriggerState | None] = []
    racer = threading.Thread(target=lambda: seen.append(_claim(second)))
    with first.transaction():
        held = first.claim_trigger(*KEY, _unexpected)
        assert held is not None and held.next_date == T0
        racer.start()
        racer.join(1.0)
        held.next_date = T0 + timedelta(hours=1)
        first.save_trigger_state(held)
    racer.join(10)
    if first.dialect.name == "postgresql":
        assert seen == [None]  # skipped, not waited for
    else:
        assert [s.next_date if s else None for s in seen] == [T0 + timedelta(hours=1)]
    claimed = _claim(second)
    assert claimed is not None and claimed.next_date == T0 + timedelta(hours=1)


def _claim(store: Store) -> TriggerState | None:
    with store.transaction():
        return store.claim_trigger(*KEY, _unexpected)


def _unexpected() -> TriggerState:
    raise AssertionError("the row exists: nothing new is written")


def test_two_schedulers_fire_a_date_once_whatever_their_caches_say(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    """Both remember 11:00 as the next date; the one that ticks second reads the row (12:00) and fires nothing."""
    first, second = (_scheduler(tmp_path, store_url) for _ in range(2))
    first.runner.store.save_flow("tests", "sched", FLOW)
    assert first.tick(T0) == [] and second.tick(T0) == []
    assert len(first.tick(T0 + timedelta(hours=1, seconds=1))) == 1
    assert second.tick(T0 + timedelta(hours=1, seconds=1)) == []
    assert len(second.tick(T0 + timedelta(hours=2, seconds=1))) == 1
    assert first.tick(T0 + timedelta(hours=2, seconds=2)) == []
    assert first.runner.store.count_executions() == 2


def test_a_changed_schedule_is_started_afresh_once(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    """A new revision with a backfill: the first scheduler to see it fires the backfill; the other, still holding
    the old revision's date, takes the stored row instead of starting the backfill over (no second fire)."""
    first, second = (_scheduler(tmp_path, store_url) for _ in range(2))
    store = first.runner.store
    store.save_flow("tests", "sched", FLOW)
    assert first.tick(T0) == [] and second.tick(T0) == []
    backfill = '    backfill:\n      start: "2024-05-06T07:00:00Z"\n'
    store.save_flow("tests", "sched", FLOW.replace("0 * * * *", "30 * * * *") + backfill)
    backfilled = first.tick(T0 + timedelta(minutes=1))
    assert len(backfilled) == 3  # 07:30, 08:30, 09:30
    assert second.tick(T0 + timedelta(minutes=2)) == []
    assert store.count_executions() == 3


class Always(PollingTrigger):
    """A polling trigger whose condition always holds: each poll starts an execution."""

    type_name = "io.kestra.plugin.test.AlwaysThere"
    outputs = {"seen": "Always true."}

    def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        return {"seen": True}


register(Always)
POLLED = """id: sched
namespace: tests
tasks:
  - id: d
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.seen }}"
triggers:
  - id: poll
    type: io.kestra.plugin.test.AlwaysThere
    interval: PT1H
"""


def test_polling_triggers_poll_once_per_interval_and_wait_for_their_execution(
    tmp_path: Path,
    store_url: str,  # noqa: F811
) -> None:
    """The poll date is claimed like a schedule's: the scheduler whose cache still says due does not poll again.
    With the executions run elsewhere, the trigger waits for its execution's end as the store shows it."""
    first, second = (_scheduler(tmp_path, store_url) for _ in range(2))
    store = first.runner.store
    store.save_flow("tests", "sched", POLLED)
    [polled] = _polled(first, T0)
    assert _polled(second, T0) == []  # the row says T0 + 1 h
    later = T0 + timedelta(hours=1, seconds=1)
    assert _polled(first, later) == []  # its execution has not ended
    store.set_execution_state(polled.id, State.SUCCESS)
    assert len(_polled(first, later)) == 1
    assert _polled(second, later + timedelta(seconds=1)) == []  # remembered T0 + 1 h; the row says T0 + 2 h
    assert store.count_executions() == 2


def test_a_polling_triggers_lock_on_its_execution_survives_a_restart(
    tmp_path: Path,
    store_url: str,  # noqa: F811
) -> None:
    """The trigger's running execution is on its row (Kestra's locked trigger): a scheduler started afresh, or
    another one, does not poll while it runs; its end unlocks it, and a `stopAfter` state stops it."""
    first = _scheduler(tmp_path, store_url)
    store = first.runner.store
    store.save_flow("tests", "sched", POLLED.replace("interval: PT1H", "interval: PT1H\n    stopAfter: [FAILED]"))
    [polled] = _polled(first, T0)
    assert store.trigger_execution(*POLL_KEY) == polled.id
    later = T0 + timedelta(hours=1, seconds=1)
    assert _polled(_scheduler(tmp_path, store_url), later) == []  # restarted: still locked by the row
    store.set_execution_state(polled.id, State.SUCCESS)
    [again] = _polled(_scheduler(tmp_path, store_url), later)
    store.set_execution_state(again.id, State.FAILED)
    assert _polled(_scheduler(tmp_path, store_url), later + timedelta(hours=2)) == []  # stopped after FAILED
    assert store.count_executions() == 2 and store.trigger_execution(*POLL_KEY) is None


def _polled(scheduler: Scheduler, now: datetime) -> list[Execution]:
    """The executions the polls of one tick at `now` started (they run on threads of their own)."""
    started = scheduler.tick(now)
    deadline = time.monotonic() + 5
    while scheduler.polls._inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    return started + scheduler.tick(now)


def _scheduler(tmp_path: Path, database: str) -> Scheduler:
    return Scheduler(Runner(open_store(database), LocalStorage(tmp_path / "storage")), executes=False)


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


def test_two_scheduler_processes_fire_each_second_once(tmp_path: Path, database: str) -> None:
    """Two `kestractl server scheduler` processes, one PostgreSQL database, a per-second cron for 30 s: every
    second between the first and the last fire has exactly one execution, left CREATED for an executor."""
    flow = tmp_path / "every-second.yaml"
    flow.write_text(EVERY_SECOND)
    base = [sys.executable, "-m", "kestractl", "--home", str(tmp_path / "home"), "--database", database]
    subprocess.run([*base, "flow", "deploy", str(flow)], check=True, capture_output=True, timeout=60)
    logs = [tmp_path / f"scheduler-{n}.log" for n in range(2)]
    schedulers = [_start(base, log) for log in logs]
    try:
        time.sleep(SECONDS)
        listed = subprocess.run([*base, "server", "list", "--json"], capture_output=True, timeout=60, check=True)
        services = [(s["type"], s["state"], s["server"]["type"]) for s in json.loads(listed.stdout)]
        assert services == [("SCHEDULER", "RUNNING", "SCHEDULER")] * 2  # both heartbeat, as Kestra's components
    finally:
        for process in schedulers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in schedulers]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    dates = _fire_dates(database)
    created = [log.read_text().count("created by") for log in logs]
    assert sum(created) == len(dates) and min(created) > 0, created  # both schedulers fired some dates
    _assert_each_second_once(dates)


def _start(base: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*base, "server", "scheduler"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def _fire_dates(database: str) -> list[datetime]:
    store = open_store(database)
    executions = store.load_executions(store.find_execution_ids(limit=10_000))
    assert {e.state.current.value for e in executions} == {"CREATED"}
    return [parse_iso(e.trigger["variables"]["date"]) or T0 for e in executions if e.trigger]


def _assert_each_second_once(dates: list[datetime]) -> None:
    twice = [date for date, count in Counter(dates).items() if count > 1]
    assert twice == [], f"fired more than once: {twice}"
    first, last = min(dates), max(dates)
    expected = [first + timedelta(seconds=n) for n in range(int((last - first).total_seconds()) + 1)]
    assert sorted(dates) == expected, "a second is missing"
    assert len(dates) >= SECONDS - 5, f"{len(dates)} fires in {SECONDS} s"
