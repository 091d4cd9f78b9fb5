"""The base of the store's parts (searches, the UI's views, the repository): the store gives them the connection
of the calling thread and the dialect of its database, so each query is written once for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kestractl.store.dialect import Dialect

# How long a writer waits for the database (or for this process's other writers) before giving up.
BUSY_SECONDS = 30
# Ids bound in one `IN (…)` query, well under SQLite's limit on parameters.
MAX_PARAMETERS = 500


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Cursor(Protocol):
    """What the queries use of a DB-API cursor (sqlite3's and psycopg's both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection taking SQLite's `?` placeholders (PostgreSQL's is wrapped to translate them)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


class StorePart:
    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def conn(self) -> Connection: ...

        def transaction(self) -> AbstractContextManager[Connection]: ...
