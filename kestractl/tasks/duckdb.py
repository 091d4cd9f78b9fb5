"""DuckDB `Query` and `Queries` (Kestra's `plugin-jdbc-duckdb`), run in-process with the `duckdb` package.

Follows `AbstractJdbcQuery` / `AbstractJdbcQueries` and `duckdb.Query`:
- `fetchType` STORE | FETCH | FETCH_ONE | NONE (default NONE); the deprecated booleans win in Kestra's order
  `fetch` > `fetchOne` > `store`. Outputs: STORE → `uri` (an ION file, one row per line, see `kestractl.ion`)
  and `size`; FETCH → `rows` and `size`; FETCH_ONE → `row` (null when there is none) and `size` (0 or 1);
  metric counter `fetch.size` tagged `fetch`/`store`. A statement that returns no rows gives no row outputs.
- `inputFiles` (map, or a JSON map as text) are written into the working directory, `{{ workingDir }}` is its
  path and DuckDB's `file_search_path` points there, so `read_csv_auto('orders.csv')` finds the file too.
- `outputFiles` names become `{{ outputFiles.<name> }}` paths, stored afterwards (output `outputFiles`);
  `outputDbFile: true` stores the database file (output `databaseUri`).
- `url` (default `jdbc:duckdb:`, in memory; `jdbc:duckdb:/abs/file.db` a file) and `databaseUri` (a
  `kestra://` database file copied into the working directory; a `jdbc:duckdb:` URL there is taken as `url`).
- Cells as Kestra's `DuckDbCellConverter` gives them: TIMESTAMP in `timeZoneId` (default: DuckDB's TimeZone,
  the machine's zone, as Kestra uses the JVM's), TIMESTAMPTZ in UTC, JSON parsed, HUGEINT/UBIGINT as text.

Where we differ: Kestra ≥ 0.19's `Query` refuses several statements; older Kestra (and the seed flows) ran
them all through DuckDB's JDBC driver, which returns the last statement's rows. We do that, so `Query` runs
every statement and the last one's rows are the result; `Queries` gives `outputs`, one per statement with rows.
Kestra's default `communityExtensions: [ion]` (downloaded per run) is not installed here: offline it would
cost every run a network attempt. `parameters` and `afterSQL` are not supported.

Offline: DuckDB downloads extensions on `INSTALL`/`LOAD` and when a query reads a remote URL. Before such a
statement we probe the extension repository (3 s at most); unreachable, the task fails at once with one line
(`DuckDB could not download the httpfs extension: no network access (…)`) instead of DuckDB's own attempt,
whose length depends on how the network fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kestractl import ion
from kestractl.errors import TaskError
from kestractl.model import new_id
from kestractl.rows import FETCH_OUTPUTS, FETCH_PROPERTIES, fetch_metric, fetch_outputs, plain
from kestractl.tasks.base import Killed, RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.workingdir import string_list as _as_list
from kestractl.tasks.workingdir import strings_problems, type_problems, write_input_files
from kestractl.tasks.workingdir import text_value as _text

if TYPE_CHECKING:
    import duckdb

JDBC_PREFIX = "jdbc:duckdb:"
NETWORK_TIMEOUT = 3.0
STOP_POLL_SECONDS = 0.1
CORE_REPOSITORY = "http://extensions.duckdb.org"
REPOSITORIES = {
    "core": CORE_REPOSITORY,
    "community": "http://community-extensions.duckdb.org",
    "core_nightly": "http://nightly-extensions.duckdb.org",
}
EXTENSION_STATEMENT = re.compile(
    r"\s*(?:FORCE\s+)?(?:INSTALL|LOAD)\s+['\"]?(\w+)['\"]?(?:\s+FROM\s+(\S+?))?\s*;?\s*$", re.IGNORECASE
)
REMOTE_PATH = re.compile(r"'(?:https?|s3a?|s3n|gcs|gs|r2|hf|az|azure|abfss)://", re.IGNORECASE)
DOWNLOAD_FAILED = re.compile(r'Failed to download extension "(\w+)" at URL "([^"]+)"')
NOT_INSTALLED = re.compile(r'Install it first using "INSTALL (\w+)"')
NETWORK_WORDS = re.compile(r"connect|resolve|timed? ?out|network|unreachable", re.IGNORECASE)
PLAIN_TYPES = frozenset(
    "BOOLEAN TINYINT SMALLINT INTEGER BIGINT UTINYINT USMALLINT UINTEGER FLOAT DOUBLE VARCHAR DATE TIME BLOB".split()
)
NAIVE_TIMESTAMPS = frozenset({"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})
BIG_INTEGERS = frozenset({"HUGEINT", "UHUGEINT", "UBIGINT"})

Converter = Callable[[Any], Any]


# ------------------------------------------------------------------------------------------ offline checks


def _probe(url: str) -> str | None:
    """Why the host behind `url` (or the HTTP proxy DuckDB would use) is unreachable, or None when it answers.

    Runs in a thread so a resolver that hangs cannot hold the task longer than NETWORK_TIMEOUT.
    """
    parts = urlsplit(os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY") or url)
    host = parts.hostname
    if not host:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=NETWORK_TIMEOUT).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(f"{host}: {err.strerror or err}")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(NETWORK_TIMEOUT)
    return outcome[0] if outcome else f"{host}: no answer within {NETWORK_TIMEOUT:g}s"


def _no_network(extension: str, reason: str) -> str:
    return f"DuckDB could not download the {extension} extension: no network access ({reason})"


def one_line(message: str, offline: str | None = None) -> str:
    """DuckDB's error as one line: a failed extension download says so; else its lines joined, carets dropped."""
    download = DOWNLOAD_FAILED.search(message)
    if download:
        cause = re.search(r"\(ERROR ([^)]*)\)", message)
        reason = f"{urlsplit(download.group(2)).hostname}: {cause.group(1) if cause else 'download failed'}"
        if cause is None or NETWORK_WORDS.search(cause.group(1)):
            return _no_network(download.group(1), reason)
        return f"DuckDB could not download the {download.group(1)} extension ({reason})"
    missing = NOT_INSTALLED.search(message)
    if missing and offline:
        return _no_network(missing.group(1), offline)
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and set(line) != {"^"})


