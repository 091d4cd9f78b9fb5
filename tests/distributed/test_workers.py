"""Kestra's components as separate processes on one PostgreSQL database, the queue as rows: one executor, one
scheduler and three workers run 2,000 executions while a worker is killed (SIGKILL); two executors never decide
one execution twice."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from kestractl.model import Execution, State, TaskRun, utcnow
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServiceState
from tests.distributed.cluster import EXE, LIVENESS, Cluster, create_executions, wait_for
from tests.services.postgres import Postgres
from tests.services.stores import fresh_database, postgres  # noqa: F401  (fixtures)

COUNT = 2000
FLOW = """
id: sleepy
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
"""


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    opened.save_flow("queue.test", "sleepy", FLOW)
    yield opened
    opened.close()


@pytest.fixture
def cluster(tmp_path: Path, database: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, database)
    yield started
    started.stop_all()


def _ended(store: Store, ids: list[str]) -> int:
    return sum(1 for i in ids if store.execution_state(i).is_terminated())


def _executions(store: Store, ids: list[str]) -> list[Execution]:
    return [e for start in range(0, len(ids), 500) for e in store.load_executions(ids[start : start + 500])]


def _spans(run: TaskRun) -> list[tuple[str | None, datetime, datetime]]:
    """Each attempt's worker, start and end."""
    spans = []
    for attempt in run.attempts:
        start, end = attempt.state.start_date, attempt.state.histories[-1][1]
        assert start is not None and attempt.state.current.is_terminated()
        spans.append((attempt.worker_id, start, end))
    return spans


def test_one_executor_three_workers_one_killed(cluster: Cluster, store: Store) -> None:
    cluster.start("executor", "executor", *LIVENESS)
    cluster.start("scheduler", "scheduler")
    for name in ("w1", "w2", "w3"):
        cluster.start(name, "worker", "--threads", "8", *LIVENESS)
    ids = create_executions(store, cluster.home, "queue.test", "sleepy", COUNT)
    begun = time.monotonic()
    wait_for(lambda: _ended(store, ids[:200]) >= 100, "the first executions to end", 60)
    victim = _busiest_worker(store, cluster)
    cluster.kill(victim)
    wait_for(lambda: _ended(store, ids) == len(ids), "every execution to end", 240)
    took = time.monotonic() - begun
    executions = _executions(store, ids)
    assert Counter(e.state.current for e in executions) == {State.SUCCESS: COUNT}
    naps = [r for e in executions for r in e.task_runs if r.task_id == "nap"]
    assert len(naps) == COUNT and len({r.id for r in naps}) == COUNT
    resent = _check_attempts(naps, _worker_id(store, cluster, victim))
    warned = [e for e in executions if any(len(r.attempts) > 1 for r in e.task_runs)]
    assert len(warned) == resent and "Re-emitting WorkerTask nap" in _warnings(store, warned)
    print(f"{COUNT} executions, 3 workers (one killed): {COUNT / took:.1f} executions/s")


def _check_attempts(runs: list[TaskRun], killed: str) -> int:
    """Every run ran on a worker; those the killed worker held got a new attempt on another one, which started
    after the lost one ended (never on two workers at once). Returns how many were re-sent."""
    spans = [_spans(run) for run in runs]
    resent = [attempts for attempts in spans if len(attempts) > 1]
    assert resent, "the killed worker held task runs: they got a new attempt"
    for attempts in resent:
        assert attempts[0][0] == killed and attempts[-1][0] not in (None, killed)
        assert all(earlier[2] <= later[1] for earlier, later in itertools.pairwise(attempts))
    assert all(len(s) == 1 and s[0][0] is not None for s in spans if len(s) == 1)
    return len(resent)


def _claims(store: Store) -> Counter[str]:
    """How many task runs each worker (service instance id) holds now."""
    sql = "SELECT worker_id FROM worker_jobs WHERE worker_id IS NOT NULL"
    rows = store.conn.execute(sql)  # type: ignore[attr-defined]
    return Counter(row[0] for row in rows)


def _busiest_worker(store: Store, cluster: Cluster) -> str:
    """The name (w1, w2, w3) of the worker process holding the most task runs now."""
    wait_for(lambda: bool(_claims(store)), "a worker to hold task runs", 30)
    pids = {i.id: i.pid for i in store.service_instances()}
    names = {process.pid: name for name, process in cluster.processes.items()}
    return names[pids[_claims(store).most_common(1)[0][0]]]


def _worker_id(store: Store, cluster: Cluster, name: str) -> str:
    pid = cluster.processes[name].pid
    return next(i.id for i in store.service_instances(include_ended=True) if i.pid == pid and i.type.value == "WORKER")


def _warnings(store: Store, executions: list[Execution]) -> str:
    return "\n".join(entry.message for e in executions for entry in store.logs(e, "WARN"))


STEPS = """
id: steps
namespace: queue.test
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
  - id: label
    type: io.kestra.plugin.core.execution.Labels
    labels:
      step: labelled
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: nap
        type: io.kestra.plugin.scripts.shell.Commands
        runner: PROCESS
        commands:
          - sleep 0.05
      - id: echo
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.first.value }}"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.echo.value }}"
"""


