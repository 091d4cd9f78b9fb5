"""The base every JDBC task shares (Kestra's `AbstractJdbcBaseQuery`, `AbstractJdbcQuery`, `AbstractJdbcQueries`):
the connection properties, `sql` and `parameters`, `fetchType` and its outputs, `timeZoneId`; `Query` runs one
statement, `Queries` several (in one transaction by default). A driver supplies a `Session`: how to connect,
run one statement and convert its cells.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kestractl.plugin import (
    FETCH_OUTPUTS,
    FETCH_PROPERTIES,
    KestraError,
    Killed,
    Prop,
    RunContext,
    RunnableTask,
    TaskError,
    fetch_metric,
    fetch_outputs,
)
from kestractl.plugins.jdbc.statements import bind, split

Record = dict[str, Any]


class QueryContext(Protocol):
    """What a query needs from its run: a task's `RunContext`, or a polling trigger's stand-in for one."""

    stop: threading.Event

    def prop(self, name: str) -> Any: ...

    def output_file(self, name: str) -> tuple[Path, str]: ...

    def working_directory(self) -> Path: ...


STOP_POLL_SECONDS = 0.1
SINGLE_STATEMENT = "Query task support only a single SQL statement. Use the Queries task to run multiple statements."
SINGLE_AFTER_SQL = (
    "Query task afterSQL supports only a single SQL statement. Use the Queries task to run multiple statements."
)


class Session:
    """One database connection for one task run; a driver implements it."""

    def __init__(self, zone: ZoneInfo, fetch_size: int, errors: tuple[type[BaseException], ...]) -> None:
        self.zone = zone
        self.fetch_size = fetch_size
        self.errors = errors  # what the driver raises

    def placeholder(self, name: str) -> str:
        """The driver's positional placeholder for the `:name` it replaces."""
        return "?"

    def prepare(self, sql: str) -> str:
        """SQL about to be bound to parameters (psycopg doubles its `%`s)."""
        return sql

    def adapt(self, value: Any) -> Any:
        """A rendered parameter value as the driver binds it."""
        return value

    def set_autocommit(self, on: bool) -> None:
        raise NotImplementedError

    def execute(self, sql: str, params: list[Any] | None, mode: str) -> Iterator[Record] | None:
        """Run one statement: its rows as maps of Kestra's values, or None when it returns no result set."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Cancel the running statement (called from another thread when the run is stopped)."""

    def close(self) -> None:
        raise NotImplementedError


def one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def local_zone() -> ZoneInfo:
    """The machine's time zone (Kestra falls back to the JVM's), by name so dates keep their zone id."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name and os.path.islink("/etc/localtime"):
        name = os.readlink("/etc/localtime").partition("zoneinfo/")[2]
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@contextmanager
def guarded(
    ctx: QueryContext,
    label: str,
    errors: tuple[type[BaseException], ...],
    describe: Callable[[BaseException], str] = str,
) -> Iterator[None]:
    """The driver's exceptions as one line (`PostgreSQL: …`), or `Killed` when the run was stopped."""
    try:
        yield
    except errors as err:
        if ctx.stop.is_set():
            raise Killed() from None
        raise TaskError(f"{label}: {one_line(describe(err)) or type(err).__name__}") from None


@contextmanager
def rolled_back(session: Session, transaction: bool) -> Iterator[None]:
    """On any failure inside an open transaction, roll it back, then let the failure through."""
    try:
        yield
    except BaseException:
        if transaction:
            with suppress(*session.errors):  # a killed or broken connection may have no transaction left
                session.rollback()
        raise


