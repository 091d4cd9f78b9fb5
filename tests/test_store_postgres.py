"""kestractl on PostgreSQL beyond the shared query tests: a wrong database is one line (CLI) or a 503 (server),
migrations race safely, and the whole conformance runner passes against the throwaway cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from conftest import Cli

from kestractl.store import open_store
from kestractl.store.pg_schema import MIGRATIONS
from tests.services.postgres import Postgres, postgres  # noqa: F401  (the session fixture)
from tests.services.stores import fresh_database

CONFORMANCE = Path("/work/shared/conformance/run")


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:  # noqa: F811
    yield from fresh_database(postgres)


@pytest.fixture
def role(postgres: Postgres, database: str) -> Iterator[Postgres]:  # noqa: F811
    """A user of its own (no rights but to log in), on `database`."""
    name = f"r_{uuid4().hex[:10]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
    yield Postgres(postgres.host, postgres.port, user=name, password="pw", database=database.rsplit("/", 1)[1])
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename='{name}'")
        conn.execute(f"DROP OWNED BY {name} CASCADE")
        conn.execute(f"DROP ROLE {name}")


def _one_line(cli: Cli, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://kestra:wrong@{host}:{port}/postgres", "check the user and password"),
        ("postgresql://kestra:k3stra-pw@{host}:1/postgres", "is the server running"),
        ("postgresql://kestra:k3stra-pw@{host}:{port}/nowhere", 'database "nowhere" does not exist'),
        ("postgresql://kestra:k3stra-pw@{host}:port/postgres", "the URL must look like"),
        ("mysql://kestra@{host}:{port}/postgres", "not a database URL kestractl knows"),
    ],
)
def test_a_wrong_database_is_one_line_without_the_password(
    tmp_path: Path,
    postgres: Postgres,  # noqa: F811
    url: str,
    said: str,
) -> None:
    cli = Cli(tmp_path / "home", url.format(host=postgres.host, port=postgres.port))
    for command in (("flow", "list"), ("executions", "list"), ("server", "standalone", "--port", "0")):
        line = _one_line(cli, *command)
        assert said in line and "k3stra-pw" not in line, line


def test_a_user_without_rights_is_told_what_to_grant(tmp_path: Path, role: Postgres) -> None:
    line = _one_line(Cli(tmp_path / "home", role.url), "flow", "list")
    assert "permission denied for schema public" in line and "grant the user" in line, line


def test_servers_starting_together_migrate_a_new_database_once(database: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(database).close()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT version FROM kestractl_schema").fetchall() == [(len(MIGRATIONS),)]


def test_the_server_answers_503_when_the_database_refuses_a_query(
    tmp_path: Path, role: Postgres, database: str
) -> None:
    """A user that may read everything but the logs: the logs search is a 503 JSON naming what is missing (not a
    500, not a traceback), and the server goes on serving the rest."""
    from kestractl.config import Home
    from kestractl.server.app import ServerOptions, StandaloneServer

    open_store(database).close()  # the schema, made by its owner
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role.user}")
        conn.execute(f"REVOKE ALL ON logs FROM {role.user}")
    options = ServerOptions(port=0, grace_seconds=2, tick_seconds=0.05, workers=2, database=role.url)
    server = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    api = f"http://127.0.0.1:{server.port}/api/v1/main"
    try:
        status, body = _get(f"{api}/logs/search")
        assert status == 503 and "permission denied for table logs" in str(body["message"]), body
        assert "pw@" not in str(body["message"])
        assert _get(f"{api}/executions/search")[0] == 200
    finally:
        server.stop_event.set()
        thread.join(15)
    assert not thread.is_alive()


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.skipif(not CONFORMANCE.exists(), reason="the conformance suite is not on this machine")
def test_conformance_cases_pass_on_postgresql(database: str) -> None:
    """A sample of Kestra's own flows through the CLI on PostgreSQL (the whole suite is run by hand: ~55 s)."""
    cases = "full,inputs,each-parallel,each-sequential-nested,dag,allow-failure,subflow-ok,subflow-failed,"
    cases += "for-each-item-outputs,for-each-item-failed,pause-then-resume,pause-timeout,restart-last-failed"
    kestractl = str(Path(sys.executable).parent / "kestractl")
    done = subprocess.run(
        [sys.executable, str(CONFORMANCE), "--kestractl", kestractl, "--only", cases],
        env={**os.environ, "KESTRACTL_DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert last == "conformance: 13/13 cases pass", done.stdout + done.stderr


def test_psycopg_is_imported_only_for_a_postgresql_url(tmp_path: Path) -> None:
    """The SQLite default pays nothing for PostgreSQL: `flow list` on a home does not import psycopg."""
    code = (
        "import sys; from kestractl.cli.app import main\n"
        "try: main(['--home', sys.argv[1], 'flow', 'list'])\n"
        "except SystemExit as exit: assert not exit.code, exit.code\n"
        "assert 'psycopg' not in sys.modules and 'kestractl.store.postgres' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
