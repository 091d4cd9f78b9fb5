"""A query's rows as the outputs of Kestra's JDBC tasks (`AbstractJdbcBaseQuery`), shared by DuckDB and the
JDBC plugin family: `fetchType` FETCH_ONE → `row` (null when there is none) and `size`; FETCH → `rows` and
`size`; STORE → `uri` (an ION file in internal storage, one row per line as `FileSerde` writes it) and `size`;
NONE → nothing. Row values are kept as Python values (ION writes them with their types); the outputs hold
them as Kestra's JSON mapper writes them (`jsonable`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from kestractl import ion
from kestractl.model import iso_duration, new_id
from kestractl.tasks.properties import Prop

FETCH_TYPES = ("STORE", "FETCH", "FETCH_ONE", "NONE")
# The properties and outputs every query task has (Kestra's AbstractJdbcQuery): declared once, for DuckDB's and
# the JDBC plugin's.
FETCH_PROPERTIES: dict[str, Prop | str] = {
    "fetchType": Prop(
        "NONE, FETCH_ONE (`row`), FETCH (`rows`) or STORE (`uri`, an ION file).",
        type="string",
        default="NONE",
        values=FETCH_TYPES,
    ),
    "fetch": Prop("Deprecated: `fetchType: FETCH`.", type="boolean", default=False),
    "fetchOne": Prop("Deprecated: `fetchType: FETCH_ONE`.", type="boolean", default=False),
    "store": Prop("Deprecated: `fetchType: STORE`.", type="boolean", default=False),
    "fetchSize": Prop("Rows read at a time when storing.", type="integer", default=10_000),
}
FETCH_OUTPUTS = {
    "row": "FETCH_ONE: the first row (null when there is none).",
    "rows": "FETCH: every row.",
    "uri": "STORE: the rows in internal storage, an ION file with one row per line.",
    "size": "How many rows were fetched or stored.",
}

Record = dict[str, Any]


class FileOutputs(Protocol):
    """Where a STORE result goes: a task's `RunContext`, or what a polling trigger gives instead."""

    def output_file(self, name: str) -> tuple[Path, str]: ...


class Metrics(Protocol):
    """What records a metric: a task's `RunContext`."""

    def metric(self, name: str, kind: str, value: float, tags: dict[str, Any] | None = None) -> None: ...


def fetch_outputs(ctx: FileOutputs, mode: str, records: Iterator[Record]) -> tuple[dict[str, Any], int]:
    """The outputs for one result (`row`, `rows` or `uri`, with `size`) and its row count."""
    if mode == "FETCH_ONE":
        row = next(records, None)
        return {"row": jsonable(row), "size": 0 if row is None else 1}, 0 if row is None else 1
    if mode == "FETCH":
        rows = [jsonable(record) for record in records]
        return {"rows": rows, "size": len(rows)}, len(rows)
    if mode == "STORE":
        path, uri = ctx.output_file(f"{new_id()}.ion")
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            size = ion.write_lines(records, fh)
        return {"uri": uri, "size": size}, size
    return {}, 0


def fetch_metric(ctx: Metrics, mode: str, total: int) -> None:
    """Kestra's `fetch.size` counter, tagged `fetch` (FETCH or FETCH_ONE) and `store`."""
    fetched = "true" if mode in ("FETCH", "FETCH_ONE") else "false"
    ctx.metric("fetch.size", "counter", float(total), {"fetch": fetched, "store": str(mode == "STORE").lower()})


def plain(value: Any) -> Any:
    """Nested and uncommon values as Kestra keeps them: lists, maps, UUID text, ISO durations, else text."""
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, timedelta):
        return iso_duration(value)
    if value is None or isinstance(value, str | int | float | Decimal | date | time | bytes | ion.Annotated):
        return value
    return str(value)


def jsonable(value: Any) -> Any:
    """An output value as Kestra's JSON mapper writes it (ISO dates, base64 bytes, numbers for decimals)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    if isinstance(value, Decimal):
        integral = value.is_finite() and int(value.as_tuple().exponent) >= 0
        return int(value) if integral else float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, ion.Annotated):
        return jsonable(value.value)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return _jsonable_scalar(value)


def _jsonable_scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        return ion.java_local_datetime(value) if value.tzinfo is None else ion.java_offset_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return ion.java_local_time(value) + ("" if value.tzinfo is None else ion.java_offset(value.utcoffset()))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return jsonable(plain(value))
