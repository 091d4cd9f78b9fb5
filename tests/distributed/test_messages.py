"""Messages between executor processes on one PostgreSQL database: a flow's concurrency limit holds across two
executors, each queueing the executions it owns, and the queued ones start whichever executor frees a slot, even
after the executor that queued them was killed (SIGKILL)."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from kestractl.model import Execution, State
from kestractl.store import Store, open_store
from tests.distributed.cluster import Cluster, create_executions, wait_for
from tests.services.postgres import Postgres
from tests.services.stores import fresh_database, postgres  # noqa: F401  (fixtures)

COUNT = 8
# A stopped executor (SIGSTOP) must not be judged dead while the other claims, however loaded the machine (CI).
LIVENESS = ["--heartbeat-interval", "0.3", "--heartbeat-timeout", "20", "--grace", "1"]
LIMITED = """
id: limited
namespace: messages.test
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.3S
"""


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    opened.save_flow("messages.test", "limited", LIMITED)
    yield opened
    opened.close()


@pytest.fixture
def cluster(tmp_path: Path, database: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, database)
    yield started
    started.stop_all()


def _running_span(execution: Execution) -> tuple[datetime, datetime]:
    started = next(date for state, date in execution.state.histories if state == State.RUNNING)
    return started, execution.state.histories[-1][1]


def test_a_concurrency_limit_holds_across_executors_one_killed(cluster: Cluster, store: Store) -> None:
    for name in ("a", "b"):
        cluster.start(name, "executor", *LIVENESS)
    cluster.start("w1", "worker", "--threads", "4", *LIVENESS)
    wait_for(lambda: len(store.service_instances()) == 3, "the components to register", 30)
    a, b = (_executor_id(store, cluster, name) for name in ("a", "b"))
    cluster.processes["b"].send_signal(signal.SIGSTOP)  # `a` claims the first half …
    first = create_executions(store, cluster.home, "messages.test", "limited", COUNT // 2)
    wait_for(lambda: set(_owners(store, first)) == {a}, "`a` to claim the first half", 30)
    cluster.processes["b"].send_signal(signal.SIGCONT)
    cluster.processes["a"].send_signal(signal.SIGSTOP)  # … `b` the second, queued: `a` holds the only slot
    second = create_executions(store, cluster.home, "messages.test", "limited", COUNT // 2)
    wait_for(lambda: all(store.execution_state(i) == State.QUEUED for i in second), "`b` to queue the rest", 30)
    cluster.processes["a"].send_signal(signal.SIGCONT)
    assert set(_owners(store, second)) == {b}
    ids = first + second
    wait_for(lambda: _ended(store, ids) > COUNT // 2, "`a` to start what `b` queued", 60)
    cluster.kill("b")  # what `b` queued is started by `a`, before and after `b` died
    wait_for(lambda: _ended(store, ids) == COUNT, "every execution to end", 90)
    executions = store.load_executions(ids)
    assert [e.state.current for e in executions] == [State.SUCCESS] * COUNT
    spans = sorted(_running_span(e) for e in executions)
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans)), spans  # one at a time
    assert set(_owners(store, second)) == {a}


def _owners(store: Store, ids: list[str]) -> list[str]:
    sql = f"SELECT owner FROM executions WHERE id IN ({','.join('?' * len(ids))})"
    return [r[0] for r in store.conn.execute(sql, ids)]  # type: ignore[attr-defined]


def _executor_id(store: Store, cluster: Cluster, name: str) -> str:
    pid = cluster.processes[name].pid
    return next(i.id for i in store.service_instances() if i.pid == pid and i.type.value == "EXECUTOR")


def _ended(store: Store, ids: list[str]) -> int:
    return sum(1 for i in ids if store.execution_state(i).is_terminated())
