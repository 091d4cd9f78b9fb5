"""`kestractl execute` on a shared PostgreSQL database: submitted to a live executor (its tasks run in a `server
worker` process) and followed from the store, or run in this process when no executor is alive (none started, or
its heartbeat stale, or killed), said in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kestractl.model import State, utcnow
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServerConfig, ServiceInstance, ServiceState, ServiceType
from tests.distributed.cluster import EXE, LIVENESS, Cluster, wait_for
from tests.services.postgres import Cluster as PgCluster
from tests.services.postgres import Postgres, own_cluster
from tests.services.stores import fresh_database, postgres  # noqa: F401  (fixtures)

NO_EXECUTOR = "no executor is running on this database: running the execution in this process"
FLOWS = {
    "greet": """
inputs:
  - id: who
    type: STRING
  - id: data
    type: FILE
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.who }}: {{ read(inputs.data) | trim }}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - echo from the shell
""",
    "fails": """
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: it went wrong
""",
    "waits": """
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: before the pause
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
""",
    "resumes": """
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - echo after the pause
""",
    "shellfails": """
tasks:
  - id: try
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - echo trying
      - exit 1
""",
    "sleepy": """
tasks:
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 2
      - echo awake
""",
    "long": """
tasks:
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - sleep 4
      - echo awake
