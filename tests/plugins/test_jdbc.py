"""The JDBC plugin family through the real CLI: PostgreSQL tasks against a throwaway server on 127.0.0.1
(tests/services/postgres.py), SQLite tasks on files in tmp_path."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestractl import ion
from kestractl.server.app import StandaloneServer
from kestractl.storage import LocalStorage
from tests.conftest import Cli, executions_of, runs, state, wait_for
from tests.services.mysql import MySql, mysql  # noqa: F401  (the session fixture)
from tests.services.postgres import Postgres, postgres  # noqa: F401  (the session fixture)


@pytest.fixture
def database(postgres: Postgres) -> Iterator[Postgres]:  # noqa: F811
    """A fresh database of the session's server, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield Postgres(postgres.host, postgres.port, database=name)


def run(cli: Cli, tmp_path: Path, tasks: str, flow_id: str = "jdbc") -> dict[str, Any]:
    """Deploy a flow of these tasks (YAML, indented as a list) and execute it; returns the execution."""
    path = tmp_path / f"{flow_id}.yaml"
    path.write_text(f"id: {flow_id}\nnamespace: dev\ntasks:\n{textwrap.indent(textwrap.dedent(tasks), '  ')}")
    deployed = cli("flow", "deploy", str(path))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    return cli.execute("dev", flow_id)[1]


def pg_task(db: Postgres, task_id: str, sql: str, extra: str = "", kind: str = "Query") -> str:
    return (
        f"- id: {task_id}\n  type: io.kestra.plugin.jdbc.postgresql.{kind}\n  url: {db.jdbc_url}\n"
        f"  username: {db.user}\n  password: {db.password}\n  sql: {json.dumps(sql)}\n{extra}"
    )


