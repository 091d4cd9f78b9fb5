"""The PostgreSQL store (`--database postgresql://user:pass@host:5432/db`): the same queries as SQLite's (see
`Dialect`), through psycopg 3, imported only when such a URL is given. One connection per thread, taken from the
idle ones when there are, handed back when the thread ends (the server runs a thread per request)."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from kestractl.errors import StoreError
from kestractl.store.dialect import POSTGRES
from kestractl.store.part import Cursor
from kestractl.store.pg_schema import migrate
from kestractl.store.repository import SqlStore

# Idle connections kept for the next thread; more are closed.
IDLE_CONNECTIONS = 8
CONNECT_SECONDS = 10
# PostgreSQL's class of errors for a session it ended (57P01: a restart or pg_terminate_backend; 57P02: another
# backend crashed): a statement it answers with one did not happen.
ENDED_SESSION = "57P"
T = TypeVar("T")

# What the user can do about a failure, by a word of PostgreSQL's (or libpq's) message.
_ADVICE = [
    ("password", "check the user and password in the URL"),
    ("does not exist", "create the database (createdb) or fix the name in the URL"),
    ("permission denied", "grant the user the rights on the database and its schema, or use its owner"),
    ("must be owner", "grant the user the rights on the database and its schema, or use its owner"),
    ("refused", "is the server running and listening there?"),
    ("timeout", "is the server running and reachable from here?"),
    ("resolve host", "fix the host in the URL"),
    ("could not translate host name", "fix the host in the URL"),
    ("invalid", "the URL must look like postgresql://user:password@host:5432/database"),
]


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (a literal `%` doubled): the store's SQL is written once."""
    return sql.replace("%", "%%").replace("?", "%s")


def redacted(url: str) -> str:
    """The URL without its password, to name the database in a message."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)


def describe(url: str, exc: Exception) -> StoreError:
    """One line: the database, PostgreSQL's reason (its first line), and what to do about it."""
    reason = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    advice = next((text for word, text in _ADVICE if word in reason.lower()), "retry; if it persists, check the server")
    return StoreError(f"{redacted(url)}: {reason} ({advice})")


def open_connection(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS)
    except psycopg.Error as exc:
        raise describe(url, exc) from None


class PgConnection:
    """psycopg's connection as the store's queries use it: `?` placeholders, driver errors as one line, and a
    session PostgreSQL ended (a restart) replaced by a new one for a statement outside a transaction."""

    def __init__(self, raw: psycopg.Connection[Any], url: str) -> None:
        self.raw = raw
        self.url = url

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status not in (TransactionStatus.IDLE, TransactionStatus.UNKNOWN)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self._run(lambda: self.raw.execute(_placeholders(sql), parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        rows = list(parameters)

        def run() -> Cursor:
            cursor = self.raw.cursor()
            cursor.executemany(_placeholders(sql), rows)
            return cursor

        return self._run(run)

    def _run(self, statement: Callable[[], T]) -> T:
        """Run `statement`; if it met a session PostgreSQL had ended (every idle connection after a restart) and
        no transaction was open, it did not happen: once more on a new connection (the server may still be away:
        then a StoreError). Inside a transaction the caller's transaction fails (its work is not half-redone)."""
        alone = not self.in_transaction
        try:
            return statement()
        except psycopg.Error as exc:
            if not (alone and (exc.sqlstate or "").startswith(ENDED_SESSION)):
                raise describe(self.url, exc) from None
        self.raw.close()
        self.raw = open_connection(self.url)
        try:
            return statement()
        except psycopg.Error as exc:
            raise describe(self.url, exc) from None

    def close(self) -> None:
        self.raw.close()


class _Lease:
    """Hands a thread's connection back to the idle ones when the thread ends (its locals are dropped then)."""

    def __init__(self, store: PostgresStore, conn: PgConnection) -> None:
        self.store, self.conn = store, conn

    def __del__(self) -> None:
        self.store.release(self.conn)


class PostgresStore(SqlStore):
    """The repositories over one PostgreSQL database."""

    dialect = POSTGRES
    driver_errors = (psycopg.Error, StoreError)

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._idle: list[PgConnection] = []
        self._idle_lock = threading.Lock()
        try:
            migrate(self.conn.raw)
        except psycopg.Error as exc:
            self.close()
            raise self.error(exc) from None

    @property
    def conn(self) -> PgConnection:
        """The thread's connection, a new one if the server dropped it (a restart): the next call reconnects."""
        conn: PgConnection = super().conn  # type: ignore[assignment]
        if conn.raw.broken and not self._local.depth:
            self._local.conn = None
            return self.conn
        return conn

    def connect(self) -> PgConnection:
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = PgConnection(open_connection(self.url), self.url)
        self._local.lease = _Lease(self, conn)
        return conn

    def release(self, conn: PgConnection) -> None:
        """Keep a thread's connection for the next one, unless it is unusable or enough are kept."""
        with self._idle_lock:
            usable = not (conn.raw.closed or conn.raw.broken or conn.in_transaction)
            if usable and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def error(self, exc: Exception) -> StoreError:
        return exc if isinstance(exc, StoreError) else describe(self.url, exc)

    def close(self) -> None:
        """Close the calling thread's connection and the idle ones."""
        self._local.lease = None
        super().close()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