@contextmanager
def watching(ctx: QueryContext, session: Session) -> Iterator[Session]:
    """A kill or a timeout interrupts the running statement; the session is closed afterwards."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_SECONDS):
            if ctx.stop.is_set():
                with suppress(Exception):  # a cancel that cannot be sent leaves the statement to finish
                    session.interrupt()
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        yield session
    finally:
        done.set()
        session.close()


class JdbcQuery(RunnableTask):
    """What `Query` and `Queries` share; a driver's task adds `connect`."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "url": Prop("The database's JDBC URL (`jdbc:postgresql://host:port/db`, or a plain URL).", type="string"),
        "username": Prop("The database user.", type="string"),
        "password": Prop("The database user's password.", type="string"),
        "sql": Prop("The SQL to run.", type="string", required=True),
        "parameters": Prop("Values bound to the `:name` placeholders of `sql`.", type="object"),
        "afterSQL": Prop("One statement run after `sql`, in the same transaction (e.g. mark rows as read).", "string"),
        **FETCH_PROPERTIES,
        "timeZoneId": Prop("The zone dates and times are given in (default: the machine's).", type="string"),
    }
    outputs = FETCH_OUTPUTS
    # The database's name, to begin each error line.
    label: ClassVar[str] = ""

    @classmethod
    def driver_errors(cls) -> tuple[type[BaseException], ...]:
        """What the driver raises (imported only when a task runs)."""
        return ()

    @staticmethod
    def describe(error: BaseException) -> str:
        """A driver error's message."""
        return str(error)

    def connect(self, ctx: QueryContext, zone: ZoneInfo) -> Session:
        raise NotImplementedError

    def run(self, ctx: RunContext) -> dict[str, Any]:
        mode = self.fetch_type(ctx)
        outputs, total = self.query(ctx, mode)
        fetch_metric(ctx, mode, total)
        return outputs

    def query(self, ctx: QueryContext, mode: str) -> tuple[dict[str, Any], int]:
        """Connect, run `sql`, close: the outputs and how many rows were fetched."""
        with guarded(ctx, self.label, self.driver_errors(), self.describe):
            with watching(ctx, self.connect(ctx, self.zone(ctx))) as session:
                return self.execute(ctx, session, ctx.prop("sql"), mode)

    def execute(self, ctx: QueryContext, session: Session, sql: str, mode: str) -> tuple[dict[str, Any], int]:
        """Kestra's Query: one statement (several are refused), in auto-commit unless `afterSQL` follows it in
        the same transaction."""
        if len(split(sql)) > 1:
            raise TaskError(SINGLE_STATEMENT)
        after = ctx.prop("afterSQL")
        if after is not None and len(split(after)) > 1:
            raise TaskError(SINGLE_AFTER_SQL)
        session.set_autocommit(after is None)
        with rolled_back(session, after is not None):
            records = session.execute(*self.bound(ctx, session, sql), mode)
            result = fetch_outputs(ctx, mode, records) if records is not None else ({}, 0)
            if after is not None:
                session.execute(*self.bound(ctx, session, after), "NONE")
                session.commit()
        return result

    def bound(self, ctx: QueryContext, session: Session, sql: str) -> tuple[str, list[Any] | None]:
        """The SQL with its `:name`s bound, as Kestra does only when `parameters` is set."""
        parameters = ctx.prop("parameters")
        if parameters is None:
            return sql, None
        text, values = bind(session.prepare(sql), parameters, session.placeholder)
        return text, [session.adapt(value) for value in values]

    def fetch_type(self, ctx: QueryContext) -> str:
        """Kestra's `renderFetchType`: the deprecated booleans first, then `fetchType`."""
        for key, mode in (("fetch", "FETCH"), ("fetchOne", "FETCH_ONE"), ("store", "STORE")):
            if ctx.prop(key):
                return mode
        return str(ctx.prop("fetchType"))

    def zone(self, ctx: QueryContext) -> ZoneInfo:
        name = ctx.prop("timeZoneId")
        if name is None:
            return local_zone()
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise TaskError(f"timeZoneId: unknown time zone `{name}`") from None

    def fetch_size(self, ctx: QueryContext) -> int:
        return max(int(ctx.prop("fetchSize")), 1)


class JdbcQueries(JdbcQuery):
    """Kestra's Queries: every statement runs; each one with a result set gives one entry of `outputs`."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "transaction": Prop("Run every statement in one transaction.", type="boolean", default=True)
    }
    outputs = {"outputs": "One entry per statement that returned rows: its `row`, `rows` or `uri`, and `size`."}

    def execute(self, ctx: QueryContext, session: Session, sql: str, mode: str) -> tuple[dict[str, Any], int]:
        transaction = bool(ctx.prop("transaction"))
        session.set_autocommit(not transaction)
        results: list[dict[str, Any]] = []
        total = 0
        with rolled_back(session, transaction):
            for statement in split(sql):
                records = session.execute(*self.bound(ctx, session, statement), mode)
                if records is not None:
                    output, size = fetch_outputs(ctx, mode, records)
                    results.append(output)
                    total += size
            if transaction:
                session.commit()
        return {"outputs": results}, total


def stored_file(ctx: RunContext, uri: str, name: str) -> Path:
    """The internal-storage file behind `uri` (property `name`), read where it lies: never held in memory."""
    try:
        path = ctx.storage.local_copy(uri)
    except KestraError as err:
        raise TaskError(f"{name}: {err}") from None
    if not path.is_file():
        raise TaskError(f"{name}: file not found in internal storage: {uri}")
    return path
