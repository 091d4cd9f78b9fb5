"""`store_url`: each test that takes it runs twice, on a SQLite file and on a fresh database of the throwaway
PostgreSQL cluster (tests/services/postgres.py), so the store's queries are proven on both dialects.

Import both fixtures into a test module: `from tests.services.stores import postgres, store_url`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.services.postgres import Postgres, postgres  # noqa: F401  (the session fixture)

__all__ = ["fresh_database", "postgres", "store_url"]


def fresh_database(server: Postgres) -> Iterator[str]:
    """A new, empty database on `server` (its URL), dropped afterwards."""
    import psycopg

    name = f"k_{uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield Postgres(server.host, server.port, database=name).url
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store is: a SQLite file's path, or a `postgresql://` URL of an empty database."""
    if request.param == "sqlite":
        yield str(tmp_path / "kestractl.db")
        return
    yield from fresh_database(request.getfixturevalue("postgres"))
