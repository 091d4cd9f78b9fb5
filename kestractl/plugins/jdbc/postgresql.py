"""PostgreSQL `Query` and `Queries` (Kestra's `plugin-jdbc-postgres`) over psycopg 3, imported when a task runs
(`pip install 'kestractl[postgres]'`).

`url` is Kestra's `jdbc:postgresql://host:port/database?user=…&sslmode=…` or a libpq URL (`postgresql://…`).
Cells as `PostgresCellConverter` gives them: `timestamptz` in `timeZoneId`, `timestamp` local, `timetz` as a
local time in that zone, `interval` as `P1Y2M3DT4H5M6S`, `json`/`jsonb` parsed, arrays as lists, `bytea` as
bytes, `uuid` and other types as text, `numeric` as decimals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit
from uuid import uuid4
from zoneinfo import ZoneInfo

from kestractl.plugin import Prop, TaskError, plain, register
from kestractl.plugins.jdbc.base import JdbcQueries, JdbcQuery, QueryContext, Record, Session

if TYPE_CHECKING:
    import psycopg

SSL_MODES = ("DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL")
CONNECT_TIMEOUT = 10
# JDBC URL options and the libpq keyword each one is.
URL_OPTIONS = {
    "user": "user",
    "password": "password",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "sslcert": "sslcert",
    "sslkey": "sslkey",
    "sslpassword": "sslpassword",
    "applicationname": "application_name",
    "connecttimeout": "connect_timeout",
    "options": "options",
}
# Statements a server-side cursor can stream (DECLARE … CURSOR FOR takes only these).
STREAMABLE = re.compile(r"\s*\(*\s*(SELECT|VALUES|TABLE|WITH)\b", re.IGNORECASE)
MODIFYING = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
INTERVAL_PART = re.compile(r"(-?\d+) (year|mon|day)s?|(-?)(\d+):(\d+):(\d+)")


def libpq_options(url: str) -> dict[str, Any]:
    """The libpq keywords of a JDBC or libpq URL (`jdbc:postgresql://h:p/db?ssl=true` → host, port, dbname …)."""
    text = url.strip().removeprefix("jdbc:")
    if text.startswith("postgresql:") and not text.startswith("postgresql://"):
        text = "postgresql://localhost/" + text.removeprefix("postgresql:")  # jdbc:postgresql:database
    if not text.startswith(("postgresql://", "postgres://")):
        raise TaskError(f"url: `{url}` is not a PostgreSQL URL (jdbc:postgresql://host:port/database)")
    try:
        parts = urlsplit(text)
        options: dict[str, Any] = {"host": parts.hostname or "localhost", "port": parts.port or 5432}
    except ValueError as err:
        raise TaskError(f"url: `{url}`: {err}") from None
    user, password = (unquote(part) if part else None for part in (parts.username, parts.password))
    options.update(dbname=unquote(parts.path.lstrip("/")) or None, user=user, password=password)
    for key, value in parse_qsl(parts.query):
        options.update(_url_option(key.lower(), value))
    return {key: value for key, value in options.items() if value is not None}


def _url_option(key: str, value: str) -> dict[str, Any]:
    if key == "ssl":
        return {"sslmode": "require"} if value.lower() == "true" else {}
    if key == "currentschema":
        return {"options": f"-c search_path={value}"}
    return {URL_OPTIONS[key]: value} if key in URL_OPTIONS else {}


def _interval(text: str) -> str:
    """PostgreSQL's interval text (`1 year 2 mons 3 days 04:05:06.5`) as Kestra writes it: `P1Y2M3DT4H5M6S`."""
    found = {"year": 0, "mon": 0, "day": 0}
    hours = minutes = seconds = 0
    for match in INTERVAL_PART.finditer(text):
        if match.group(2):
            found[match.group(2)] = int(match.group(1))
        else:
            sign = -1 if match.group(3) else 1
            hours, minutes, seconds = (sign * int(match.group(i)) for i in (4, 5, 6))
    return f"P{found['year']}Y{found['mon']}M{found['day']}DT{hours}H{minutes}M{seconds}S"