""",
}


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    for flow_id, body in FLOWS.items():
        opened.save_flow("submit.test", flow_id, f"id: {flow_id}\nnamespace: submit.test\n{body}")
    yield opened
    opened.close()


@pytest.fixture
def cluster(tmp_path: Path, database: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, database)
    yield started
    started.stop_all()


@pytest.fixture
def own_postgres() -> Iterator[tuple[PgCluster, Postgres]]:
    """A PostgreSQL server of the test's own: restarting it would end every other test's sessions."""
    with own_cluster() as started:
        yield started


def _follow(cluster: Cluster, flow_id: str) -> subprocess.Popen[str]:
    """`execute` started, its output piped."""
    command = [EXE, "--database", cluster.url, "execute", "submit.test", flow_id]
    env = {**os.environ, "KESTRACTL_HOME": str(cluster.home), "NO_COLOR": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _execute(cluster: Cluster, flow_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [EXE, "--database", cluster.url, "execute", "submit.test", flow_id, *args]
    env = {**os.environ, "KESTRACTL_HOME": str(cluster.home), "NO_COLOR": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def _up(cluster: Cluster, store: Store) -> None:
    """Wait until every process of `cluster` has registered its service instance."""
    pids = {process.pid for process in cluster.processes.values()}
    wait_for(lambda: pids <= {i.pid for i in store.service_instances()}, "the components", 60)


def _owner(store: Store, execution_id: str) -> str | None:
    """The EXECUTOR service instance that drove the execution."""
    row = store.conn.execute("SELECT owner FROM executions WHERE id=?", (execution_id,)).fetchone()  # type: ignore[attr-defined]
    return row[0] if row else None


def _ran_in_process(store: Store, execution_id: str) -> bool:
    """Driven by the `execute` process itself, under its own EXECUTOR instance, left once the run ended."""
    instance = store.service_instance(str(_owner(store, execution_id)))
    return instance is not None and instance.state in (ServiceState.TERMINATED_GRACEFULLY, ServiceState.NOT_RUNNING)


def _newest(store: Store, flow_id: str) -> str:
    return store.find_execution_ids("submit.test", flow_id, limit=1)[0]


def test_execute_is_submitted_to_the_executor_and_followed(cluster: Cluster, store: Store, tmp_path: Path) -> None:
    cluster.start("executor", "executor", *LIVENESS)
    cluster.start("worker", "worker", "--threads", "2", *LIVENESS)
    _up(cluster, store)
    (tmp_path / "data.txt").write_text("the file's text\n")

    done = _execute(cluster, "greet", "--input", "who=world", "--input", f"data={tmp_path / 'data.txt'}")
    assert done.returncode == 0, done.stderr
    assert NO_EXECUTOR not in done.stderr
    assert " INFO  hello hello world: the file's text\n" in done.stdout
    assert " INFO  shell from the shell\n" in done.stdout
    execution = store.load_execution(_newest(store, "greet"))
    assert execution.state.current == State.SUCCESS
    assert cluster.name_of(store, str(_owner(store, execution.id))) == "executor"
    shell = next(run for run in execution.task_runs if run.task_id == "shell")  # Log runs inline, in the executor
    assert [cluster.name_of(store, str(attempt.worker_id)) for attempt in shell.attempts] == ["worker"]

    failed = _execute(cluster, "fails")
    assert failed.returncode == 1, failed.stderr
    assert "it went wrong" in failed.stdout and "FAILED" in failed.stderr
    assert store.execution_state(_newest(store, "fails")) == State.FAILED

    paused = _execute(cluster, "waits")
    assert paused.returncode == 0 and " INFO  before before the pause\n" in paused.stdout
    assert "PAUSED" in paused.stderr


def test_ctrl_c_leaves_the_execution_to_its_executor(cluster: Cluster, store: Store) -> None:
    cluster.start("executor", "executor", *LIVENESS)
    cluster.start("worker", "worker", *LIVENESS)
    _up(cluster, store)
    following = _follow(cluster, "sleepy")
    wait_for(lambda: bool(store.find_execution_ids("submit.test", "sleepy", [State.RUNNING.value])), "a run", 60)
    following.send_signal(signal.SIGINT)
    _, stderr = following.communicate(timeout=30)
    execution_id = _newest(store, "sleepy")
    assert following.returncode == 130
    assert f"execution {execution_id} goes on in the executor" in stderr
    wait_for(lambda: store.execution_state(execution_id) == State.SUCCESS, "the executor to end it", 60)


def test_without_a_live_executor_execute_runs_in_process(cluster: Cluster, store: Store) -> None:
    ran = _execute(cluster, "fails")  # no executor at all
    assert ran.returncode == 1 and ran.stderr.startswith(NO_EXECUTOR + "\n")
    assert "it went wrong" in ran.stdout and _ran_in_process(store, _newest(store, "fails"))

    old = utcnow() - timedelta(seconds=120)  # an executor whose heartbeat is older than its timeout
    stale = ServiceInstance(
        "stale",
        ServiceType.EXECUTOR,
        ServiceState.RUNNING,
        "s",
        "EXECUTOR",
        "0",
        "h",
        1,
        old,
        old,
        ServerConfig(timeout=45.0),
    )
    store.register_services([stale])
    ran = _execute(cluster, "sleepy")
    assert ran.returncode == 0 and ran.stderr.startswith(NO_EXECUTOR + "\n") and " INFO  nap awake\n" in ran.stdout

    cluster.start("executor", "executor", *LIVENESS)  # one killed: stale once its timeout (1.5 s) passed
    _up(cluster, store)
    cluster.kill("executor")
    time.sleep(2)
    ran = _execute(cluster, "sleepy")
    assert ran.returncode == 0 and ran.stderr.startswith(NO_EXECUTOR + "\n")
    assert _ran_in_process(store, _newest(store, "sleepy"))


def test_the_follower_waits_for_the_database_and_for_an_executor(
    own_postgres: tuple[PgCluster, Postgres], tmp_path: Path
) -> None:
    server, pg = own_postgres
    cluster = Cluster(tmp_path, pg.url)
    store = open_store(pg.url)
    for flow_id in ("long", "sleepy"):
        store.save_flow("submit.test", flow_id, f"id: {flow_id}\nnamespace: submit.test\n{FLOWS[flow_id]}")
    try:
        cluster.start("executor", "executor", "--heartbeat-interval", "0.3", "--heartbeat-timeout", "4")
        cluster.start("worker", "worker")
        _up(cluster, store)
        following = _follow(cluster, "long")  # PostgreSQL restarted while it runs
        wait_for(lambda: bool(store.find_execution_ids("submit.test", "long", [State.RUNNING.value])), "a run", 60)
        server.restart(down_seconds=2)
        stdout, stderr = following.communicate(timeout=60)
        assert following.returncode == 0, stderr
        assert "waiting for the database" in stderr and "the database answers again" in stderr
        assert " INFO  nap awake\n" in stdout

        cluster.kill("executor")  # submitted while its heartbeat is still fresh: nobody takes it …
        following = _follow(cluster, "sleepy")
        wait_for(lambda: bool(store.find_execution_ids("submit.test", "sleepy")), "the execution", 30)
        execution_id = _newest(store, "sleepy")
        time.sleep(7)  # the follower's look at the executors (every 5 s) finds none alive: said once
        cluster.start("executor", "executor")  # … until an executor is back
        stdout, stderr = following.communicate(timeout=60)
        assert following.returncode == 0, stderr
        assert f"no executor is running on this database any more: execution {execution_id} waits for one" in stderr
        assert NO_EXECUTOR not in stderr and " INFO  nap awake\n" in stdout
    finally:
        cluster.stop_all()
        store.close()


def test_restart_and_resume_go_to_the_executor_that_owns_the_execution(cluster: Cluster, store: Store) -> None:
    """With an executor alive, `executions restart|resume` write on the rows and follow: the executor alone
    decides the execution, and its runnable tasks run on a worker (not in the CLI's process as well)."""
    cluster.start("executor", "executor", *LIVENESS)
    cluster.start("worker", "worker", *LIVENESS)
    _up(cluster, store)
    env = {**os.environ, "KESTRACTL_HOME": str(cluster.home), "NO_COLOR": "1"}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [EXE, "--database", cluster.url, "executions", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    assert _execute(cluster, "resumes").returncode == 0
    paused = _newest(store, "resumes")
    resumed = command("resume", paused)
    assert resumed.returncode == 0 and " INFO  after after the pause\n" in resumed.stdout, resumed.stderr
    execution = store.load_execution(paused)
    assert execution.state.current == State.SUCCESS
    after = execution.task_runs[-1]
    assert [cluster.name_of(store, str(a.worker_id)) for a in after.attempts] == ["worker"]

    assert _execute(cluster, "shellfails").returncode == 1
    failed = _newest(store, "shellfails")
    restarted = command("restart", failed)
    assert restarted.returncode == 1 and "trying" in restarted.stdout, restarted.stderr
    execution = store.load_execution(failed)
    assert execution.state.current == State.FAILED
    attempts = execution.task_runs[0].attempts
    assert [cluster.name_of(store, str(a.worker_id)) for a in attempts] == ["worker", "worker"]
