"""The server's write path under load: the loop commits the decisions of many executions at once, and the
writers of one process take turns on a lock rather than in SQLite's sleeping busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import kestractl.engine.loop as loop_module
from kestractl.engine.runner import Runner
from kestractl.errors import StoreError
from kestractl.model import LogEntry, State
from kestractl.storage import LocalStorage
from kestractl.store import open_store

FLOW = """id: two
namespace: load
tasks:
  - id: first
    type: io.kestra.plugin.core.output.OutputValues
    values:
      message: hello
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.values.message }}"
"""


def test_executions_submitted_together_share_their_commits(tmp_path: Path) -> None:
    store = open_store(tmp_path / "k.db")
    store.save_flow("load", "two", FLOW)
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    flow = runner.flows.get("load", "two")
    created = [runner.create_execution(flow) for _ in range(40)]
    for execution in created[1:]:
        runner.submit(execution.id, fresh=execution)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    runner.run(created[0].id)
    runner.close()
    assert {store.execution_state(e.id) for e in created} == {State.SUCCESS}
    commits = statements.count("COMMIT")
    assert commits <= 3 * len(created) // 4, commits  # 3 decisions each: 120 commits one by one


def test_runs_that_only_compute_are_stored_once_with_the_decisions_around_them(tmp_path: Path) -> None:
    """Return and OutputValues run before the decision that started them is stored: one commit holds the
    execution's three steps, each task run written once, its history whole."""
    store = open_store(tmp_path / "k.db")
    store.save_flow("load", "two", FLOW)
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    created = runner.create_execution(runner.flows.get("load", "two"))
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    execution = runner.run(created.id)
    runner.close()
    assert [r.outputs for r in execution.task_runs] == [{"values": {"message": "hello"}}, {"value": "hello"}]
    assert len([s for s in statements if s.startswith("INSERT INTO task_runs")]) == 2
    assert len([s for s in statements if s.startswith("INSERT INTO executions")]) == 1
    assert statements.count("COMMIT") == 1
    for run in execution.task_runs:
        assert [s.value for s, _ in run.state.histories] == ["CREATED", "RUNNING", "SUCCESS"]


def test_a_long_chain_of_runs_that_only_compute_is_committed_in_bounded_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An execution decided again after each such run must not hold every decision until its end: a group takes at
    most MAX_GROUP_DECISIONS of them."""
    monkeypatch.setattr(loop_module, "MAX_GROUP_DECISIONS", 50)
    task = '  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{{{ taskrun.id }}}} {i}"\n'
    store = open_store(tmp_path / "k.db")
    store.save_flow(
        "load", "chain", "id: chain\nnamespace: load\ntasks:\n" + "".join(task.format(i=i) for i in range(200))
    )
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    created = runner.create_execution(runner.flows.get("load", "chain"))
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    assert runner.run(created.id).state.current == State.SUCCESS
    runner.close()
    assert 4 <= statements.count("COMMIT") <= 8, statements.count("COMMIT")  # 200 decisions and more, 50 a group


def test_a_commit_lost_after_a_run_that_only_computes_makes_the_run_again(tmp_path: Path) -> None:
    """The database goes away when the steps around such a run are stored: the run is not applied again over the
    execution read back (its task run was never stored), it is decided and made again."""
    store = open_store(tmp_path / "k.db")
    store.save_flow("load", "two", FLOW)
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    created = runner.create_execution(runner.flows.get("load", "two"))
    save = store.save_task_runs

    def away_once(*args: Any, **kwargs: Any) -> None:
        store.save_task_runs = save  # type: ignore[method-assign]
        raise StoreError("the database went away")

    store.save_task_runs = away_once  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        runner.run(created.id)
    assert store.load_execution(created.id).task_runs == []
    runner._reload()
    runner._loop()
    runner.close()
    execution = store.load_execution(created.id)
    assert execution.state.current == State.SUCCESS
    assert [(r.task_id, len(r.attempts)) for r in execution.task_runs] == [("first", 1), ("second", 1)]


def test_a_writer_of_the_same_process_begins_only_once_the_other_commits(tmp_path: Path) -> None:
    store = open_store(tmp_path / "k.db")
    events: list[str] = []
    inside, trying, release = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        store.conn.set_trace_callback(lambda sql: events.append(f"first {sql}"))
        with store.transaction():
            inside.set()
            release.wait(5)

    def second() -> None:
        store.conn.set_trace_callback(lambda sql: events.append(f"second {sql}"))
        inside.wait(5)
        trying.set()
        with store.transaction():
            pass

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    trying.wait(5)
    time.sleep(0.2)  # the second writer is waiting now: without the lock its BEGIN would be traced already
    release.set()
    for thread in threads:
        thread.join(10)
    assert events == ["first BEGIN IMMEDIATE", "first COMMIT", "second BEGIN IMMEDIATE", "second COMMIT"]


def test_log_lines_are_stored_in_batches_and_all_of_them_with_the_end(tmp_path: Path) -> None:
    """A line per decision added four pages to every commit: lines wait for a batch while the loop is busy, and an
    ended execution is stored with every line logged before its end."""
    log = '  - id: l{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "line {i}"\n'
    tasks = "".join(log.format(i=i) for i in range(200))
    store = open_store(tmp_path / "k.db")
    store.save_flow("load", "logs", f"id: logs\nnamespace: load\ntasks:\n{tasks}")
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    execution = runner.run(runner.create_execution(runner.flows.get("load", "logs")).id)
    runner.close()
    assert execution.state.current == State.SUCCESS
    assert [e.message for e in store.logs(execution)] == [f"line {i}" for i in range(200)]
    with_lines, pending = 0, False  # commits that stored log lines
    for sql in statements:
        pending |= sql.startswith("INSERT INTO logs")
        if sql == "COMMIT":
            with_lines, pending = with_lines + pending, False
    assert 1 <= with_lines < 50, with_lines  # a commit per decision: 200


def test_a_flush_returns_only_once_lines_another_thread_took_are_committed(tmp_path: Path) -> None:
    """The loop takes pending log lines into its transaction; a task reading its execution's logs on a worker
    thread (Fetch, errorLogs()) must find them committed, not taken by the loop and not stored yet."""
    store = open_store(tmp_path / "k.db")
    store.save_flow("load", "two", FLOW)
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    execution = runner.create_execution(runner.flows.get("load", "two"))
    logs = runner.logs
    logs(LogEntry(execution.id, "load", "two", "INFO", "taken by the loop"))
    taken, release = threading.Event(), threading.Event()

    def loop() -> None:
        with store.transaction():
            logs.flush()
            taken.set()
            release.wait(5)

    thread = threading.Thread(target=loop)
    thread.start()
    taken.wait(5)
    threading.Timer(0.2, release.set).start()
    logs.flush(settled=True)
    found = [entry.message for entry in store.logs(execution)]
    thread.join()
    runner.close()
    assert found == ["taken by the loop"]
