"""PostgreSQL restarted under an executor and two workers (separate processes, the queue as rows) while executions
run: every component rides the outage out by itself, every execution ends SUCCESS, none stays RUNNING, and no task
run is decided twice. The cluster is the test's own (a restart would end every other test's sessions)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestractl.model import State
from kestractl.store import open_store
from tests.distributed.cluster import LIVENESS, Cluster, create_executions, wait_for
from tests.services.postgres import Cluster as PostgresCluster
from tests.services.postgres import own_cluster

FLOW = """
id: steady
namespace: queue.test
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 0.1
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }}"
"""


@pytest.fixture
def database() -> Iterator[tuple[PostgresCluster, str]]:
    with own_cluster() as (own, server):
        yield own, server.url


def test_a_postgresql_restart_under_an_executor_and_workers(
    tmp_path: Path, database: tuple[PostgresCluster, str]
) -> None:
    postgres, url = database
    store = open_store(url)
    store.save_flow("queue.test", "steady", FLOW)
    components = Cluster(tmp_path, url)
    try:
        components.start("executor", "executor", *LIVENESS[:2], "--heartbeat-timeout", "10")
        for name in ("w1", "w2"):
            components.start(name, "worker", "--threads", "8", *LIVENESS[:2], "--heartbeat-timeout", "10")
        ids = create_executions(store, tmp_path, "queue.test", "steady", 300)
        wait_for(lambda: _ended(url, ids) >= 50, "the first executions to end", 60)
        postgres.restart(down_seconds=2)
        wait_for(lambda: _ended(url, ids) == len(ids), "every execution to end after the restart", 120)
        assert all(p.poll() is None for p in components.processes.values()), "every component rode it out"
    finally:
        components.stop_all()
    store = open_store(url)
    executions = store.load_executions(ids)
    assert Counter(e.state.current for e in executions) == {State.SUCCESS: 300}
    for execution in executions:
        assert [r.task_id for r in execution.task_runs] == ["first", "nap", "last"]
        assert execution.task_runs[-1].outputs == {"value": execution.id}
        assert all(a.state.current.is_terminated() for r in execution.task_runs for a in r.attempts)
    store.close()


def _ended(url: str, ids: list[str]) -> int:
    """Read on a connection of its own each time (the restart ends every session)."""
    for _ in range(50):
        try:
            store = open_store(url)
            try:
                return sum(1 for e in store.load_executions(ids) if e.state.current.is_terminated())
            finally:
                store.close()
        except Exception:  # noqa: BLE001 - the database is restarting: ask again
            time.sleep(0.2)
    raise AssertionError("the database did not come back")