# ------------------------------------------------------------------------------------------ the connection


class _Session:
    """One DuckDB connection for one task run: offline pre-checks, kill → interrupt, errors as one line."""

    def __init__(self, ctx: RunContext, database: str) -> None:
        import duckdb  # here, not at module level: `kestractl` start-up stays lean

        self.error_type: type[Exception] = duckdb.Error
        self.ctx = ctx
        self.offline: str | None = None
        self._probes: dict[str, str | None] = {}
        self._done = threading.Event()
        with self.errors():
            self.con: duckdb.DuckDBPyConnection = duckdb.connect(database)
        threading.Thread(target=self._watch_stop, daemon=True).start()

    def _watch_stop(self) -> None:
        """A kill or a timeout interrupts the running statement (DuckDB releases the GIL while it works)."""
        while not self._done.wait(STOP_POLL_SECONDS):
            if self.ctx.stop.is_set():
                self.con.interrupt()
                return

    def close(self) -> None:
        self._done.set()
        self.con.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """DuckDB's exceptions become a one-line `TaskError` (or `Killed` when the run was stopped)."""
        try:
            yield
        except self.error_type as err:
            if self.ctx.stop.is_set():
                raise Killed() from None
            raise TaskError(one_line(str(err), self.offline)) from None

    def setting(self, name: str) -> str:
        row = self.con.execute("SELECT current_setting(?)", [name]).fetchone()
        return str(row[0]) if row and row[0] is not None else ""

    def execute(self, statement: duckdb.Statement) -> duckdb.DuckDBPyConnection:
        self._guard(statement.query)
        return self.con.execute(statement)

    def _guard(self, query: str) -> None:
        """Fail fast, before DuckDB tries a download the network cannot serve."""
        extension = EXTENSION_STATEMENT.match(query)
        if extension and not self._installed(extension.group(1)):
            url = self._repository(extension.group(2))
            reason = self._reach(url) if url else None
            if reason:
                raise TaskError(_no_network(extension.group(1).lower(), reason))
        elif REMOTE_PATH.search(query) and not self._installed("httpfs") and self.offline is None:
            self.offline = self._reach(self._repository(None) or CORE_REPOSITORY)
            if self.offline:  # DuckDB would try to install httpfs: let it fail at once, if it needs it at all
                self.con.execute("SET autoinstall_known_extensions = false")

    def _installed(self, name: str) -> bool:
        sql = (
            "SELECT count(*) FROM duckdb_extensions()"
            " WHERE (installed OR loaded) AND list_contains(aliases || [extension_name], ?)"
        )
        row = self.con.execute(sql, [name.lower()]).fetchone()
        return bool(row and row[0])

    def _repository(self, source: str | None) -> str | None:
        """The URL an extension comes from; None for a local folder or a repository we cannot place."""
        if source is None:
            return self.setting("custom_extension_repository") or CORE_REPOSITORY
        source = source.strip("'\"")
        if source.lower() in REPOSITORIES:
            return REPOSITORIES[source.lower()]
        return source if source.lower().startswith(("http://", "https://")) else None

    def _reach(self, url: str) -> str | None:
        if url not in self._probes:
            self._probes[url] = _probe(url)
        return self._probes[url]


