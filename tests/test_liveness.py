"""Liveness (Kestra's service instances): the registry's queries on both stores, a heartbeat that outlives a
locked database, and real `server standalone` processes sharing one PostgreSQL database, one of them killed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kestractl.config import Home
from kestractl.model import utcnow
from kestractl.server.liveness import STANDALONE_SERVICES, ServiceLiveness
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType
from tests.services.postgres import Postgres
from tests.services.stores import fresh_database, postgres, store_url  # noqa: F401  (fixtures)

EXE = str(Path(sys.executable).parent / "kestractl")
CONFIG = ServerConfig(heartbeat_interval=0.2, timeout=1.0, termination_grace_period=2.0)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    opened = open_store(store_url)
    yield opened
    opened.close()


def _registered(store: Store, said: list[str] | None = None) -> ServiceLiveness:
    notes = said if said is not None else []
    liveness = ServiceLiveness(store, CONFIG, lambda level, message: notes.append(f"{level} {message}"))
    liveness.register()
    return liveness


def _states(store: Store, liveness: ServiceLiveness) -> set[ServiceState]:
    return {i.state for i in store.service_instances(include_ended=True) if i.id in liveness.ids}


def test_register_list_and_heartbeat(store: Store) -> None:
    liveness = _registered(store)
    listed = store.service_instances()
    assert sorted(i.type for i in listed) == sorted(STANDALONE_SERVICES)
    assert {i.state for i in listed} == {ServiceState.RUNNING} and {i.pid for i in listed} == {os.getpid()}
    before = listed[0].updated_at
    time.sleep(0.01)
    liveness.heartbeat()
    after = store.service_instance(listed[0].id)
    assert after is not None and after.updated_at > before and after.seq_id == 1
    assert store.service_instance("nope") is None


def test_coordinator_disconnects_then_ends_dead_services(store: Store) -> None:
    dead, alive = _registered(store), _registered(store)
    later = utcnow() + timedelta(seconds=CONFIG.timeout + 0.5)
    store.heartbeat_services(alive.ids, later)
    assert store.transition_dead_services(later, dead.server_id) == []  # a coordinator never judges its own server
    assert {i.id for i in store.transition_dead_services(later, alive.server_id)} == set(dead.ids)
    assert _states(store, dead) == {ServiceState.DISCONNECTED} and _states(store, alive) == {ServiceState.RUNNING}
    # A second coordinator judging the rows it read before the first one moved them moves nothing.
    assert store.transition_dead_services(later, alive.server_id) == []
    end = later + timedelta(seconds=CONFIG.termination_grace_period + 0.5)
    store.heartbeat_services(alive.ids, end)
    gone = store.transition_dead_services(end, alive.server_id)
    assert {i.id for i in gone} == set(dead.ids) and {i.state for i in gone} == {ServiceState.DISCONNECTED}
    assert _states(store, dead) == {ServiceState.NOT_RUNNING}
    assert {i.id for i in store.service_instances()} == set(alive.ids)
    assert len(store.service_instances(include_ended=True)) == 8


def test_dead_worker_ids_are_returned_once_their_grace_period_is_over(store: Store) -> None:
    dead, coordinator = _registered(store), _registered(store)
    store.set_services_state(dead.ids, ServiceState.TERMINATING, utcnow() - timedelta(seconds=10))
    store.heartbeat_services(coordinator.ids, utcnow())
    worker = next(i.id for i in store.service_instances() if i.id in dead.ids and i.type is ServiceType.WORKER)
    assert coordinator.mark_dead_services() == [worker]
    assert _states(store, dead) == {ServiceState.NOT_RUNNING}


def test_a_gracefully_terminated_server_is_not_a_dead_worker(store: Store) -> None:
    ended, coordinator = _registered(store), _registered(store)
    store.set_services_state(ended.ids, ServiceState.TERMINATED_GRACEFULLY, utcnow() - timedelta(seconds=10))
    assert coordinator.mark_dead_services() == []
    assert _states(store, ended) == {ServiceState.NOT_RUNNING}


def test_heartbeat_outlives_a_locked_sqlite_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kestractl.store.schema.BUSY_SECONDS", 0.2)
    store = open_store(tmp_path / "k.db")
    said: list[str] = []
    liveness = _registered(store, said)
    locker = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for _ in range(3):
        liveness.guarded(liveness.heartbeat)
    assert len(said) == 1 and said[0].startswith("ERROR liveness:") and "locked" in said[0], said
    locker.execute("ROLLBACK")
    before = store.service_instances()[0].updated_at
    liveness.guarded(liveness.heartbeat)
    assert said[1:] == ["INFO liveness: the database answers again"]
    assert store.service_instances()[0].updated_at > before


def test_server_list_without_servers_and_with_a_bad_database(tmp_path: Path) -> None:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path), NO_COLOR="1")
    empty = subprocess.run([EXE, "server", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert empty.returncode == 0 and empty.stdout.split() == "ID TYPE STATE HOST PID SERVER STARTED HEARTBEAT".split()
    bad = [EXE, "--database", "postgresql://u:p@127.0.0.1:1/x", "server", "list", "--json"]
    failed = subprocess.run(bad, env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and failed.stdout == "" and len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "127.0.0.1" in failed.stderr and "Traceback" not in failed.stderr


# ---- real servers sharing one PostgreSQL database ------------------------------------------------


def _server(tmp: Path, url: str, name: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp / name), NO_COLOR="1", KESTRACTL_LIVENESS_TIMEOUT="2")
    options = ["--port", "0", "--grace", "1", "--heartbeat-interval", "0.3"]
    with (tmp / f"{name}.log").open("w") as log:
        args = [EXE, "--database", url, "server", "standalone", *options]
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _by_pid(store: Store, pid: int) -> set[ServiceState]:
    return {i.state for i in store.service_instances(include_ended=True) if i.pid == pid}


def _listed(url: str, tmp: Path, *args: str, server: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp / "cli"), NO_COLOR="1")
    where = ["--server", server] if server else ["--database", url]
    command = [EXE, *where, "server", "list", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


def test_two_servers_on_postgresql_one_killed_one_stopped(tmp_path: Path, database: str) -> None:
    first, second = _server(tmp_path, database, "a"), _server(tmp_path, database, "b")
    store = open_store(database)
    try:
        _wait(lambda: len(store.service_instances()) == 8, "both servers registered")
        listed = json.loads(_listed(database, tmp_path, "--json").stdout)
        assert {(i["server"]["props"]["pid"], i["state"]) for i in listed} == {
            (first.pid, "RUNNING"),
            (second.pid, "RUNNING"),
        }
        _survives_dropped_connections(store, database, first.pid)
        said = (tmp_path / "a.log").read_text()
        assert "ERROR" not in said, said  # an ended session is replaced at its next statement (store/postgres.py)
        url = (tmp_path / "a.log").read_text().split("listening on ")[1].split()[0]
        remote = _listed(database, tmp_path, "--json", server=url)  # `--server`: the same list, through the API
        assert remote.returncode == 0 and _still(json.loads(remote.stdout)) == _still(listed), remote.stderr
        second.send_signal(signal.SIGKILL)
        _wait(lambda: _by_pid(store, second.pid) == {ServiceState.DISCONNECTED}, "the killed one DISCONNECTED")
        assert "was RUNNING: now DISCONNECTED" in (tmp_path / "a.log").read_text()
        _wait(lambda: _by_pid(store, second.pid) == {ServiceState.NOT_RUNNING}, "then NOT_RUNNING")
        table = _listed(database, tmp_path).stdout.splitlines()
        assert table[0].split("\t")[:3] == ["ID", "TYPE", "STATE"] and len(table) == 5
        assert all("\tRUNNING\t" in line and f"\t{first.pid}\t" in line for line in table[1:])
        assert len(_listed(database, tmp_path, "--all").stdout.splitlines()) == 9
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        assert _by_pid(store, first.pid) == {ServiceState.TERMINATED_GRACEFULLY}
    finally:
        for process in (first, second):
            process.kill()
            process.wait()
        store.close()


def _still(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instances without what each heartbeat changes."""
    return [{k: v for k, v in i.items() if k not in ("updatedAt", "seqId")} for i in instances]


