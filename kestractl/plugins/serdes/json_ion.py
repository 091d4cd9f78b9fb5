"""`json.JsonToIon` and `json.IonToJson`: JSON lines (or one JSON document) to Kestra's ION rows and back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import IO, Any, ClassVar

from kestractl.plugin import Annotated, Prop, RunContext, TaskError, register, write_ion_lines
from kestractl.plugins.serdes.common import CHARSET, FROM, SerdesTask, charset, ion_rows, text_file, zone_of

NEW_LINE = Prop(
    "Whether the file is JSON lines (one value per line); otherwise one JSON document (an array is one row per "
    "element).",
    type="boolean",
    default=True,
)


@register
class JsonToIon(SerdesTask):
    """Read JSON lines (or a JSON document) into ION rows."""

    type_name = "io.kestra.plugin.serdes.json.JsonToIon"
    aliases = ("io.kestra.plugin.serdes.json.JsonReader",)
    properties: ClassVar[dict[str, Prop | str]] = {"from": FROM, "charset": CHARSET, "newLine": NEW_LINE}

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        with text_file(source, charset(ctx)) as fh, target.open("w", encoding="utf-8") as out:
            rows = _lines(fh) if ctx.prop("newLine") else _document(fh)
            return write_ion_lines(rows, out)


def _lines(fh: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(fh, 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise TaskError(f"line {number}: invalid JSON: {error.msg} (column {error.colno})") from None


def _document(fh: IO[str]) -> Iterator[Any]:
    try:
        value = json.load(fh)
    except json.JSONDecodeError as error:
        raise TaskError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    yield from value if isinstance(value, list) else [value]


@register
class IonToJson(SerdesTask):
    """Write ION rows as JSON lines, or as one JSON document (an array when there are several rows)."""

    type_name = "io.kestra.plugin.serdes.json.IonToJson"
    aliases = ("io.kestra.plugin.serdes.json.JsonWriter",)
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": FROM,
        "charset": CHARSET,
        "newLine": NEW_LINE,
        "timeZoneId": Prop("Time zone of zoned date-times (default: the system's).", type="string"),
        "shouldKeepAnnotations": Prop(
            'Keep ION annotations of text values, as `{"ion_annotations": [...], "value": ...}`.',
            type="boolean",
            default=False,
        ),
    }

    def file_extension(self, ctx: RunContext) -> str:
        return ".jsonl" if ctx.prop("newLine") else ".json"

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        encode = _encoder(zone_of(ctx), bool(ctx.prop("shouldKeepAnnotations")))
        with text_file(target, charset(ctx), "w") as out:
            rows = (encode(row) for row in ion_rows(source))
            return _write_lines(rows, out) if ctx.prop("newLine") else _write_document(rows, out)


def _write_lines(rows: Iterator[str], out: IO[str]) -> int:
    count = 0
    for count, row in enumerate(rows, 1):  # noqa: B007
        out.write(row)
        out.write("\n")
    return count


def _write_document(rows: Iterator[str], out: IO[str]) -> int:
    """Kestra's document: a single row as itself, several as one array, written as they come."""
    first = next(rows, None)
    if first is None:
        return 0
    second = next(rows, None)
    if second is None:
        out.write(first)
        return 1
    out.write(f"[{first},{second}")
    count = 2
    for row in rows:
        out.write(",")
        out.write(row)
        count += 1
    out.write("]")
    return count


def _encoder(zone: tzinfo, keep_annotations: bool) -> Callable[[Any], str]:
    """A row as Jackson writes it in Kestra: instants `…Z`, zoned date-times in `timeZoneId`, local ones as they
    are, decimals as numbers, bytes in base64."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=partial(_jackson, zone=zone)).encode
    return lambda row: encode(_unannotated(row, keep_annotations))


def _jackson(value: Any, zone: tzinfo) -> Any:
    if isinstance(value, datetime):
        return _datetime(value, zone)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "E" not in str(value) else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _unannotated(value: Any, keep: bool) -> Any:
    """Annotated values are tuples, which JSON would write as lists: they become their value first (or, with
    `shouldKeepAnnotations`, Kestra's `{"ion_annotations": [...], "value": ...}`)."""
    if isinstance(value, Annotated):
        if keep and isinstance(value.value, str):
            return {"ion_annotations": [value.annotation], "value": value.value}
        return _unannotated(value.value, keep)
    if isinstance(value, dict) and any(isinstance(v, dict | list | tuple) for v in value.values()):
        return {key: _unannotated(item, keep) for key, item in value.items()}
    if isinstance(value, list):
        return [_unannotated(item, keep) for item in value]
    return value


def _datetime(value: datetime, zone: tzinfo) -> str:
    if value.tzinfo is None:
        return value.isoformat()
    if getattr(value.tzinfo, "key", None):
        return value.astimezone(zone).isoformat()
    utc = value.astimezone(UTC)
    micro = utc.microsecond
    fraction = "" if not micro else f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"