@contextmanager
def _session(ctx: RunContext, database: str) -> Iterator[_Session]:
    session = _Session(ctx, database)
    try:
        with session.errors():
            yield session
    finally:
        session.close()


# ------------------------------------------------------------------------------------------ cells


def _offset_datetime(value: datetime) -> ion.Annotated:
    """TIMESTAMPTZ: Kestra writes a UTC `OffsetDateTime` (an annotated string in ION)."""
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):  # ±infinity
        pass
    return ion.Annotated("OffsetDateTime", ion.java_offset_datetime(value))


def _converter(type_name: str, zone: ZoneInfo) -> Converter | None:
    """How one column's values become Kestra's values; None when DuckDB's Python value already is."""
    if type_name in PLAIN_TYPES or type_name.startswith(("DECIMAL", "ENUM")):
        return None
    if type_name in NAIVE_TIMESTAMPS:
        return lambda value: value.replace(tzinfo=zone)
    if type_name == "TIMESTAMP WITH TIME ZONE":
        return _offset_datetime
    if type_name == "JSON":
        return json.loads
    if type_name in BIG_INTEGERS:
        return str  # Kestra's cell converter returns a BigInteger's text
    return plain


def _convert(row: tuple[Any, ...], converters: list[Converter | None]) -> list[Any]:
    return [v if f is None or v is None else f(v) for f, v in zip(converters, row, strict=True)]


def _records(cursor: duckdb.DuckDBPyConnection, fetch: _Fetch) -> Iterator[dict[str, Any]]:
    """The result's rows as maps, fetched `fetchSize` rows at a time so no result sits in memory whole."""
    description = cursor.description or []
    columns = [str(column[0]) for column in description]
    converters = [_converter(str(column[1]), fetch.zone) for column in description]
    as_is = all(converter is None for converter in converters)
    while rows := cursor.fetchmany(fetch.size):
        if fetch.ctx.stop.is_set():
            raise Killed()
        for row in rows:
            yield dict(zip(columns, row if as_is else _convert(row, converters), strict=True))


# ------------------------------------------------------------------------------------------ results


@dataclass
class _Fetch:
    """How a statement's rows are returned (Kestra's `fetchType`) and where."""

    mode: str
    zone: ZoneInfo
    size: int
    ctx: RunContext

    def outputs(self, cursor: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], int]:
        """The outputs for one result (`row`, `rows` or `uri`, with `size`) and its row count."""
        fetch = replace(self, size=1) if self.mode == "FETCH_ONE" else self
        return fetch_outputs(self.ctx, self.mode, _records(cursor, fetch))