def _survives_dropped_connections(store: Store, url: str, pid: int) -> None:
    """PostgreSQL drops the heartbeat's connection (as on a restart; the engine's own recovery from one is not
    this test's): the server heartbeats on, on a new connection."""
    store.close()  # the heartbeat threads' connections are the others that last read or wrote the registry
    dropped: list[Any] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # A heartbeat connection's last statement may be another (a coordinator's COMMIT): asked until both seen.
        _wait(lambda: len(dropped) >= 2 or bool(dropped.extend(_terminate_heartbeats(conn))), "heartbeat connections")
    before = max(i.updated_at for i in store.service_instances() if i.pid == pid)
    _wait(lambda: max(i.updated_at for i in store.service_instances() if i.pid == pid) > before, "heartbeats")
    assert _by_pid(store, pid) == {ServiceState.RUNNING}


def _terminate_heartbeats(conn: psycopg.Connection[Any]) -> list[Any]:
    return conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=current_database()"
        " AND pid<>pg_backend_pid() AND query LIKE '%service_instances%'"
    ).fetchall()


def test_a_heartbeat_interval_not_under_the_timeout_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path), NO_COLOR="1", KESTRACTL_LIVENESS_TIMEOUT="2")
    args = [EXE, "server", "standalone", "--port", "0", "--heartbeat-interval", "5"]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--heartbeat-interval" in refused.stderr and "Traceback" not in refused.stderr
    assert open_store(Home(tmp_path).db_path).service_instances() == []
