"""The SQLite store: migrations applied once and kept, revisions, executions and logs round-trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kestractl.errors import NotFoundError
from kestractl.model import Execution, LogEntry, State, StateInfo, TaskRun
from kestractl.store import open_store
from kestractl.store.schema import MIGRATIONS, connect, migrate
from kestractl.store.sqlite import SqliteStore
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)


def test_a_new_file_gets_every_migration_and_wal(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "k.db")
    conn = store.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_migrating_again_keeps_the_data(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "k.db")
    store.save_flow("ns", "f", "id: f")
    store.close()
    conn = connect(tmp_path / "k.db")
    assert migrate(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM flows").fetchone()[0] == 1


def test_a_failing_migration_rolls_back_and_leaves_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SqliteStore(tmp_path / "k.db").close()
    failing = [*MIGRATIONS, "CREATE TABLE t (x); SELECT nope FROM nowhere"]
    monkeypatch.setattr("kestractl.store.schema.MIGRATIONS", failing)
    conn = connect(tmp_path / "k.db")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='t'").fetchone() is None


def test_revisions_only_grow_when_the_source_changes(store_url: str) -> None:  # noqa: F811
    store = open_store(store_url)
    assert store.save_flow("ns", "f", "a") == (1, True)
    assert store.save_flow("ns", "f", "a") == (1, False)
    assert store.save_flow("ns", "f", "b") == (2, True)
    assert [r.revision for r in store.revisions("ns", "f")] == [1, 2]
    assert store.flow_revision("ns", "f", 1).source == "a"
    store.delete_flow("ns", "f")
    with pytest.raises(NotFoundError):
        store.flow_revision("ns", "f")
    assert store.save_flow("ns", "f", "a") == (3, True)


def test_a_transaction_is_all_or_nothing(store_url: str) -> None:  # noqa: F811
    store = open_store(store_url)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.save_flow("ns", "one", "x")
            raise RuntimeError("boom")
    assert store.list_flows() == []


def test_execution_task_runs_and_logs_round_trip(store_url: str) -> None:  # noqa: F811
    store = open_store(store_url)
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
    store = SqliteStore(tmp_path / "k.db", background_checkpoints=True)
    source = "id: f\nnamespace: n\ntasks: []\n# " + "x" * 4000 + "\n"
    for i in range(1500):  # about 6 MB of WAL, past SQLite's automatic checkpoint (1,000 pages)
        store.save_flow("n", f"f{i}", source)
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    frames, copied = store.checkpoint()
    assert frames > 1000 and copied == frames
    store.close()
    plain = SqliteStore(tmp_path / "plain.db")
    assert plain.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # the CLI keeps SQLite's own


def test_search_pages_and_counts_in_sql(tmp_path: Path) -> None:
    """A page reads its rows only; the total is SQLite's count (the API used to read every id to page them)."""
    store = SqliteStore(tmp_path / "k.db")
    with store.transaction():
        for n in range(30):
            execution = Execution(f"e{n:02d}", "team.a" if n % 3 else "team", "f", 1)
            execution.state.moved(State.SUCCESS if n % 2 else State.FAILED)
            store.save_execution(execution)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    page = store.find_execution_ids("team", None, ["SUCCESS"], limit=5, offset=5)
    assert len(page) == 5 and store.count_executions("team", None, ["SUCCESS"]) == 15
    assert store.count_executions("team.a") == 20 and store.count_executions(flow_id="nope") == 0
    assert page == store.find_execution_ids("team", None, ["SUCCESS"], limit=15)[5:10]
    assert all("LIMIT" in s or "COUNT(*)" in s for s in statements if s.startswith("SELECT"))


def test_logs_after_gives_only_what_is_new(store_url: str) -> None:  # noqa: F811
    store = open_store(store_url)
    execution = Execution("e1", "ns", "f", 1)
    lines = [LogEntry("e1", "ns", "f", level, f"m{n}") for n, level in enumerate(["INFO", "DEBUG", "ERROR"])]
    with store.transaction():
        store.save_execution(execution)
        store.append_logs(lines)
    first = store.logs_after(execution, 0, "INFO")
    assert [e.message for _, e in first] == ["m0", "m2"]
    with store.transaction():
        store.append_logs([LogEntry("e1", "ns", "f", "WARN", "m3")])
    assert [e.message for _, e in store.logs_after(execution, first[-1][0], "INFO")] == ["m3"]


def test_task_outputs_of_every_json_shape_round_trip(tmp_path: Path) -> None:
    """Rows are written by orjson, and by json what orjson refuses (an integer beyond 64 bits, a lone surrogate);
    keys that are not text (a YAML `1:`) become text, as json made them; a row json wrote with NaN still reads."""
    store = SqliteStore(tmp_path / "k.db")
    execution = Execution("e1", "ns", "f", 1)
    outputs = {"big": 2**70, "text": "é ✓ \ud800", "keys": {1: "one", None: "none"}, "nested": [{"a": None}, 1.5]}
    run = TaskRun("r1", "e1", "t", outputs=outputs)
    execution.task_runs.append(run)
    with store.transaction():
        store.save_execution(execution)
        store.save_task_runs(execution.id, [(0, run)])
    loaded = store.load_execution(execution.id).task_runs[0].outputs
    assert loaded == {**outputs, "keys": {"1": "one", "null": "none"}}
    store.conn.execute("UPDATE task_runs SET data = replace(data, '1.5', 'NaN')")
    nan = store.load_execution(execution.id).task_runs[0].outputs
    assert nan is not None and nan["nested"][1] != nan["nested"][1]  # NaN