def _returns_rows(statement: duckdb.Statement, cursor: duckdb.DuckDBPyConnection) -> bool:
    """Whether JDBC would see a result set: queries, and DML with RETURNING (not DuckDB's `Count`/`Success`)."""
    kinds = {kind.name for kind in statement.expected_result_type}
    if kinds == {"QUERY_RESULT"}:
        return True
    columns = [str(column[0]) for column in cursor.description or []]
    return "QUERY_RESULT" in kinds and columns not in (["Count"], ["Success"], [])


def _sql_literal(text: str) -> str:
    return text.replace("'", "''")


def _statements(session: _Session, sql: str) -> list[duckdb.Statement]:
    return list(session.con.extract_statements(sql))


# ------------------------------------------------------------------------------------------ files


def _create_output_files(workdir: Path, names: list[str], variables: dict[str, Any]) -> dict[str, Path]:
    """Kestra's `outputFiles`: an empty file per name, its path in `{{ outputFiles.<name> }}`."""
    paths: dict[str, Path] = {}
    for name in names:
        if name.startswith(("./", "..", "/")):
            raise TaskError(f"Invalid outputFile (only relative path is supported) for path '{name}'")
        fd, path = tempfile.mkstemp(prefix=f"{name}_", dir=workdir)
        os.close(fd)
        paths[name] = Path(path)
    if paths:
        variables["outputFiles"] = variables["temp"] = {name: str(path) for name, path in paths.items()}
    return paths


# ------------------------------------------------------------------------------------------ the tasks


