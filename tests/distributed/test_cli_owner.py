"""`kestractl execute` run in-process on a shared PostgreSQL database (no executor alive when it started): the run
owns its execution and its subflow children under an EXECUTOR instance of its own that heartbeats, so an executor
started meanwhile does not drive them too; killed, its heartbeat stops and an executor takes the execution over."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestractl.cli.submit import executor_alive
from kestractl.model import State, utcnow
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServiceState, ServiceType
from tests.distributed.cluster import EXE, LIVENESS, Cluster, wait_for
from tests.services.postgres import Postgres
from tests.services.stores import fresh_database, postgres  # noqa: F401  (fixtures)

NAMESPACE = "cli.owner"
FLOWS = {
    "nap": """
tasks:
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 8
      - echo awake
""",
    "parent": """
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: cli.owner
    flowId: nap
""",
}


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    for flow_id, body in FLOWS.items():
        opened.save_flow(NAMESPACE, flow_id, f"id: {flow_id}\nnamespace: {NAMESPACE}\n{body}")
    yield opened
    opened.close()


@pytest.fixture
def cluster(tmp_path: Path, database: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, database)
    yield started
    started.stop_all()


def _execute(cluster: Cluster, flow_id: str, timeout: str = "1.5") -> subprocess.Popen[str]:
    """`execute` started in a session of its own (its shell tasks die with it), a short heartbeat timeout."""
    command = [EXE, "--database", cluster.url, "execute", NAMESPACE, flow_id]
    env = {**os.environ, "KESTRACTL_HOME": str(cluster.home), "NO_COLOR": "1", "KESTRACTL_LIVENESS_TIMEOUT": timeout}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _owners(store: Store) -> dict[str, str | None]:
    rows = store.conn.execute("SELECT id, owner FROM executions")  # type: ignore[attr-defined]
    return {row[0]: row[1] for row in rows}


def _naps_running(store: Store, count: int = 1) -> bool:
    """The `nap` shell task runs (the executions of flow `nap`) all running."""
    ids = store.find_execution_ids(NAMESPACE, "nap", limit=10)
    runs = [run for execution in store.load_executions(ids) for run in execution.task_runs]
    return len(runs) == count and all(run.state.current == State.RUNNING for run in runs)


def _start_components(cluster: Cluster, store: Store) -> None:
    cluster.start("executor", "executor", *LIVENESS)
    cluster.start("worker", "worker", *LIVENESS)
    pids = {process.pid for process in cluster.processes.values()}
    wait_for(lambda: pids <= {i.pid for i in store.service_instances()}, "the components", 60)


def test_an_executor_started_mid_run_leaves_the_cli_run_alone(cluster: Cluster, store: Store) -> None:
    running = _execute(cluster, "parent")
    wait_for(lambda: _naps_running(store), "the child's shell task to run", 60)
    (cli,) = [i for i in store.service_instances() if i.pid == running.pid]
    assert (cli.type, cli.state) == (ServiceType.EXECUTOR, ServiceState.CREATED)
    assert not executor_alive(store)  # another `execute` would not submit to this run
    assert set(_owners(store).values()) == {cli.id}  # the parent and its child

    _start_components(cluster, store)
    time.sleep(1)  # the executor's claims (every 0.5 s at most) …
    assert _naps_running(store)  # … while the run goes on
    stdout, stderr = running.communicate(timeout=90)
    assert running.returncode == 0, stderr
    assert stdout.count(" INFO  nap awake\n") == 1
    executions = store.load_executions(store.find_execution_ids(NAMESPACE, limit=10))
    assert {e.state.current for e in executions} == {State.SUCCESS} and len(executions) == 2
    assert [len(run.attempts) for e in executions for run in e.task_runs] == [1, 1]
    logged = [entry.message for e in executions for entry in store.logs(e, "INFO", None)]
    assert logged.count("awake") == 1  # the shell task ran once: no worker ran it again
    assert set(_owners(store).values()) == {cli.id}
    left = store.service_instance(cli.id)
    assert left is not None and left.state in (ServiceState.TERMINATED_GRACEFULLY, ServiceState.NOT_RUNNING)


def test_an_executor_takes_over_the_run_of_a_killed_cli(cluster: Cluster, store: Store) -> None:
    running = _execute(cluster, "nap")
    wait_for(lambda: _naps_running(store), "the shell task to run", 60)
    _start_components(cluster, store)
    time.sleep(2)  # more than the timeout: the CLI heartbeats, so the executor leaves the run alone
    killed_at = utcnow()
    os.killpg(running.pid, signal.SIGKILL)  # the CLI and its shell task
    running.wait(10)

    (execution_id,) = store.find_execution_ids(NAMESPACE, "nap")
    wait_for(lambda: store.execution_state(execution_id) == State.SUCCESS, "an executor to finish it", 60)
    (run,) = store.load_execution(execution_id).task_runs
    assert [a.state.current for a in run.attempts] == [State.KILLED, State.SUCCESS]  # the CLI's, then a new one
    second = run.attempts[1].state.start_date
    assert run.attempts[0].worker_id is None and second is not None and second > killed_at  # only once it died
    assert cluster.name_of(store, str(run.attempts[-1].worker_id)) == "worker"
    assert cluster.name_of(store, str(_owners(store)[execution_id])) == "executor"


def test_a_cli_run_judged_dead_follows_the_executor_that_took_it_over(cluster: Cluster, store: Store) -> None:
    running = _execute(cluster, "nap")
    wait_for(lambda: _naps_running(store), "the shell task to run", 60)
    (cli,) = [i for i in store.service_instances() if i.pid == running.pid]
    _start_components(cluster, store)
    store.set_services_state([cli.id], ServiceState.DISCONNECTED, utcnow())  # as a coordinator judging it dead

    stdout, stderr = running.communicate(timeout=90)
    (execution_id,) = store.find_execution_ids(NAMESPACE, "nap")
    assert running.returncode == 0, stderr
    assert f"an executor took execution {execution_id} over" in stderr
    assert "SUCCESS" in stderr  # at least once: the run here ended too, unrecorded; the executor's line follows
    assert stdout.count(" INFO  nap awake\n") == 2 and "WARN liveness: a coordinator judged" in stderr
    assert cluster.name_of(store, str(_owners(store)[execution_id])) == "executor"
    (run,) = store.load_execution(execution_id).task_runs
    assert cluster.name_of(store, str(run.attempts[-1].worker_id)) == "worker"


def test_a_bad_liveness_timeout_is_one_line(cluster: Cluster, store: Store) -> None:
    refused = _execute(cluster, "nap", timeout="soon")
    _, stderr = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert stderr.splitlines()[-1] == "Error: KESTRACTL_LIVENESS_TIMEOUT=soon: expected a number of seconds above 0"
    assert store.find_execution_ids(NAMESPACE) == [] and store.service_instances() == []
