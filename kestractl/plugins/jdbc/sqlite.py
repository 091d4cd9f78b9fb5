"""SQLite `Query` and `Queries` (Kestra's `plugin-jdbc-sqlite`) with the standard library's sqlite3: a user's
database file, not kestractl's own state.

`url` `jdbc:sqlite:` (default: in memory) or `jdbc:sqlite:/path/to/file.db` (a relative path is looked up in the
working directory first, as Kestra does); `sqliteFile` a `kestra://` database copied into the working directory;
`outputDbFile: true` stores the database file afterwards (output `databaseUri`). Cells as `SqliteCellConverter`
gives them, by the column's declared type: DATE a date, DATETIME/TIMESTAMP an instant (text without an offset
is read in `timeZoneId`; a number is epoch milliseconds), TIME a local time; others as stored.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

from kestractl.plugin import Prop, RunContext, TaskError, register
from kestractl.plugins.jdbc.base import JdbcQueries, JdbcQuery, QueryContext, Record, Session, stored_file

if TYPE_CHECKING:
    import sqlite3

PREFIX = "jdbc:sqlite:"
MEMORY = ("", ":memory:")
DECLARED = ("DATE", "DATETIME", "TIMESTAMP", "TIME")


class Declared(NamedTuple):
    """A cell of a DATE/DATETIME/TIMESTAMP/TIME column, as sqlite3 hands it over (converted with the zone later)."""

    kind: str
    text: str


def _register_converters(sqlite: Any) -> None:
    """sqlite3 names a column's declared type only to converters (registered process-wide; kestractl's own store
    never asks for them)."""
    for kind in DECLARED:
        sqlite.register_converter(kind, lambda raw, kind=kind: Declared(kind, raw.decode()))


def _instant(text: str, zone: ZoneInfo) -> datetime:
    try:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    except ValueError:
        pass
    value = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


def cell(value: Any, zone: ZoneInfo) -> Any:
    """A DATE, DATETIME/TIMESTAMP or TIME column's text as its value; text that is none stays as stored."""
    if not isinstance(value, Declared):
        return value
    try:
        if value.kind == "DATE":
            return date.fromisoformat(value.text)
        if value.kind == "TIME":
            return time.fromisoformat(value.text)
        return _instant(value.text, zone)
    except ValueError:
        return value.text


def _records(cursor: sqlite3.Cursor, zone: ZoneInfo, size: int) -> Iterator[Record]:
    names = [str(column[0]) for column in cursor.description or []]
    while rows := cursor.fetchmany(size):
        for row in rows:
            yield {name: cell(value, zone) for name, value in zip(names, row, strict=True)}


class SqliteSession(Session):
    """A sqlite3 connection whose transactions we open and close ourselves."""

    def __init__(self, zone: ZoneInfo, fetch_size: int, database: str) -> None:
        import sqlite3

        super().__init__(zone, fetch_size, (sqlite3.Error,))
        _register_converters(sqlite3)
        self.con = sqlite3.connect(
            database, detect_types=sqlite3.PARSE_DECLTYPES, isolation_level=None, check_same_thread=False
        )
        self.autocommit = True

    def adapt(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            import json

            return json.dumps(value)
        return value

    def set_autocommit(self, on: bool) -> None:
        self.autocommit = on

    def execute(self, sql: str, params: list[Any] | None, mode: str) -> Iterator[Record] | None:
        if not self.autocommit and not self.con.in_transaction:
            self.con.execute("BEGIN")
        cursor = self.con.execute(sql, params or ())
        return None if cursor.description is None else _records(cursor, self.zone, self.fetch_size)

    def commit(self) -> None:
        if self.con.in_transaction:
            self.con.execute("COMMIT")

    def rollback(self) -> None:
        if self.con.in_transaction:
            self.con.execute("ROLLBACK")

    def interrupt(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        self.con.close()


class _SqliteQuery(JdbcQuery):
    label = "SQLite"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "url": Prop("`jdbc:sqlite:` (in memory) or `jdbc:sqlite:/path/to/file.db`.", type="string", default=PREFIX),
        "sqliteFile": Prop("A kestra:// SQLite database file to open (copied into the working directory).", "string"),
        "outputDbFile": Prop("Store the database file afterwards, as output `databaseUri`.", "boolean", default=False),
    }
    outputs = {"databaseUri": "With `outputDbFile`: the database file in internal storage."}

    @classmethod
    def driver_errors(cls) -> tuple[type[BaseException], ...]:
        import sqlite3

        return (sqlite3.Error,)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        database = self._database(ctx)
        if ctx.prop("sqliteFile") is not None:
            shutil.copyfile(stored_file(ctx, ctx.prop("sqliteFile"), "sqliteFile"), database)
        outputs = super().run(ctx)
        if ctx.prop("outputDbFile"):
            outputs["databaseUri"] = ctx.put_file(Path(database))
        return outputs

    def connect(self, ctx: QueryContext, zone: ZoneInfo) -> Session:
        return SqliteSession(zone, self.fetch_size(ctx), self._database(ctx))

    def _database(self, ctx: QueryContext) -> str:
        """The file sqlite3 opens: the `url`'s, or in the working directory for `sqliteFile` and `outputDbFile`
        (an in-memory database becomes a file there), else `:memory:`."""
        url = str(ctx.prop("url"))
        if not url.startswith(PREFIX):
            raise TaskError(f"url: `{url}` is not a SQLite JDBC URL (jdbc:sqlite:…)")
        path = url.removeprefix(PREFIX)
        if ctx.prop("sqliteFile") is None and not ctx.prop("outputDbFile"):
            return ":memory:" if path in MEMORY else self._local(ctx, path)
        return str(ctx.working_directory() / (Path(path).name if path not in MEMORY else "database.sqlite"))

    def _local(self, ctx: QueryContext, path: str) -> str:
        """A relative file name is the working directory's file when it exists there (Kestra's rule)."""
        candidate = ctx.working_directory() / path
        return str(candidate) if not Path(path).is_absolute() and candidate.exists() else path


@register
class Query(_SqliteQuery):
    """Run one SQL statement on a SQLite database."""

    type_name = "io.kestra.plugin.jdbc.sqlite.Query"


@register
class Queries(_SqliteQuery, JdbcQueries):
    """Run several SQL statements on a SQLite database, in one transaction unless `transaction: false`."""

    type_name = "io.kestra.plugin.jdbc.sqlite.Queries"
