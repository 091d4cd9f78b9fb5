"""The SQLite store: migrations applied once and kept, revisions, executions and logs round-trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kestractl.errors import NotFoundError
from kestractl.model import Execution, LogEntry, State, StateInfo, TaskRun
from kestractl.store import MIGRATIONS, Store, connect, migrate


def test_a_new_file_gets_every_migration_and_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    conn = store.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_migrating_again_keeps_the_data(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    store.save_flow("ns", "f", "id: f")
    store.close()
    conn = connect(tmp_path / "k.db")
    assert migrate(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM flows").fetchone()[0] == 1


def test_a_failing_migration_rolls_back_and_leaves_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(tmp_path / "k.db").close()
    monkeypatch.setattr("kestractl.store.MIGRATIONS", [*MIGRATIONS, "CREATE TABLE t (x); SELECT nope FROM nowhere"])
    conn = connect(tmp_path / "k.db")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='t'").fetchone() is None


def test_revisions_only_grow_when_the_source_changes(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    assert store.save_flow("ns", "f", "a") == (1, True)
    assert store.save_flow("ns", "f", "a") == (1, False)
    assert store.save_flow("ns", "f", "b") == (2, True)
    assert [r.revision for r in store.revisions("ns", "f")] == [1, 2]
    assert store.flow_revision("ns", "f", 1).source == "a"
    store.delete_flow("ns", "f")
    with pytest.raises(NotFoundError):
        store.flow_revision("ns", "f")
    assert store.save_flow("ns", "f", "a") == (3, True)


def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.save_flow("ns", "one", "x")
            raise RuntimeError("boom")
    assert store.list_flows() == []


def test_execution_task_runs_and_logs_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    execution = Execution("e1", "ns", "f", 1, inputs={"a": 1}, labels=[("k", "v")])
    run = TaskRun("r1", "e1", "t", value="v1", outputs={"value": "x"}, data={"values": ["a"]})
    run.state.moved(State.SUCCESS)
    execution.task_runs = [run]
    execution.state.moved(State.SUCCESS)
    with store.transaction():
        store.save_execution(execution)
        store.save_task_runs("e1", enumerate(execution.task_runs))
        store.append_logs([LogEntry("e1", "ns", "f", "ERROR", "bad", task_id="t", task_run_id="r1")])
    loaded = store.load_execution("e1")
    assert loaded.to_api() == execution.to_api()
    assert loaded.task_runs[0].data == {"values": ["a"]}
    assert [e.message for e in store.logs(loaded, "WARN")] == ["bad"]
    assert store.logs(loaded, "ERROR", task_id="other") == []
    assert store.find_execution_ids(namespace="ns", states=["SUCCESS"]) == ["e1"]
    assert isinstance(StateInfo.new(), StateInfo)


def test_background_checkpoints_leave_commits_alone_and_copy_the_wal_when_asked(tmp_path: Path) -> None:
    """A server's commits must not stop to checkpoint (a 1 s stall every 4 MB); its own thread does it."""
    store = Store(tmp_path / "k.db", background_checkpoints=True)
    source = "id: f\nnamespace: n\ntasks: []\n# " + "x" * 4000 + "\n"
    for i in range(1500):  # about 6 MB of WAL, past SQLite's automatic checkpoint (1,000 pages)
        store.save_flow("n", f"f{i}", source)
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    frames, copied = store.checkpoint()
    assert frames > 1000 and copied == frames
    store.close()
    plain = Store(tmp_path / "plain.db")
    assert plain.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # the CLI keeps SQLite's own