def cell(value: Any, zone: ZoneInfo) -> Any:
    """One value as Kestra's PostgreSQL converter gives it (zoned times in `timeZoneId`)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(zone)
    if isinstance(value, time) and value.tzinfo is not None:
        return datetime.combine(date(1970, 1, 1), value).astimezone(zone).time()
    if isinstance(value, list | tuple):
        return [cell(item, zone) for item in value]
    if isinstance(value, dict):
        return {str(key): cell(item, zone) for key, item in value.items()}
    return plain(value)


def _records(cursor: psycopg.Cursor[Any], zone: ZoneInfo, size: int) -> Iterator[Record]:
    names = [column.name for column in cursor.description or []]
    while rows := cursor.fetchmany(size):
        for row in rows:
            yield {name: None if value is None else cell(value, zone) for name, value in zip(names, row, strict=True)}


def _connect(options: dict[str, Any]) -> psycopg.Connection[Any]:
    """A psycopg connection in auto-commit, reading intervals as Kestra writes them."""
    import psycopg  # here: only a flow that runs a PostgreSQL task pays for it
    from psycopg.adapt import Loader

    class IntervalLoader(Loader):
        def load(self, data: Any) -> str:
            return _interval(bytes(data).decode())

    con = psycopg.connect(**{"connect_timeout": CONNECT_TIMEOUT, **options}, autocommit=True)
    con.adapters.register_loader("interval", IntervalLoader)
    return con


class PostgresSession(Session):
    """A psycopg connection."""

    def __init__(self, zone: ZoneInfo, fetch_size: int, con: psycopg.Connection[Any]) -> None:
        super().__init__(zone, fetch_size, psycopg_errors())
        self.con = con

    def placeholder(self, name: str) -> str:
        return "%s"

    def prepare(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def adapt(self, value: Any) -> Any:
        if isinstance(value, dict):
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return value

    def set_autocommit(self, on: bool) -> None:
        self.con.autocommit = on

    def execute(self, sql: str, params: list[Any] | None, mode: str) -> Iterator[Record] | None:
        if mode == "STORE" and STREAMABLE.match(sql) and not MODIFYING.search(sql):
            return self._stream(sql, params)
        cursor = self.con.cursor()
        cursor.execute(sql, params)
        return None if cursor.description is None else _records(cursor, self.zone, self.fetch_size)

    def _stream(self, sql: str, params: list[Any] | None) -> Iterator[Record]:
        """A server-side cursor, `fetchSize` rows at a time: a stored result never sits in memory whole."""
        with self.con.transaction(), self.con.cursor(name=f"kestractl_{uuid4().hex}") as cursor:
            cursor.itersize = self.fetch_size
            cursor.execute(sql, params)
            yield from _records(cursor, self.zone, self.fetch_size)

    def commit(self) -> None:
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def interrupt(self) -> None:
        self.con.cancel_safe()

    def close(self) -> None:
        self.con.close()


class PostgresConnection:
    """Kestra's `PostgresConnectionInterface`: the SSL properties, and the connection they make."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "ssl": Prop("Connect with SSL (`sslmode: require` unless `sslMode` says otherwise).", type="boolean"),
        "sslMode": Prop("The SSL mode.", type="string", values=SSL_MODES),
        "sslRootCert": Prop("The CA certificate the server's must be signed by (PEM text).", type="string"),
        "sslCert": Prop("The client certificate (PEM text).", type="string"),
        "sslKey": Prop("The client certificate's key (PEM text).", type="string"),
        "sslKeyPassword": Prop("The client key's password.", type="string"),
    }

    def connection_options(self, ctx: QueryContext) -> dict[str, Any]:
        """libpq keywords from `url`, `username`, `password` and the SSL properties."""
        url = ctx.prop("url")
        if not url:
            raise TaskError("url: required")
        options = libpq_options(url)
        for key, prop in (("user", "username"), ("password", "password"), ("sslpassword", "sslKeyPassword")):
            if ctx.prop(prop) is not None:
                options[key] = ctx.prop(prop)
        if ctx.prop("ssl"):
            options.setdefault("sslmode", "require")
        if ctx.prop("sslMode"):
            options["sslmode"] = ctx.prop("sslMode").lower().replace("_", "-")
        for key, prop in (("sslrootcert", "sslRootCert"), ("sslcert", "sslCert"), ("sslkey", "sslKey")):
            if ctx.prop(prop):
                options[key] = str(_pem_file(ctx, prop, ctx.prop(prop)))
        return options

    def connect_postgres(self, ctx: QueryContext) -> psycopg.Connection[Any]:
        options = self.connection_options(ctx)
        try:
            return _connect(options)
        except ImportError:
            raise TaskError("PostgreSQL tasks need psycopg: pip install 'kestractl[postgres]'") from None


def psycopg_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


def _pem_file(ctx: QueryContext, name: str, text: str) -> Path:
    """libpq reads certificates from files: the PEM text goes into one only this user can read."""
    path = ctx.working_directory() / f"{name}.pem"
    path.write_text(text)
    path.chmod(0o600)
    return path


class _PostgresQuery(PostgresConnection, JdbcQuery):
    label = "PostgreSQL"
    required = ("url",)

    @classmethod
    def driver_errors(cls) -> tuple[type[BaseException], ...]:
        return psycopg_errors()

    def connect(self, ctx: QueryContext, zone: ZoneInfo) -> Session:
        return PostgresSession(zone, self.fetch_size(ctx), self.connect_postgres(ctx))


@register
class Query(_PostgresQuery):
    """Run one SQL statement on PostgreSQL; its rows are fetched, stored or ignored as `fetchType` says."""

    type_name = "io.kestra.plugin.jdbc.postgresql.Query"


@register
class Queries(_PostgresQuery, JdbcQueries):
    """Run several SQL statements on PostgreSQL, in one transaction unless `transaction: false`."""

    type_name = "io.kestra.plugin.jdbc.postgresql.Queries"
