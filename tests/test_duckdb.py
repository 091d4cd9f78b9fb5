"""The DuckDB Query task against the real `duckdb` package: fetch modes, files, errors, offline behaviour."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from kestractl import ion
from kestractl.engine.worker import run_attempt
from kestractl.errors import TaskError
from kestractl.expressions import render_value
from kestractl.model import Execution, Flow, LogEntry, State, TaskRun
from kestractl.storage import LocalStorage
from kestractl.tasks import registry
from kestractl.tasks.base import Killed, RunContext
from kestractl.tasks.duckdb import CORE_REPOSITORY, Queries, Query, _probe, one_line

QUERY = "io.kestra.plugin.jdbc.duckdb.Query"
QUERIES = "io.kestra.plugin.jdbc.duckdb.Queries"
SEED_SQL = """INSTALL httpfs;
LOAD httpfs;
SELECT *
FROM read_csv_auto('https://raw.githubusercontent.com/kestra-io/datasets/main/csv/orders.csv', header=True);
"""
ORDERS = "order_id,customer_name,price,quantity\n1,Ann,10.5,2\n2,Bob,3.25,1\n3,Zoë,7.0,4\n"


def make(spec: dict[str, Any]) -> Query:
    spec = {"id": "q", "type": QUERY, **spec}
    cls = registry.resolve(spec["type"])
    assert cls is not None and issubclass(cls, Query)
    assert cls.validate(spec) == []
    return cls(spec)


def context(task: Query, tmp_path: Path, logs: list[LogEntry] | None = None) -> RunContext:
    return RunContext(
        flow=Flow("f", "dev", [task]),
        execution=Execution("e", "dev", "f", 1),
        task=task,
        task_run=TaskRun("r", "e", task.id),
        variables={"task": {"id": task.id}, "inputs": {"rows": 3}},
        renderer=render_value,
        storage=LocalStorage(tmp_path / "storage"),
        log_sink=(logs if logs is not None else []).append,
    )


def run(spec: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], RunContext]:
    task = make(spec)
    ctx = context(task, tmp_path)
    return task.run(ctx), ctx


def stored_rows(ctx: RunContext, uri: str) -> list[Any]:
    return ion.loads_lines(ctx.storage.read_bytes(uri).decode("utf-8"))


def offline() -> bool:
    return _probe(CORE_REPOSITORY) is not None


def test_store_writes_one_ion_line_per_row_and_size_counts_them(tmp_path: Path) -> None:
    sql = "SELECT i AS id, 'value' || i AS value, NULL AS nothing FROM range(1, {{ inputs.rows }} + 1) r(i)"
    outputs, ctx = run({"sql": sql, "store": True}, tmp_path)
    assert outputs["size"] == 3
    assert re.fullmatch(r"kestra:///dev/f/executions/e/tasks/q/r/\w+\.ion", outputs["uri"])
    text = ctx.storage.read_bytes(outputs["uri"]).decode("utf-8")
    assert text.splitlines()[0] == '{id:1,value:"value1",nothing:null}'
    assert len(text.splitlines()) == outputs["size"]
    assert stored_rows(ctx, outputs["uri"])[2] == {"id": 3, "value": "value3", "nothing": None}
    assert ctx.metrics == [
        {"name": "fetch.size", "type": "counter", "value": 3.0, "tags": {"fetch": "false", "store": "true"}}
    ]


def test_store_streams_a_result_larger_than_one_fetch_batch(tmp_path: Path) -> None:
    outputs, ctx = run({"sql": "SELECT i FROM range(25000) r(i)", "fetchType": "STORE", "fetchSize": 1000}, tmp_path)
    assert outputs["size"] == 25000
    lines = ctx.storage.read_bytes(outputs["uri"]).decode().splitlines()
    assert len(lines) == 25000 and lines[-1] == "{i:24999}"


def test_store_of_an_empty_result_is_an_empty_file(tmp_path: Path) -> None:
    outputs, ctx = run({"sql": "SELECT 1 AS a WHERE false", "store": True}, tmp_path)
    assert outputs["size"] == 0 and ctx.storage.read_bytes(outputs["uri"]) == b""


def test_fetch_returns_every_row_as_a_json_ready_map(tmp_path: Path) -> None:
    sql = """SELECT 1 AS n, 2.50::DECIMAL(5,2) AS price, 1.5::DOUBLE AS ratio, DATE '2024-01-02' AS day,
      TIMESTAMPTZ '2024-01-01 10:00:00+02' AS at, '\\x41'::BLOB AS raw, {'k': [1, 2]} AS nested,
      '{"a": 1}'::JSON AS doc, INTERVAL 90 MINUTE AS span, 2::HUGEINT AS huge, NULL AS nothing"""
    outputs, _ = run({"sql": sql, "fetchType": "FETCH"}, tmp_path)
    assert outputs["size"] == 1
    assert outputs["rows"] == [
        {
            "n": 1,
            "price": 2.5,
            "ratio": 1.5,
            "day": "2024-01-02",
            "at": "2024-01-01T08:00:00Z",
            "raw": "QQ==",
            "nested": {"k": [1, 2]},
            "doc": {"a": 1},
            "span": "PT1H30M",
            "huge": "2",
            "nothing": None,
        }
    ]
    json.dumps(outputs)


def test_fetch_one_returns_the_first_row_and_null_when_there_is_none(tmp_path: Path) -> None:
    outputs, _ = run({"sql": "SELECT i, i * 2 AS twice FROM range(5) r(i) ORDER BY i DESC", "fetchOne": True}, tmp_path)
    assert outputs["row"] == {"i": 4, "twice": 8} and outputs["size"] == 1
    outputs, _ = run({"sql": "SELECT 1 AS a WHERE false", "fetchType": "FETCH_ONE"}, tmp_path)
    assert outputs["row"] is None and outputs["size"] == 0


def test_fetch_type_none_runs_the_query_and_returns_no_rows(tmp_path: Path) -> None:
    outputs, ctx = run({"sql": "SELECT 1"}, tmp_path)
    assert outputs == {"outputFiles": {}}
    assert ctx.metrics[0]["value"] == 0


def test_deprecated_flags_win_over_fetch_type_in_kestras_order(tmp_path: Path) -> None:
    outputs, _ = run(
        {"sql": "SELECT 1 AS a", "fetch": True, "fetchOne": True, "store": True, "fetchType": "NONE"}, tmp_path
    )
    assert outputs["rows"] == [{"a": 1}]
    outputs, _ = run({"sql": "SELECT 1 AS a", "fetchOne": "{{ true }}", "store": True}, tmp_path)
    assert outputs["row"] == {"a": 1}


def test_several_statements_all_run_and_the_last_one_gives_the_rows(tmp_path: Path) -> None:
    sql = """CREATE TABLE t (a INTEGER, b VARCHAR);
    INSERT INTO t VALUES (1, 'x'), (2, 'y; not a separator');
    SELECT count(*) AS c FROM t;
    SELECT * FROM t ORDER BY a;"""
    outputs, _ = run({"sql": sql, "fetchType": "FETCH"}, tmp_path)
    assert outputs["rows"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y; not a separator"}]


def test_a_last_statement_without_rows_gives_no_row_outputs(tmp_path: Path) -> None:
    outputs, _ = run({"sql": "CREATE TABLE t AS SELECT 1 AS a; INSERT INTO t VALUES (2)", "store": True}, tmp_path)
    assert "uri" not in outputs and "size" not in outputs
    outputs, _ = run({"sql": "CREATE TABLE t (a INT); INSERT INTO t VALUES (2) RETURNING a", "fetch": True}, tmp_path)
    assert outputs["rows"] == [{"a": 2}]


def test_input_files_are_read_through_working_dir(tmp_path: Path) -> None:
    sql = """SELECT customer_name, price * quantity AS total
    FROM read_csv_auto('{{ workingDir }}/orders.csv', header=True) ORDER BY order_id"""
    outputs, ctx = run({"sql": sql, "inputFiles": {"orders.csv": ORDERS}, "store": True}, tmp_path)
    assert outputs["size"] == 3
    assert stored_rows(ctx, outputs["uri"]) == [
        {"customer_name": "Ann", "total": 21.0},
        {"customer_name": "Bob", "total": 3.25},
        {"customer_name": "Zoë", "total": 28.0},
    ]
    assert ctx.storage.read_bytes(outputs["uri"]).decode().startswith('{customer_name:"Ann",total:21e0}')


def test_input_files_from_internal_storage_are_found_by_relative_path(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    uri = storage.put("/dev/f/executions/e/inputs/file/orders.csv", ORDERS.encode())
    spec = {"sql": "SELECT max(quantity) AS q FROM read_csv_auto('data/orders.csv')", "fetchOne": True}
    outputs, _ = run({**spec, "inputFiles": json.dumps({"data/orders.csv": uri})}, tmp_path)
    assert outputs["row"] == {"q": 4}


def test_input_files_must_stay_inside_the_working_directory(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="only relative path"):
        run({"sql": "SELECT 1", "inputFiles": {"../escape.csv": "x"}}, tmp_path)


def test_a_sql_error_is_a_task_error_with_duckdbs_message_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as caught:
        run({"sql": "SELECT 1;\nSELECT * FROM missing_table", "fetch": True}, tmp_path)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("Catalog Error: Table with name missing_table does not exist!")
    assert re.search(r"LINE \d+: SELECT \* FROM missing_table$", message) and "^" not in message


def test_a_syntax_error_fails_before_any_statement_runs(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match=r'^Parser Error: syntax error at or near "SELEC"'):
        run({"sql": "SELEC 1"}, tmp_path)


def test_the_worker_logs_a_failed_query_as_one_error_line(tmp_path: Path) -> None:
    logs: list[LogEntry] = []
    task = make({"sql": "SELECT 1/'x'::INT"})
    result = run_attempt(task, context(task, tmp_path, logs))
    assert result.state == State.FAILED
    assert (
        logs[-1].level == "ERROR" and logs[-1].message.startswith("Conversion Error") and "\n" not in logs[-1].message
    )


def test_the_seed_query_fails_offline_within_seconds_with_one_clear_line(tmp_path: Path) -> None:
    if not offline():
        pytest.skip("this machine reaches extensions.duckdb.org")
    started = time.monotonic()
    with pytest.raises(TaskError) as caught:
        run({"sql": SEED_SQL, "store": True}, tmp_path)
    assert time.monotonic() - started < 15
    assert re.fullmatch(
        r"DuckDB could not download the httpfs extension: no network access \(extensions\.duckdb\.org: [^\n]+\)",
        caught.value.message,
    )


def test_reading_a_remote_file_offline_fails_fast_on_the_httpfs_download(tmp_path: Path) -> None:
    if not offline():
        pytest.skip("this machine reaches extensions.duckdb.org")
    started = time.monotonic()
    sql = "SELECT * FROM read_csv_auto('https://raw.githubusercontent.com/kestra-io/datasets/main/csv/orders.csv')"
    with pytest.raises(TaskError, match=r"^DuckDB could not download the httpfs extension: no network access \("):
        run({"sql": sql, "store": True}, tmp_path)
    assert time.monotonic() - started < 15


def test_a_url_in_a_string_does_not_need_the_network(tmp_path: Path) -> None:
    outputs, _ = run({"sql": "SELECT 'https://kestra.io' AS link", "fetchOne": True}, tmp_path)
    assert outputs["row"] == {"link": "https://kestra.io"}


def test_duckdbs_own_failed_download_becomes_one_line() -> None:
    if not offline():
        pytest.skip("this machine reaches extensions.duckdb.org")
    with pytest.raises(duckdb.Error) as caught:
        duckdb.connect().execute("INSTALL httpfs")
    message = one_line(str(caught.value))
    assert message.startswith(
        "DuckDB could not download the httpfs extension: no network access (extensions.duckdb.org: "
    )
    assert "\n" not in message


def test_timestamps_are_zoned_in_time_zone_id_as_kestra_converts_them(tmp_path: Path) -> None:
    sql = "SELECT TIMESTAMP '2024-07-01 10:00:00' AS at"
    outputs, ctx = run({"sql": sql, "store": True, "timeZoneId": "Europe/Paris"}, tmp_path)
    assert ctx.storage.read_bytes(outputs["uri"]) == b'{at:ZonedDateTime::"2024-07-01T10:00:00+02:00[Europe/Paris]"}\n'
    outputs, _ = run({"sql": sql, "fetchOne": True, "timeZoneId": "Europe/Paris"}, tmp_path)
    assert outputs["row"] == {"at": "2024-07-01T10:00:00+02:00"}


def test_an_unknown_time_zone_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="timeZoneId: unknown time zone `Mars/Base`"):
        run({"sql": "SELECT 1", "timeZoneId": "Mars/Base"}, tmp_path)


def test_output_files_and_the_database_file_are_stored(tmp_path: Path) -> None:
    sql = "CREATE TABLE t AS SELECT 42 AS a; COPY t TO '{{ outputFiles.out }}' (HEADER)"
    outputs, ctx = run({"sql": sql, "outputFiles": ["out"], "outputDbFile": True}, tmp_path)
    assert ctx.storage.read_bytes(outputs["outputFiles"]["out"]) == b"a\n42\n"
    database = ctx.storage.local_path(outputs["databaseUri"])
    assert duckdb.connect(str(database), read_only=True).execute("SELECT a FROM t").fetchall() == [(42,)]


def test_a_database_file_url_keeps_tables_between_runs(tmp_path: Path) -> None:
    url = f"jdbc:duckdb:{tmp_path / 'db' / 'shop.db'}"
    run({"sql": "CREATE TABLE t AS SELECT 'kept' AS v", "url": url}, tmp_path)
    outputs, _ = run({"sql": "SELECT v FROM t", "databaseUri": url, "fetchOne": True}, tmp_path)
    assert outputs["row"] == {"v": "kept"}


def test_a_database_from_internal_storage_is_opened_from_a_copy(tmp_path: Path) -> None:
    first, ctx = run({"sql": "CREATE TABLE t AS SELECT 7 AS n", "outputDbFile": True}, tmp_path)
    outputs, _ = run({"sql": "SELECT n FROM t", "databaseUri": first["databaseUri"], "fetchOne": True}, tmp_path)
    assert outputs["row"] == {"n": 7}


def test_a_relative_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="must be absolute"):
        run({"sql": "SELECT 1", "url": "jdbc:duckdb:relative.db"}, tmp_path)


def test_queries_gives_one_output_per_statement_with_rows(tmp_path: Path) -> None:
    sql = """CREATE TABLE t AS SELECT * FROM range(3) r(i);
    SELECT count(*) AS c FROM t;
    SELECT i FROM t ORDER BY i;"""
    outputs, ctx = run({"type": QUERIES, "sql": sql, "fetchType": "FETCH"}, tmp_path)
    assert outputs["outputs"] == [{"rows": [{"c": 3}], "size": 1}, {"rows": [{"i": 0}, {"i": 1}, {"i": 2}], "size": 3}]
    assert ctx.metrics[0]["value"] == 4


def test_queries_roll_back_every_statement_when_one_fails(tmp_path: Path) -> None:
    url = f"jdbc:duckdb:{tmp_path / 'tx.db'}"
    run({"type": QUERIES, "url": url, "sql": "CREATE TABLE t (a INT)"}, tmp_path)
    with pytest.raises(TaskError, match="Conversion Error"):
        run({"type": QUERIES, "url": url, "sql": "INSERT INTO t VALUES (1); INSERT INTO t VALUES ('x')"}, tmp_path)
    outputs, _ = run({"url": url, "sql": "SELECT count(*) AS c FROM t", "fetchOne": True}, tmp_path)
    assert outputs["row"] == {"c": 0}


def test_killing_the_run_interrupts_a_long_query(tmp_path: Path) -> None:
    task = make({"sql": "SELECT count(*) FROM range(1000000000000) r(i) WHERE i % 7 = 3", "fetchOne": True})
    ctx = context(task, tmp_path)
    threading.Timer(0.3, ctx.stop.set).start()
    started = time.monotonic()
    with pytest.raises(Killed):
        task.run(ctx)
    assert time.monotonic() - started < 5


def test_both_type_names_resolve() -> None:
    assert registry.resolve(QUERY) is Query
    assert registry.resolve(QUERIES) is Queries


def test_validate_names_each_wrong_property() -> None:
    assert Query.validate({"id": "q", "type": QUERY}) == ["sql: required"]
    problems = Query.validate(
        {
            "id": "q",
            "type": QUERY,
            "sql": ["SELECT 1"],
            "fetchType": "ALL",
            "store": 3,
            "inputFiles": [1],
            "outputFiles": {},
        }
    )
    assert problems == [
        "sql: expected a string, not `['SELECT 1']`",
        "fetchType: must be one of STORE, FETCH, FETCH_ONE, NONE, not `ALL`",
        "store: expected a boolean (true or false), not `3`",
        "inputFiles: must be a map of file name to content",
        "outputFiles: must be a list of strings",
    ]
    assert Query.validate({"id": "q", "type": QUERY, "sql": "SELECT 1", "fetchType": "{{ inputs.mode }}"}) == []
