"""MySQL / MariaDB `Query` and `Queries` (Kestra's `plugin-jdbc-mysql`) over PyMySQL, a pure-Python driver
imported when a task runs (`pip install 'kestractl[mysql]'`).

`url` is Kestra's `jdbc:mysql://host:port/database?user=…&password=…` (`jdbc:mariadb://` and `mysql://` too).
Cells as `MysqlCellConverter` gives them: DATETIME a local date-time, TIMESTAMP an instant (the session reads
it in UTC), TIME a local time, DATE a date, DECIMAL a decimal, JSON parsed, others as the driver gives them.
A stored result (STORE) is read with an unbuffered cursor, so it never sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

from kestractl.plugin import TaskError, plain, register
from kestractl.plugins.jdbc.base import JdbcQueries, JdbcQuery, QueryContext, Record, Session

if TYPE_CHECKING:
    import pymysql

SCHEMES = ("mysql://", "mariadb://")
CONNECT_TIMEOUT = 10
# MySQL's column type codes (pymysql.constants.FIELD_TYPE) that need Kestra's conversion.
TIMESTAMP, DATETIME, TIME, JSON = 7, 12, 11, 245


def connection_options(url: str) -> dict[str, Any]:
    """PyMySQL's keywords from a JDBC or plain URL (`jdbc:mysql://h:3306/db?user=u` → host, port, database …)."""
    text = url.strip().removeprefix("jdbc:")
    if not text.startswith(SCHEMES):
        raise TaskError(f"url: `{url}` is not a MySQL URL (jdbc:mysql://host:port/database)")
    try:
        parts = urlsplit(text)
        options: dict[str, Any] = {"host": parts.hostname or "localhost", "port": parts.port or 3306}
    except ValueError as err:
        raise TaskError(f"url: `{url}`: {err}") from None
    query = dict(parse_qsl(parts.query))
    options.update(
        database=unquote(parts.path.lstrip("/")) or None,
        user=unquote(parts.username or "") or query.get("user"),
        password=unquote(parts.password or "") or query.get("password"),
    )
    return {key: value for key, value in options.items() if value is not None}


def _time(value: timedelta) -> Any:
    """TIME comes as a duration; within a day it is the local time Kestra gives, else its ISO duration."""
    if timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    return plain(value)


CONVERTERS: dict[int, Callable[[Any], Any]] = {
    TIMESTAMP: lambda value: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value,
    TIME: lambda value: _time(value) if isinstance(value, timedelta) else value,
    JSON: lambda value: json.loads(value) if isinstance(value, str | bytes) else value,
}


def _records(cursor: pymysql.cursors.Cursor, size: int) -> Iterator[Record]:
    description = cursor.description or ()
    names = [str(column[0]) for column in description]
    converters = [CONVERTERS.get(int(column[1]), plain) for column in description]
    while rows := cursor.fetchmany(size):
        for row in rows:
            yield {
                name: None if value is None else convert(value)
                for name, convert, value in zip(names, converters, row, strict=True)
            }


class MySqlSession(Session):
    """A PyMySQL connection; a stop kills the running query from a second connection (`KILL QUERY`)."""

    def __init__(self, zone: ZoneInfo, fetch_size: int, options: dict[str, Any]) -> None:
        import pymysql  # here: only a flow that runs a MySQL task pays for it

        super().__init__(zone, fetch_size, (pymysql.MySQLError,))
        self.pymysql = pymysql
        self.options = {"connect_timeout": CONNECT_TIMEOUT, **options, "init_command": "SET time_zone = '+00:00'"}
        self.con = pymysql.connect(**self.options, autocommit=True)

    def placeholder(self, name: str) -> str:
        return "%s"

    def prepare(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def adapt(self, value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict | list) else value

    def set_autocommit(self, on: bool) -> None:
        self.con.autocommit(on)

    def execute(self, sql: str, params: list[Any] | None, mode: str) -> Iterator[Record] | None:
        cursor = self.con.cursor(self.pymysql.cursors.SSCursor if mode == "STORE" else None)
        cursor.execute(sql, params)
        return None if cursor.description is None else _records(cursor, self.fetch_size)

    def commit(self) -> None:
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def interrupt(self) -> None:
        with self.pymysql.connect(**self.options) as killer, killer.cursor() as cursor:
            thread: int = self.con.thread_id()  # type: ignore[no-untyped-call]  # untyped in types-PyMySQL
            cursor.execute(f"KILL QUERY {int(thread)}")

    def close(self) -> None:
        self.con.close()


class _MySqlQuery(JdbcQuery):
    label = "MySQL"
    required = ("url",)

    @classmethod
    def driver_errors(cls) -> tuple[type[BaseException], ...]:
        try:
            import pymysql
        except ImportError:
            return ()
        return (pymysql.MySQLError,)

    @staticmethod
    def describe(error: BaseException) -> str:
        """PyMySQL's `(code, "message")` as its message."""
        return str(error.args[1]) if len(error.args) == 2 else str(error)

    def connect(self, ctx: QueryContext, zone: ZoneInfo) -> Session:
        options = connection_options(str(ctx.prop("url")))
        for key, prop in (("user", "username"), ("password", "password")):
            if ctx.prop(prop) is not None:
                options[key] = ctx.prop(prop)
        try:
            return MySqlSession(zone, self.fetch_size(ctx), options)
        except ImportError:
            raise TaskError("MySQL tasks need PyMySQL: pip install 'kestractl[mysql]'") from None


@register
class Query(_MySqlQuery):
    """Run one SQL statement on MySQL or MariaDB."""

    type_name = "io.kestra.plugin.jdbc.mysql.Query"


@register
class Queries(_MySqlQuery, JdbcQueries):
    """Run several SQL statements on MySQL or MariaDB, in one transaction unless `transaction: false`."""

    type_name = "io.kestra.plugin.jdbc.mysql.Queries"