@register
class Query(RunnableTask):
    """Run SQL in DuckDB; the last statement's rows are the result."""

    type_name = "io.kestra.plugin.jdbc.duckdb.Query"
    properties = {
        "sql": Prop("The SQL to run; the last statement's rows are the result.", type="string", required=True),
        "url": Prop(
            "The DuckDB JDBC URL (`jdbc:duckdb:` in memory, or a database file).", "string", default=JDBC_PREFIX
        ),
        "username": Prop("Ignored by DuckDB; accepted as in Kestra's JDBC tasks.", type="string"),
        "password": Prop("Ignored by DuckDB; accepted as in Kestra's JDBC tasks.", type="string"),
        "databaseUri": Prop("A kestra:// DuckDB database file to open.", type="string"),
        "outputDbFile": Prop("Store the database file as output `databaseUri`.", type="boolean", default=False),
        "inputFiles": Prop("Files to write into the working directory (name: text or kestra:// URI), or JSON text."),
        "outputFiles": Prop("Files of the working directory to store as `outputFiles` (a list, or one name)."),
        **FETCH_PROPERTIES,
        "timeZoneId": Prop("The time zone dates are read in (DuckDB's TimeZone by default).", type="string"),
    }
    outputs = {
        **FETCH_OUTPUTS,
        "outputFiles": "The stored `outputFiles`: name → `kestra://` URI.",
        "databaseUri": "The database file in internal storage (with `outputDbFile`).",
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The declarations' checks; `inputFiles` is a map or JSON text, `outputFiles` a list of names."""
        problems = super().validate(spec)
        problems += type_problems(spec, "inputFiles", (dict, str), "a map of file name to content")
        return problems + strings_problems(spec, "outputFiles")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        workdir = ctx.working_directory()
        variables: dict[str, Any] = {"workingDir": str(workdir)}
        if self.props.get("inputFiles") is not None:
            write_input_files(ctx, workdir, self.props["inputFiles"], variables)
        output_files = _create_output_files(workdir, _as_list(ctx.prop("outputFiles")), variables)
        database = self._database(ctx, workdir, variables)
        sql = _text(ctx.render(self.props["sql"], variables))
        mode = self._fetch_type(ctx)
        with _session(ctx, database) as session:
            session.con.execute(f"SET file_search_path = '{_sql_literal(str(workdir))}'")
            fetch = _Fetch(mode, self._zone(ctx, session), self._fetch_size(ctx), ctx)
            outputs, total = self.execute(session, _statements(session, sql), fetch)
        fetch_metric(ctx, mode, total)
        outputs["outputFiles"] = {name: ctx.put_file(path, name) for name, path in output_files.items()}
        if database != ":memory:" and ctx.prop("outputDbFile"):
            outputs["databaseUri"] = ctx.put_file(Path(database), Path(database).name)
        return outputs

    def execute(
        self, session: _Session, statements: list[duckdb.Statement], fetch: _Fetch
    ) -> tuple[dict[str, Any], int]:
        """Every statement runs; the last one's rows, if it has some, become the outputs."""
        for index, statement in enumerate(statements):
            cursor = session.execute(statement)
            if index == len(statements) - 1 and _returns_rows(statement, cursor):
                return fetch.outputs(cursor)
        return {}, 0

    def _fetch_type(self, ctx: RunContext) -> str:
        """Kestra's `renderFetchType`: the deprecated booleans first, then `fetchType` (default NONE)."""
        for key, mode in (("fetch", "FETCH"), ("fetchOne", "FETCH_ONE"), ("store", "STORE")):
            if ctx.prop(key):
                return mode
        return str(ctx.prop("fetchType"))

    def _fetch_size(self, ctx: RunContext) -> int:
        return max(int(ctx.prop("fetchSize")), 1)

    def _zone(self, ctx: RunContext, session: _Session) -> ZoneInfo:
        """`timeZoneId`, else DuckDB's TimeZone (the machine's zone, as Kestra falls back to the JVM's)."""
        name = ctx.prop("timeZoneId") or session.setting("TimeZone") or "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise TaskError(f"timeZoneId: unknown time zone `{name}`") from None

    def _database(self, ctx: RunContext, workdir: Path, variables: dict[str, Any]) -> str:
        """What `duckdb.connect` opens: `:memory:`, the `url`'s file, or a copy of `databaseUri`."""
        uri: str = ctx.prop("databaseUri") or ""
        url: str = ctx.prop("url")
        if uri.startswith(JDBC_PREFIX):
            uri, url = "", uri
        if uri:
            target = workdir / new_id()
            write_input_files(ctx, workdir, {target.name: uri}, variables)
            return str(target)
        if not url.startswith(JDBC_PREFIX):
            raise TaskError(f"url: `{url}` is not a DuckDB JDBC URL (jdbc:duckdb:…)")
        path = url[len(JDBC_PREFIX) :]
        if path in ("", ":memory:"):
            return str(workdir / f"{new_id()}.db") if ctx.prop("outputDbFile") else ":memory:"
        if path.startswith("md:"):
            return path
        if not Path(path).is_absolute():
            raise TaskError("The database file path is not valid (Path to database file must be absolute)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        variables["dbFilePath"] = path
        return path


@register
class Queries(Query):
    """Several statements, each with rows giving one entry of `outputs`; in one transaction by default."""

    type_name = "io.kestra.plugin.jdbc.duckdb.Queries"
    properties = {"transaction": Prop("Run every statement in one transaction.", type="boolean", default=True)}
    outputs = {
        "outputs": "One entry per statement that returns rows (`row`, `rows` or `uri`, with `size`).",
        "outputFiles": Query.outputs["outputFiles"],
        "databaseUri": Query.outputs["databaseUri"],
    }

    def execute(
        self, session: _Session, statements: list[duckdb.Statement], fetch: _Fetch
    ) -> tuple[dict[str, Any], int]:
        transaction = fetch.ctx.prop("transaction")
        if transaction:
            session.con.execute("BEGIN TRANSACTION")
        results, total = [], 0
        try:
            for statement in statements:
                cursor = session.execute(statement)
                if _returns_rows(statement, cursor):
                    output, size = fetch.outputs(cursor)
                    results.append(output)
                    total += size
        except BaseException:
            if transaction:
                with contextlib.suppress(Exception):  # an interrupted or failed transaction may be gone already
                    session.con.execute("ROLLBACK")
            raise
        if transaction:
            session.con.execute("COMMIT")
        return {"outputs": results}, total