def test_two_executors_never_decide_one_execution_twice(cluster: Cluster, store: Store) -> None:
    store.save_flow("queue.test", "steps", STEPS)
    for name in ("a", "b"):
        cluster.start(name, "executor", *LIVENESS)
    for name in ("w1", "w2"):
        cluster.start(name, "worker", "--threads", "8", *LIVENESS)
    ids = create_executions(store, cluster.home, "queue.test", "steps", 400)
    wait_for(lambda: _ended(store, ids) >= 100, "the first executions to end", 60)
    victim, survivor = _by_unfinished_executions(store, cluster, ids)
    cluster.kill(cluster.name_of(store, victim))  # the other takes its executions over once its heartbeat is late
    owned = [i for i, owner in _owners(store, ids).items() if owner == victim]
    held = [i for i in owned if not store.execution_state(i).is_terminated()]  # read before the heartbeat is late
    wait_for(lambda: _ended(store, ids) == len(ids), "every execution to end", 120)
    executions = _executions(store, ids)
    assert Counter(e.state.current for e in executions) == {State.SUCCESS: 400}
    for execution in executions:
        assert sorted(r.task_id for r in execution.task_runs) == ["both", "echo", "first", "label", "last", "nap"]
        assert execution.task_runs[-1].outputs == {"value": execution.id}
        assert ("step", "labelled") in execution.labels
        for run in execution.task_runs:
            assert all(a.state.current.is_terminated() for a in run.attempts) and len(run.attempts) <= 2
    runs = [r.id for e in executions for r in e.task_runs]
    assert len(runs) == len(set(runs))
    owners = _owners(store, ids)
    assert held and all(owners[i] == survivor for i in held)  # taken over: decided by one executor at a time


def _by_unfinished_executions(store: Store, cluster: Cluster, ids: list[str]) -> tuple[str, str]:
    """The executor (service instance id) owning the most executions still running, then the other one."""
    executors = {_owner_of(store, cluster, name) for name in ("a", "b")}
    running = [o for i, o in _owners(store, ids).items() if not store.execution_state(i).is_terminated()]
    ranked = sorted(executors, key=lambda owner: -running.count(owner))
    return ranked[0], ranked[1]


def _owner_of(store: Store, cluster: Cluster, name: str) -> str:
    pid = cluster.processes[name].pid
    return next(i.id for i in store.service_instances(include_ended=True) if i.pid == pid)


def _owners(store: Store, ids: list[str]) -> dict[str, str]:
    """Each execution's owner (an EXECUTOR service instance id)."""
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, owner FROM executions WHERE id IN ({marks})"
    return dict(store.conn.execute(sql, ids))  # type: ignore[attr-defined]


LONG = """
id: long
namespace: queue.test
tasks:
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 60
"""


def test_a_stopped_worker_hands_its_job_back_and_a_kill_reaches_the_next_one(cluster: Cluster, store: Store) -> None:
    store.save_flow("queue.test", "long", LONG)
    cluster.start("executor", "executor", *LIVENESS)
    first = cluster.start("w1", "worker", *LIVENESS[:4], "--grace", "0.5")
    (execution_id,) = create_executions(store, cluster.home, "queue.test", "long", 1)
    wait_for(lambda: bool(_claims(store)), "w1 to claim the task run", 30)
    first.terminate()  # SIGTERM: the attempt outlives the grace period, so its job goes back to the queue
    assert first.wait(30) == 0
    assert _claims(store) == Counter() and _job_count(store) == 1
    assert store.execution_state(execution_id) == State.RUNNING
    w1 = _worker_id(store, cluster, "w1")
    assert {i.state.value for i in store.service_instances(include_ended=True) if i.id == w1} == {
        "TERMINATED_GRACEFULLY"
    }
    cluster.start("w2", "worker", *LIVENESS)
    wait_for(lambda: bool(_claims(store)), "w2 to claim it", 30)
    killed = subprocess.run(
        [EXE, "--database", cluster.url, "executions", "kill", execution_id], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == 0, killed.stderr
    wait_for(lambda: store.execution_state(execution_id) == State.KILLED, "the kill", 30)
    (run,) = store.load_execution(execution_id).task_runs
    assert run.state.current == State.KILLED and _job_count(store) == 0
    assert [(a.worker_id, a.state.current) for a in run.attempts] == [(_worker_id(store, cluster, "w2"), State.KILLED)]


def _job_count(store: Store) -> int:
    return int(store.conn.execute("SELECT COUNT(*) FROM worker_jobs").fetchone()[0])  # type: ignore[attr-defined]


def test_a_worker_judged_dead_stops(cluster: Cluster, store: Store) -> None:
    worker = cluster.start("w1", "worker", *LIVENESS)
    wait_for(lambda: bool(store.service_instances()), "the worker to register", 30)
    (instance,) = store.service_instances()
    store.set_services_state([instance.id], ServiceState.DISCONNECTED, utcnow())  # as a coordinator would
    assert worker.wait(30) == 0
    assert "a coordinator judged this worker dead" in cluster.log("w1")