def outputs(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    return dict(runs(execution, task_id)[0]["outputs"])


def error_lines(cli: Cli, execution: dict[str, Any]) -> list[str]:
    """The ERROR lines of the execution's logs (each printed as `time LEVEL task message`)."""
    logs = cli("executions", "logs", execution["id"], "--level", "ERROR").stdout
    return [line.split(" ERROR ", 1)[1].split(" ", 1)[1] for line in logs.splitlines() if " ERROR " in line]


def stored_rows(cli: Cli, uri: str) -> list[Any]:
    return ion.loads_lines(LocalStorage(cli.home / "storage").local_path(uri).read_text())


TYPED = (
    "SELECT 1::int AS i, 12345678901::bigint AS big, 1.50::numeric AS n, 'x'::text AS t, true AS b,"
    " DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, TIMESTAMPTZ '2024-01-02 03:04:05Z' AS tz,"
    " '{\"a\": [1, 2]}'::jsonb AS j, ARRAY[1, 2] AS arr, '\\x0102'::bytea AS bytes,"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '1 day 02:03:04'::interval AS iv, NULL::text AS nothing"
)


def test_query_fetch_one_gives_kestras_types(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    extra = "  fetchType: FETCH_ONE\n  timeZoneId: Europe/Paris\n"
    execution = run(cli, tmp_path, pg_task(database, "q", TYPED, extra))
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    assert outputs(execution, "q") == {
        "row": {
            "i": 1, "big": 12345678901, "n": 1.5, "t": "x", "b": True, "d": "2024-02-29", "ts": "2024-01-02T03:04:05",
            "tz": "2024-01-02T04:04:05+01:00", "j": {"a": [1, 2]}, "arr": [1, 2], "bytes": "AQI=",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "iv": "P0Y0M1DT2H3M4S", "nothing": None,
        },
        "size": 1,
    }  # fmt: skip


def test_query_fetch_store_and_none(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    sql = "SELECT g AS id, DATE '2024-01-01' + g AS day FROM generate_series(1, 3) g"
    tasks = (
        pg_task(database, "fetch", sql, "  fetchType: FETCH\n")
        + pg_task(database, "store", sql, "  fetchType: STORE\n  fetchSize: 2\n")
        + pg_task(database, "none", sql)
        + pg_task(database, "old", sql, "  fetchOne: true\n")
        + pg_task(database, "empty", sql + " WHERE false", "  fetchType: FETCH_ONE\n")
    )
    execution = run(cli, tmp_path, tasks)
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    rows = [{"id": i, "day": f"2024-01-0{i + 1}"} for i in (1, 2, 3)]
    assert outputs(execution, "fetch") == {"rows": rows, "size": 3}
    stored = outputs(execution, "store")
    assert stored["size"] == 3 and stored["uri"].endswith(".ion")
    assert stored_rows(cli, stored["uri"])[0] == {"id": 1, "day": ion.loads("2024-01-02")}
    assert outputs(execution, "none") == {}
    assert outputs(execution, "old") == {"row": {"id": 1, "day": "2024-01-02"}, "size": 1}
    assert outputs(execution, "empty") == {"row": None, "size": 0}


def test_named_parameters_are_bound_not_pasted(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    sql = "SELECT :name::text AS name, :n + 1 AS next, ':n' AS literal, 100 % 7 AS rest, :missing::int AS missing"
    extra = '  fetchType: FETCH_ONE\n  parameters:\n    name: "O\'Brien"\n    n: 41\n'
    execution = run(cli, tmp_path, pg_task(database, "q", sql, extra))
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    expected = {"name": "O'Brien", "next": 42, "literal": ":n", "rest": 2, "missing": None}
    assert outputs(execution, "q")["row"] == expected


def test_query_refuses_several_statements(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    execution = run(cli, tmp_path, pg_task(database, "q", "SELECT 1; SELECT 2"))
    assert state(execution) == "FAILED"
    assert any("Query task support only a single SQL statement" in line for line in error_lines(cli, execution))


def test_queries_roll_back_together_and_give_one_output_per_result(
    cli: Cli, tmp_path: Path, database: Postgres
) -> None:
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as con:
        con.execute("CREATE TABLE items (id int PRIMARY KEY)")
    good = "INSERT INTO items VALUES (1); SELECT count(*) AS n FROM items; SELECT 'a' AS x UNION SELECT 'b'"
    failing = "INSERT INTO items VALUES (2); INSERT INTO items VALUES (2)"
    tasks = pg_task(database, "good", good, "  fetchType: FETCH\n", kind="Queries")
    execution = run(cli, tmp_path, tasks)
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    assert outputs(execution, "good") == {
        "outputs": [{"rows": [{"n": 1}], "size": 1}, {"rows": [{"x": "a"}, {"x": "b"}], "size": 2}]
    }
    failed = run(cli, tmp_path, pg_task(database, "bad", failing, kind="Queries"), "failing")
    assert state(failed) == "FAILED"
    assert any("duplicate key" in line for line in error_lines(cli, failed))
    with psycopg.connect(database.url) as con:
        assert con.execute("SELECT array_agg(id ORDER BY id) FROM items").fetchone() == ([1],)


def test_queries_without_a_transaction_keep_what_ran(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    import psycopg

    sql = "CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1); INSERT INTO kept VALUES (1)"
    execution = run(cli, tmp_path, pg_task(database, "q", sql, "  transaction: false\n", kind="Queries"))
    assert state(execution) == "FAILED"
    with psycopg.connect(database.url) as con:
        assert con.execute("SELECT count(*) FROM kept").fetchone() == (1,)


def test_copy_out_and_in_round_trip_a_csv(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as con:
        con.execute("CREATE TABLE source (id int, name text); CREATE TABLE target (id int, name text)")
        con.execute("INSERT INTO source VALUES (1, 'a,b'), (2, NULL), (3, 'say \"hi\"')")
    connection = f"  url: {database.jdbc_url}\n  username: {database.user}\n  password: {database.password}\n"
    tasks = (
        f"- id: out\n  type: io.kestra.plugin.jdbc.postgresql.CopyOut\n{connection}"
        "  format: CSV\n  header: true\n  sql: SELECT * FROM source ORDER BY id\n"
        f"- id: in\n  type: io.kestra.plugin.jdbc.postgresql.CopyIn\n{connection}"
        '  format: CSV\n  header: true\n  table: target\n  columns: [id, name]\n  from: "{{ outputs.out.uri }}"\n'
    )
    execution = run(cli, tmp_path, tasks)
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    copied = outputs(execution, "out")
    assert copied["rowCount"] == 3 and outputs(execution, "in") == {"rowCount": 3}
    csv = LocalStorage(cli.home / "storage").local_path(copied["uri"]).read_text()
    assert csv == 'id,name\n1,"a,b"\n2,\n3,"say ""hi"""\n'
    with psycopg.connect(database.url) as con:
        rows = con.execute("SELECT * FROM target ORDER BY id").fetchall()
    assert rows == [(1, "a,b"), (2, None), (3, 'say "hi"')]


def test_a_timeout_cancels_the_running_statement(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    started = time.monotonic()
    execution = run(cli, tmp_path, pg_task(database, "q", "SELECT pg_sleep(60)", "  timeout: PT1S\n"))
    assert state(execution) == "FAILED" and time.monotonic() - started < 20
    import psycopg

    with psycopg.connect(database.url) as con:  # the server is not still sleeping for us
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
        assert con.execute(sleeping).fetchone() == (0,)


def test_a_wrong_password_fails_with_one_line(cli: Cli, tmp_path: Path, database: Postgres) -> None:
    task = pg_task(database, "q", "SELECT 1").replace(f"password: {database.password}", "password: wrong")
    execution = run(cli, tmp_path, task)
    assert state(execution) == "FAILED"
    (line,) = [line for line in error_lines(cli, execution) if "password authentication failed" in line]
    assert line.startswith("PostgreSQL: ") and "\n" not in line and "Traceback" not in line


def test_an_unreachable_server_fails_with_one_line(cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = f"- id: q\n  type: io.kestra.plugin.jdbc.postgresql.Query\n  url: jdbc:postgresql://127.0.0.1:{port}/db\n"
    execution = run(cli, tmp_path, task + "  sql: SELECT 1\n")
    assert state(execution) == "FAILED"
    (line,) = [line for line in error_lines(cli, execution) if "Connection refused" in line]
    assert line.startswith("PostgreSQL: connection failed") and "\n" not in line


def test_a_wrong_fetch_type_is_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: bad\nnamespace: dev\ntasks:\n  - id: q\n    type: io.kestra.plugin.jdbc.sqlite.Query\n"
        "    sql: SELECT 1\n    fetchType: ALL\n"
    )
    result = cli("flow", "deploy", str(path))
    assert result.exit_code != 0
    assert "tasks[0].fetchType: must be one of STORE, FETCH, FETCH_ONE, NONE, not `ALL`" in result.stderr


def sqlite_task(task_id: str, url: str, sql: str, extra: str = "", kind: str = "Query") -> str:
    kestra_type = f"io.kestra.plugin.jdbc.sqlite.{kind}"
    return f"- id: {task_id}\n  type: {kestra_type}\n  url: {url}\n  sql: {json.dumps(sql)}\n{extra}"


def test_sqlite_queries_on_a_file(cli: Cli, tmp_path: Path) -> None:
    url = f"jdbc:sqlite:{tmp_path / 'shop.db'}"
    setup = (
        "CREATE TABLE orders (id INTEGER, placed DATE, at DATETIME, total REAL, note TEXT);"
        "INSERT INTO orders VALUES (1, '2024-01-02', '2024-01-02 10:00:00', 9.5, 'a');"
        "INSERT INTO orders VALUES (2, '2024-01-03', '2024-01-03T10:00:00+02:00', 1, NULL);"
        "CREATE TRIGGER stamp AFTER INSERT ON orders BEGIN UPDATE orders SET note = 'new' WHERE id = NEW.id; END;"
        "INSERT INTO orders VALUES (3, NULL, NULL, 0, NULL)"
    )
    tasks = sqlite_task("setup", url, setup, kind="Queries") + sqlite_task(
        "read",
        url,
        "SELECT * FROM orders WHERE id < :limit ORDER BY id",
        "  fetchType: FETCH\n  timeZoneId: Europe/Paris\n  parameters:\n    limit: 4\n",
    )
    execution = run(cli, tmp_path, tasks)
    assert state(execution) == "SUCCESS", error_lines(cli, execution)
    assert outputs(execution, "read")["rows"] == [
        {"id": 1, "placed": "2024-01-02", "at": "2024-01-02T09:00:00Z", "total": 9.5, "note": "a"},
        {"id": 2, "placed": "2024-01-03", "at": "2024-01-03T08:00:00Z", "total": 1, "note": None},
        {"id": 3, "placed": None, "at": None, "total": 0, "note": "new"},
    ]
    with sqlite3.connect(tmp_path / "shop.db") as con:
        assert con.execute("SELECT count(*) FROM orders").fetchone() == (3,)


def test_sqlite_queries_roll_back_and_output_the_database(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        sqlite_task("make", "'jdbc:sqlite:'", "CREATE TABLE t (x INT); INSERT INTO t VALUES (7)", kind="Queries")
        + "  outputDbFile: true\n"
        + sqlite_task("read", "'jdbc:sqlite:'", "SELECT x FROM t", "  fetchType: FETCH_ONE\n")
        + '  sqliteFile: "{{ outputs.make.databaseUri }}"\n'
        + sqlite_task("fail", "'jdbc:sqlite:'", "INSERT INTO t VALUES (8); SELECT nope FROM t", kind="Queries")
        + '  sqliteFile: "{{ outputs.make.databaseUri }}"\n  outputDbFile: true\n'
    )
    execution = run(cli, tmp_path, tasks)
    assert outputs(execution, "read") == {"row": {"x": 7}, "size": 1}
    assert state(execution) == "FAILED"
    assert any(line.startswith("SQLite: no such column: nope") for line in error_lines(cli, execution))


def test_jdbc_urls_become_libpq_options() -> None:
    from kestractl.plugins.jdbc.postgresql import libpq_options

    url = "jdbc:postgresql://db.local:6543/shop?user=ann&password=p%40ss&ssl=true&currentSchema=sales&loggerLevel=OFF"
    assert libpq_options(url) == {
        "host": "db.local", "port": 6543, "dbname": "shop", "user": "ann", "password": "p@ss", "sslmode": "require",
        "options": "-c search_path=sales",
    }  # fmt: skip
    assert libpq_options("jdbc:postgresql:shop") == {"host": "localhost", "port": 5432, "dbname": "shop"}
    assert libpq_options("postgresql://u:pw@h/d?sslmode=verify-full")["sslmode"] == "verify-full"


@pytest.mark.parametrize(
    ("sql", "statements"),
    [
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';' AS a; -- b; c\nSELECT 2 /* ; */", ["SELECT ';' AS a", "-- b; c\nSELECT 2 /* ; */"]),
        ("SELECT 1; -- done", ["SELECT 1"]),
        ("DO $$ BEGIN PERFORM 1; END $$; SELECT $q$;$q$", ["DO $$ BEGIN PERFORM 1; END $$", "SELECT $q$;$q$"]),
        ("BEGIN; INSERT INTO t VALUES (1); COMMIT", ["BEGIN", "INSERT INTO t VALUES (1)", "COMMIT"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE x SET a = CASE WHEN 1 THEN 2 END; END; SELECT 1",
            ["CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE x SET a = CASE WHEN 1 THEN 2 END; END", "SELECT 1"],
        ),
    ],
)
def test_statements_are_split_outside_quotes_comments_and_blocks(sql: str, statements: list[str]) -> None:
    from kestractl.plugins.jdbc.statements import split

    assert split(sql) == statements


@pytest.fixture
def mysql_db(mysql: MySql) -> MySql:  # noqa: F811
    """A fresh database of the session's MariaDB server, for one test."""
    import pymysql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user) as con, con.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    return MySql(mysql.host, mysql.port, database=name)


def mysql_task(db: MySql, task_id: str, sql: str, extra: str = "", kind: str = "Query") -> str:
    connection = f"  url: {db.jdbc_url}\n  username: root\n"
    return f"- id: {task_id}\n  type: io.kestra.plugin.jdbc.mysql.{kind}\n{connection}  sql: {json.dumps(sql)}\n{extra}"


def test_mysql_query_and_queries(cli: Cli, tmp_path: Path, mysql_db: MySql) -> None:
    setup = (
        "CREATE TABLE items (id INT PRIMARY KEY, price DECIMAL(6,2), made DATE, at DATETIME, seen TIMESTAMP NULL,"
        " took TIME, note TEXT, data BLOB) ENGINE=InnoDB;"
        "INSERT INTO items VALUES (1, 9.50, '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05', '01:02:03',"
        " '100% sure', x'0102')"
    )
    read = "SELECT * FROM items WHERE id = :id AND note LIKE '%sure'"
    tasks = (
        mysql_task(mysql_db, "setup", setup, kind="Queries")
        + mysql_task(mysql_db, "read", read, "  fetchType: FETCH_ONE\n  parameters:\n    id: 1\n")
        + mysql_task(mysql_db, "store", "SELECT id FROM items", "  fetchType: STORE\n")
        + mysql_task(mysql_db, "twice", "INSERT INTO items (id) VALUES (2); INSERT INTO items (id) VALUES (2)",
                     kind="Queries")
    )  # fmt: skip
    execution = run(cli, tmp_path, tasks)
    assert outputs(execution, "read")["row"] == {
        "id": 1, "price": 9.5, "made": "2024-01-02", "at": "2024-01-02T03:04:05", "seen": "2024-01-02T03:04:05Z",
        "took": "01:02:03", "note": "100% sure", "data": "AQI=",
    }  # fmt: skip
    stored = outputs(execution, "store")
    assert stored["size"] == 1 and stored_rows(cli, stored["uri"]) == [{"id": 1}]
    assert state(execution) == "FAILED"
    assert any(line.startswith("MySQL: Duplicate entry '2'") for line in error_lines(cli, execution))
    import pymysql

    with pymysql.connect(host=mysql_db.host, port=mysql_db.port, user="root", database=mysql_db.database) as con:
        with con.cursor() as cursor:  # the failed Queries rolled back its first insert
            cursor.execute("SELECT count(*) FROM items")
            assert cursor.fetchone() == (1,)


def test_mysql_query_refuses_several_statements(cli: Cli, tmp_path: Path, mysql_db: MySql) -> None:
    execution = run(cli, tmp_path, mysql_task(mysql_db, "q", "SELECT 1; SELECT 2"))
    assert state(execution) == "FAILED"
    assert any("Query task support only a single SQL statement" in line for line in error_lines(cli, execution))


def test_importing_the_family_imports_no_driver() -> None:
    code = (
        "import sys, kestractl.plugins.jdbc\n"
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'pymysql'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


WATCH = """id: watch
namespace: dev
tasks:
  - id: seen
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.size }}}} new: {{{{ trigger.rows | jq('.[].name') | join(',') }}}}"
triggers:
  - id: orders
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: {url}
    username: {user}
    password: {password}
    sql: SELECT name FROM orders WHERE NOT seen ORDER BY id
    afterSQL: UPDATE orders SET seen = true WHERE NOT seen
    interval: PT0.1S
    stopAfter: [SUCCESS]
"""


def test_the_trigger_starts_a_flow_when_the_query_returns_rows(
    standalone: tuple[StandaloneServer, Path], database: Postgres
) -> None:
    import psycopg

    server, flows = standalone
    with psycopg.connect(database.url, autocommit=True) as con:
        con.execute("CREATE TABLE orders (id serial, name text, seen bool DEFAULT false)")
        (flows / "watch.yaml").write_text(
            WATCH.format(url=database.jdbc_url, user=database.user, password=database.password)
        )
        time.sleep(0.5)
        assert executions_of(server, "watch") == []
        con.execute("INSERT INTO orders (name) VALUES ('a'), ('b')")
    done = wait_for(lambda: [e for e in executions_of(server, "watch") if e.state.current.is_terminated()])
    assert done[0].task_runs[0].outputs == {"value": "2 new: a,b"}
    assert done[0].trigger is not None and done[0].trigger["variables"]["size"] == 2
    with psycopg.connect(database.url) as con:  # afterSQL ran in the poll's transaction
        assert con.execute("SELECT bool_and(seen) FROM orders").fetchone() == (True,)


def test_a_trigger_that_could_never_fire_is_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    text = WATCH.format(url="jdbc:postgresql://127.0.0.1/db", user="u", password="p") + "    fetchType: NONE\n"
    path = tmp_path / "watch.yaml"
    path.write_text(text)
    result = cli("flow", "deploy", str(path))
    assert "triggers[0].fetchType: must be one of FETCH, FETCH_ONE, STORE, not `NONE`" in result.stderr
