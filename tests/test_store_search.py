"""The UI's searches in SQL (store/search.py): filters, paging, counts, daily statistics, logs across executions,
next schedule dates; migration 5 filling its columns for existing rows; the indexes the queries use."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kestractl.model import Execution, LogEntry, State, StateInfo, utcnow
from kestractl.store import Store, TriggerState, open_store
from kestractl.store.codec import execution_data
from kestractl.store.dialect import SQLITE
from kestractl.store.schema import MIGRATIONS
from kestractl.store.search import ExecutionSearch, LogSearch
from kestractl.store.sqlite import SqliteStore
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _execution(
    ident: str,
    namespace: str,
    state: State,
    start: datetime,
    seconds: float = 10,
    labels: tuple[tuple[str, str], ...] = (),
) -> Execution:
    info = StateInfo.new(State.CREATED, start)
    info.moved(State.RUNNING, start)
    if state != State.RUNNING:
        info.moved(state, start + timedelta(seconds=seconds))
    return Execution(ident, namespace, "flow", 1, labels=list(labels), state=info)


@pytest.fixture
def store(store_url: str) -> Store:  # noqa: F811
    store = open_store(store_url)
    with store.transaction():
        store.save_executions(
            [
                _execution("a1", "company", State.SUCCESS, NOW - timedelta(hours=1), 4, (("env", "prod"),)),
                _execution("a2", "company.team", State.FAILED, NOW - timedelta(hours=2), 8, (("env", "dev"),)),
                _execution("a3", "company-other", State.SUCCESS, NOW - timedelta(hours=3), 1),
                _execution("a4", "company.team", State.RUNNING, NOW - timedelta(days=2), labels=(("x", "100%_y"),)),
                _execution("a5", "other", State.FAILED, NOW - timedelta(days=40)),
            ]
        )
    return store


def _ids(store: Store, search: ExecutionSearch, limit: int = 25, offset: int = 0) -> list[str]:
    return store.search_execution_ids(search, limit, offset)


def test_a_namespace_takes_its_children_and_not_names_that_only_start_like_it(store: Store) -> None:
    assert _ids(store, ExecutionSearch(namespace="company")) == ["a1", "a2", "a4"]
    assert store.count_searched_executions(ExecutionSearch(namespace="company")) == 3
    assert _ids(store, ExecutionSearch(namespace="company.team")) == ["a2", "a4"]


def test_states_window_labels_and_text_filter_in_sql(store: Store) -> None:
    assert _ids(store, ExecutionSearch(states=("FAILED", "RUNNING"))) == ["a2", "a4", "a5"]
    assert _ids(store, ExecutionSearch(start=NOW - timedelta(days=1), end=NOW)) == ["a1", "a2", "a3"]
    assert _ids(store, ExecutionSearch(labels=(("env", "dev"),))) == ["a2"]
    assert _ids(store, ExecutionSearch(labels=(("env", "prod"), ("env", "dev")))) == []
    assert _ids(store, ExecutionSearch(q="100%_")) == ["a4"]  # LIKE's wildcards are plain text
    assert _ids(store, ExecutionSearch(q="other")) == ["a3", "a5"]
    assert _ids(store, ExecutionSearch(ids=("a5", "a1"))) == ["a1", "a5"]


def test_pages_are_newest_first_and_sorts_follow_kestra_names(store: Store) -> None:
    assert _ids(store, ExecutionSearch(), 2, 0) == ["a1", "a2"]
    assert _ids(store, ExecutionSearch(), 2, 4) == ["a5"]
    by_duration = store.search_execution_ids(ExecutionSearch(), 5, 0, "state.duration", desc=False)
    assert by_duration[:4] == ["a4", "a3", "a1", "a2"]  # a running one has no duration yet: first


def test_a_labels_change_is_written_to_its_column(store: Store) -> None:
    execution = store.load_execution("a3")
    execution.labels.append(("team", "data"))
    store.save_execution(execution)
    assert _ids(store, ExecutionSearch(labels=(("team", "data"),))) == ["a3"]


def test_daily_statistics_count_every_state_and_durations_of_ended_ones(store: Store) -> None:
    days = store.daily_statistics(ExecutionSearch(), NOW - timedelta(days=2), NOW)
    assert [d.start.date().isoformat() for d in days] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    assert [d.counts for d in days] == [{"RUNNING": 1}, {}, {"SUCCESS": 2, "FAILED": 1}]
    assert days[2].duration() == (1.0, 13 / 3, 8.0, 13.0, 3)
    assert days[0].duration() == (0.0, 0.0, 0.0, 0.0, 0)


def test_daily_statistics_use_the_days_of_an_offset(store: Store) -> None:
    late = NOW.replace(hour=23)
    store.save_execution(_execution("b1", "company", State.SUCCESS, late))
    search = ExecutionSearch(ids=("b1",))
    utc = {d.start.date().isoformat(): d.total for d in store.daily_statistics(search, NOW, late)}
    plus_two = store.daily_statistics(search, NOW, late + timedelta(hours=2), timedelta(hours=2))
    assert utc == {"2026-03-10": 1}
    assert {d.start.date().isoformat(): d.total for d in plus_two} == {"2026-03-10": 0, "2026-03-11": 1}


def _log(execution: Execution, level: str, message: str, at: datetime) -> LogEntry:
    return LogEntry(execution.id, execution.namespace, execution.flow_id, level, message, at, "t")


def test_logs_are_searched_across_executions_by_level_namespace_time_and_text(store: Store) -> None:
    a1, a2, a5 = (store.load_execution(i) for i in ("a1", "a2", "a5"))
    store.append_logs(
        [
            _log(a1, "INFO", "hello", NOW - timedelta(minutes=50)),
            _log(a2, "ERROR", "boom 50%", NOW - timedelta(minutes=40)),
            _log(a5, "WARN", "old", NOW - timedelta(days=39)),
        ]
    )
    found = store.search_logs(LogSearch(min_level="WARN"), 10)
    assert [(e.message, e.namespace, e.flow_id) for e in found] == [
        ("boom 50%", "company.team", "flow"),
        ("old", "other", "flow"),
    ]
    assert [e.message for e in store.search_logs(LogSearch(namespace="company"), 10)] == ["boom 50%", "hello"]
    assert [e.message for e in store.search_logs(LogSearch(start=NOW - timedelta(days=1)), 10)] == ["boom 50%", "hello"]
    assert [e.message for e in store.search_logs(LogSearch(q="50%"), 10)] == ["boom 50%"]
    assert store.count_searched_logs(LogSearch(namespace="company", min_level="ERROR")) == 1


def test_next_fires_skip_disabled_triggers_and_deleted_flows(store: Store) -> None:
    for flow_id, day in (("kept", 2), ("gone", 1), ("off", 1)):
        store.save_flow("company", flow_id, f"id: {flow_id}\nnamespace: company\n")
        store.save_trigger_state(TriggerState("company", flow_id, "cron", "sig", NOW + timedelta(days=day)))
    store.delete_flow("company", "gone")
    store.set_trigger_disabled("company", "off", "cron", True)
    fires, total = store.next_fires(10)
    assert [(f.flow_id, f.next_date) for f in fires] == [("kept", NOW + timedelta(days=2))] and total == 1


PLANS = [
    ("SELECT id FROM executions{where} ORDER BY start_date DESC LIMIT 25", ExecutionSearch(states=("FAILED",))),
    ("SELECT COUNT(*) FROM executions{where}", ExecutionSearch(namespace="company", start=NOW)),
    ("SELECT COUNT(*) FROM executions{where}", ExecutionSearch(start=NOW - timedelta(days=7))),
    ("SELECT COUNT(*) FROM logs l{where}", LogSearch(namespace="company", start=NOW, min_level="ERROR")),
]


@pytest.mark.parametrize(("sql", "search"), PLANS)
def test_the_searches_use_an_index(tmp_path: Path, sql: str, search: ExecutionSearch | LogSearch) -> None:
    store = SqliteStore(tmp_path / "k.db")
    where, args = search.where(SQLITE)
    plan = " / ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql.format(where=where), args))
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "SCAN" not in plan, plan


def test_migration_5_fills_end_date_duration_and_labels_of_existing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version=4")
    old = _execution("old", "company", State.SUCCESS, NOW, 2.5, (("env", "prod"), ("team", "a")))
    row = ("old", "company", "flow", 1, "SUCCESS", "2026-03-10T12:00:00.000Z", None, json.dumps(execution_data(old)))
    conn.execute("INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    conn.commit()
    conn.close()
    store = open_store(path)
    columns = store.conn.execute("SELECT end_date, duration, labels FROM executions").fetchone()
    assert columns == ("2026-03-10T12:00:02.500Z", pytest.approx(2.5), "\x1eenv:prod\x1eteam:a\x1e")
    assert _ids(store, ExecutionSearch(labels=(("team", "a"),))) == ["old"]


def test_writes_fill_the_columns_the_migration_fills(store_url: str) -> None:  # noqa: F811
    store = open_store(store_url)
    store.save_execution(_execution("new", "company", State.SUCCESS, NOW, 2.5, (("env", "prod"), ("team", "a"))))
    columns = store.conn.execute("SELECT end_date, duration, labels FROM executions").fetchone()
    assert columns == ("2026-03-10T12:00:02.500Z", pytest.approx(2.5), "\x1eenv:prod\x1eteam:a\x1e")
    assert utcnow() > NOW


def test_every_namespace_filter_takes_children_and_treats_underscore_as_a_letter(store_url: str) -> None:  # noqa: F811
    """The flows list, the flows page, the CLI's queries and the search read one condition: `my_team` takes
    `my_team.a`, not `myXteam.a` (a `LIKE 'my_team.%'` would)."""
    from kestractl.model import ExecutionQuery

    store = open_store(store_url)
    for namespace in ("my_team", "my_team.a", "myXteam.a"):
        store.save_flow(namespace, "f", f"id: f\nnamespace: {namespace}\ntasks: []\n")
        store.save_execution(_execution(namespace, namespace, State.SUCCESS, NOW))
    wanted = ["my_team", "my_team.a"]
    assert [r.namespace for r in store.list_flows("my_team")] == wanted
    assert [r.namespace for r in store.search_flow_rows(namespace="my_team")[0]] == wanted
    found, _ = store.purge_executions(ExecutionQuery(namespace="my_team"), executions=False, logs=False)
    assert sorted(e.namespace for e in found) == wanted
    assert sorted(store.search_execution_ids(ExecutionSearch(namespace="my_team"), 10)) == wanted
