"""What every serdes task shares: the source file, the converted file written row by row, the `records` metric,
the charset, one-character options, and Kestra's text for a value (`AbstractTextWriter.convert`)."""

from __future__ import annotations

import codecs
import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import IO, Any, ClassVar

from kestractl.plugin import (
    KestraError,
    Prop,
    RunContext,
    RunnableTask,
    TaskError,
    format_java_date,
    java_double,
    read_ion_lines,
    time_zone,
)

FROM = Prop("The file to convert: a `kestra://` URI.", type="string", required=True)
CHARSET = Prop("The charset of the file (a Java or Python name).", type="string", default="UTF-8")
ON_BAD_LINES = Prop(
    "What to do with a row that cannot be converted: fail, log a warning and skip it, or skip it silently.",
    type="string",
    default="ERROR",
    values=("ERROR", "WARN", "SKIP"),
)
OUTPUTS = {"uri": "The converted file, in internal storage.", "size": "The number of records converted."}

# Kestra's `AbstractTextWriter` options: how temporal values are written as text.
TEXT_WRITER: dict[str, Prop | str] = {
    "dateFormat": Prop("Java pattern for dates.", type="string", default="yyyy-MM-dd"),
    "timeFormat": Prop("Java pattern for times.", type="string", default="HH:mm:ss[XXX]"),
    "dateTimeFormat": Prop("Java pattern for date-times.", type="string", default="yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"),
    "timeZoneId": Prop("Time zone of zoned date-times (default: the system's).", type="string"),
}


class SerdesTask(RunnableTask):
    """A conversion of the `from` file into one new file: `convert` writes it and returns the record count."""

    properties: ClassVar[dict[str, Prop | str]] = {"from": FROM}
    outputs: ClassVar[dict[str, str]] = OUTPUTS
    extension: ClassVar[str] = ".ion"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = stored_file(ctx, ctx.prop("from"))
        path, uri = output_file(ctx, self.file_extension(ctx))
        with failing_cleanly(ctx, path):
            size = self.convert(ctx, source, path)
        ctx.metric("records", "counter", size)
        return {"uri": uri, "size": size}

    def file_extension(self, ctx: RunContext) -> str:
        return self.extension

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        raise NotImplementedError


def stored_file(ctx: RunContext, uri: Any) -> Path:
    """The local file behind a `kestra://` URI, or a one-line failure naming it."""
    path = ctx.storage.local_copy(str(uri))
    if not path.is_file():
        raise TaskError(f"from: file not found in internal storage: {uri}")
    return path


def output_file(ctx: RunContext, extension: str, stem: str | None = None) -> tuple[Path, str]:
    """A new file of this task run in internal storage, named after the task (or `stem`)."""
    assert ctx.task_run is not None
    return ctx.output_file((stem or ctx.task_run.task_id) + extension)


@contextmanager
def failing_cleanly(ctx: RunContext, *paths: Path) -> Iterator[None]:
    """Turn a library's error into one line naming the task, and leave no half-written file behind."""
    try:
        yield
    except BaseException as error:
        for path in paths:
            path.unlink(missing_ok=True)
        if isinstance(error, KestraError) or not isinstance(error, Exception):
            raise
        raise TaskError(f"{ctx.task.type.rpartition('.')[2] if ctx.task else 'task'}: {one_line(error)}") from None


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def charset(ctx: RunContext) -> str:
    """The `charset` property as a Python codec name; an unknown one fails the task."""
    name = str(ctx.prop("charset"))
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TaskError(f"charset: unknown charset `{name}`") from None


def zone_of(ctx: RunContext) -> tzinfo:
    """The `timeZoneId` property (Java's `ZoneId.of`); UTC when unset."""
    try:
        return time_zone(ctx.prop("timeZoneId"))
    except ValueError as error:
        raise TaskError(f"timeZoneId: {error}") from None


def character(ctx: RunContext, name: str) -> str:
    """A one-character property (Java `Character`): `fieldSeparator`, `textDelimiter`."""
    value = str(ctx.prop(name))
    if len(value) != 1:
        raise TaskError(f"{name}: expected one character, not `{value}`")
    return value


def ion_rows(source: Path) -> Iterator[Any]:
    """The rows of an ION file, one at a time."""
    with source.open(encoding="utf-8", newline="") as fh:
        yield from read_ion_lines(fh)


def library(name: str, package: str) -> ModuleType:
    """Import a file library when its task runs; missing, it fails the task naming what to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise TaskError(f"this task needs `{package}`: pip install 'kestractl[serdes]'") from None


def bad_line(ctx: RunContext, policy: str, message: str) -> None:
    """Kestra's `onBadLines`: ERROR fails the task, WARN logs and skips, SKIP skips."""
    if policy == "ERROR":
        raise TaskError(message)
    if policy == "WARN":
        ctx.log("WARN", f"{message} (skipped)")


class TextWriter:
    """Kestra's `AbstractTextWriter.convert`: a value as the text a CSV cell (or an Excel string) holds."""

    def __init__(self, ctx: RunContext) -> None:
        self.date_format = str(ctx.prop("dateFormat"))
        self.time_format = str(ctx.prop("timeFormat"))
        self.datetime_format = str(ctx.prop("dateTimeFormat"))
        self.zone = zone_of(ctx)

    def text(self, value: Any) -> str | None:
        kind = type(value)
        if kind is str or value is None:
            return value  # type: ignore[no-any-return]
        if kind is datetime:
            return self._datetime(value)
        if kind is date:
            return format_java_date(datetime.combine(value, time()), self.date_format)
        if kind is time:
            moment = datetime.combine(date(1970, 1, 1), value)
            pattern = self.time_format if value.tzinfo else _without_offset(self.time_format)
            return format_java_date(moment, pattern)
        return java_text(value)

    def _datetime(self, value: datetime) -> str:
        """An Instant or a LocalDateTime is written in UTC, a zoned date-time in `timeZoneId`."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif getattr(value.tzinfo, "key", None):
            value = value.astimezone(self.zone)
        else:
            value = value.astimezone(UTC)
        return format_java_date(value, self.datetime_format)


def _without_offset(pattern: str) -> str:
    """A LocalTime has no offset: Java leaves out the optional section that asks for one."""
    return re.sub(r"\[[^\]]*[XxZOVz][^\]]*\]", "", pattern)


def java_text(value: Any) -> str:
    """`String.valueOf` of what Kestra's ION reader gives: `true`, `1.5`, `1.0E7`, `12.50`, `{a=1}`, `[1, 2]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else java_double(float(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={java_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    if value is None:
        return "null"
    return str(value)


def text_file(path: Path, encoding: str, mode: str = "r") -> IO[str]:
    """A text file for the csv module (it handles line ends itself)."""
    return path.open(mode, encoding=encoding, newline="")
