"""ION values made to fit an Avro schema (Kestra's `AvroConverter`), shared by IonToAvro and IonToParquet: text
from CSV becomes booleans, numbers, dates and decimals as the schema says; a value that cannot fit is a bad line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from kestractl.plugin import Prop, RunContext, TaskError, java_strptime_format
from kestractl.plugins.serdes.common import java_text, zone_of

CONVERSION: dict[str, Prop | str] = {
    "schema": Prop("The Avro schema (JSON); inferred from the first rows when absent.", type="string"),
    "numberOfRowsToScan": Prop("Rows read to infer a schema.", type="integer", default=100),
    "trueValues": Prop("Text read as true.", type="array", default=["t", "true", "enabled", "1", "on", "yes"]),
    "falseValues": Prop("Text read as false.", type="array", default=["f", "false", "disabled", "0", "off", "no", ""]),
    "nullValues": Prop(
        "Text read as null.",
        type="array",
        default=[
            "",
            "#N/A",
            "#N/A N/A",
            "#NA",
            "-1.#IND",
            "-1.#QNAN",
            "-NaN",
            "1.#IND",
            "1.#QNAN",
            "NA",
            "n/a",
            "nan",
            "null",
        ],  # fmt: skip
    ),
    "dateFormat": Prop("Java pattern of dates in text.", type="string", default="yyyy-MM-dd[XXX]"),
    "timeFormat": Prop("Java pattern of times in text.", type="string", default="HH:mm[:ss][.SSSSSS][XXX]"),
    "datetimeFormat": Prop(
        "Java pattern of date-times in text.", type="string", default="yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
    ),
    "decimalSeparator": Prop("The decimal separator of numbers in text.", type="string", default="."),
    "strictSchema": Prop("Fail on a field the schema does not have.", type="boolean", default=False),
    "inferAllFields": Prop("Scan every row to infer the schema.", type="boolean", default=False),
    "timeZoneId": Prop("Time zone of date-times without one (default: the system's).", type="string"),
    "onBadLines": Prop(
        "A row that cannot be converted: ERROR, WARN or SKIP.",
        type="string",
        default="ERROR",
        values=("ERROR", "WARN", "SKIP"),
    ),  # fmt: skip
}


_TEXT_VALUES = ("trueValues", "falseValues", "nullValues")


class Unfit(ValueError):
    """A value that does not fit its schema."""


class Converter:
    """Kestra's conversion options, applied to one value against one (parsed, fastavro-style) schema."""

    def __init__(self, ctx: RunContext) -> None:
        # Kestra compares these ignoring case.
        self.true, self.false, self.nulls = ({str(v).lower() for v in ctx.prop(k)} for k in _TEXT_VALUES)
        self.formats = {k: str(ctx.prop(k)) for k in ("dateFormat", "timeFormat", "datetimeFormat")}
        self.separator = str(ctx.prop("decimalSeparator"))
        self.strict = bool(ctx.prop("strictSchema"))
        self.zone = zone_of(ctx)

    def record(self, schema: dict[str, Any], row: Any) -> dict[str, Any]:
        if isinstance(row, list):
            row = {field["name"]: value for field, value in zip(schema["fields"], row, strict=False)}
        if not isinstance(row, dict):
            raise Unfit(f"a row must be a map or a list, not {row!r}")
        if self.strict and (extra := set(row) - {f["name"] for f in schema["fields"]}):
            raise Unfit(f"fields not in the schema: {', '.join(sorted(extra))}")
        return {f["name"]: self.value(f["type"], row.get(f["name"]), f["name"]) for f in schema["fields"]}

    def value(self, schema: Any, value: Any, name: str) -> Any:
        if isinstance(schema, list):
            return self.union(schema, value, name)
        kind = schema if isinstance(schema, str) else schema["type"]
        if self.is_null(value) and kind != "string" or value is None:
            if kind == "null":
                return None
            raise Unfit(f"{name}: null is not allowed (type {kind})")
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        convert = _LOGICAL.get(logical or "") or _TYPES.get(kind)
        if convert is None:
            raise Unfit(f"{name}: unsupported Avro type {kind}")
        try:
            return convert(self, schema, value, name)
        except (ValueError, ArithmeticError, TypeError) as error:
            raise Unfit(f"{name}: `{value}` is not a valid {logical or kind}: {error}") from None

    def is_null(self, value: Any) -> bool:
        return value is None or isinstance(value, str) and value.lower() in self.nulls

    def union(self, branches: list[Any], value: Any, name: str) -> Any:
        """The first branch, in the schema's order, that takes the value (`null` takes null text)."""
        failures = []
        for branch in branches:
            try:
                return self.value(branch, value, name)
            except Unfit as error:
                failures.append(str(error))
        raise Unfit("; ".join(dict.fromkeys(failures)))

    def boolean(self, _: Any, value: Any, name: str) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in self.true or value == 1:
            return True
        if text in self.false or value == 0:
            return False
        raise ValueError("not one of trueValues or falseValues")

    def number(self, value: Any) -> str:
        return str(value).replace(self.separator, ".") if isinstance(value, str) else str(value)

    def parse(self, text: str, key: str) -> datetime:
        """Text in the ISO form or the task's Java pattern (optional `[…]` sections tried with and without)."""
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
        pattern = self.formats[key]
        for variant in (pattern.replace("[", "").replace("]", ""), _drop_optional(pattern)):
            try:
                return datetime.strptime(text, java_strptime_format(variant))
            except ValueError:
                continue
        raise ValueError(f"does not match {pattern}")

    def moment(self, value: Any, local: bool) -> datetime:
        if isinstance(value, str):
            value = self.parse(value, "datetimeFormat")
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time())
        if not isinstance(value, datetime):
            raise ValueError("not a date-time")
        if local:
            return value if value.tzinfo is None else value.astimezone(self.zone).replace(tzinfo=None)
        return value.replace(tzinfo=self.zone) if value.tzinfo is None else value.astimezone(UTC)


def _drop_optional(pattern: str) -> str:
    import re

    return re.sub(r"\[[^\]]*\]", "", pattern)


def _date(c: Converter, _: Any, value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return c.parse(text, "dateFormat").date()


def _time(c: Converter, _: Any, value: Any, name: str) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.time()
    text = str(value)
    try:
        return time.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return c.parse(text, "timeFormat").time()


def _decimal(c: Converter, schema: dict[str, Any], value: Any, name: str) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(c.number(value))
    return number.quantize(Decimal(1).scaleb(-int(schema.get("scale", 0))))


def _integer(c: Converter, _: Any, value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, int):
        return value
    number = Decimal(c.number(value))
    if number != number.to_integral_value():
        raise ValueError("not a whole number")
    return int(number)


def _string(c: Converter, schema: Any, value: Any, name: str) -> str:
    if isinstance(schema, dict) and schema.get("type") == "enum" and value not in schema["symbols"]:
        raise ValueError(f"not one of {', '.join(schema['symbols'])}")
    return value if isinstance(value, str) else java_text(value)


def _array(c: Converter, schema: dict[str, Any], value: Any, name: str) -> list[Any]:
    items = json.loads(value) if isinstance(value, str) else value
    return [c.value(schema["items"], item, name) for item in items]


def _map(c: Converter, schema: dict[str, Any], value: Any, name: str) -> dict[str, Any]:
    entries = json.loads(value) if isinstance(value, str) else value
    return {str(k): c.value(schema["values"], v, f"{name}.{k}") for k, v in entries.items()}


def _record(c: Converter, schema: dict[str, Any], value: Any, name: str) -> dict[str, Any]:
    return c.record(schema, json.loads(value) if isinstance(value, str) else value)


def _not_null(c: Converter, _: Any, value: Any, name: str) -> None:
    raise ValueError("not null")


def _bytes(c: Converter, _: Any, value: Any, name: str) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


_TYPES: dict[str, Callable[[Converter, Any, Any, str], Any]] = {
    "null": _not_null,
    "boolean": Converter.boolean,
    "int": _integer,
    "long": _integer,
    "float": lambda c, s, v, n: float(c.number(v)),
    "double": lambda c, s, v, n: float(c.number(v)),
    "string": _string,
    "enum": _string,
    "bytes": _bytes,
    "fixed": _bytes,
    "array": _array,
    "map": _map,
    "record": _record,
}
_LOGICAL: dict[str, Callable[[Converter, Any, Any, str], Any]] = {
    "date": _date,
    "time-millis": _time,
    "time-micros": _time,
    "timestamp-millis": lambda c, s, v, n: c.moment(v, local=False),
    "timestamp-micros": lambda c, s, v, n: c.moment(v, local=False),
    "local-timestamp-millis": lambda c, s, v, n: c.moment(v, local=True),
    "local-timestamp-micros": lambda c, s, v, n: c.moment(v, local=True),
    "decimal": _decimal,
    "uuid": lambda c, s, v, n: str(v),
}


def schema_of(ctx: RunContext, rows: Callable[[], Iterator[Any]]) -> dict[str, Any]:
    """The `schema` property parsed, or one inferred from the first `numberOfRowsToScan` rows."""
    text = ctx.prop("schema")
    if text:
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as error:
            raise TaskError(f"schema: invalid JSON: {error.msg}") from None
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise TaskError("schema: the top-level Avro schema must be a record")
        return schema
    limit = None if ctx.prop("inferAllFields") else int(ctx.prop("numberOfRowsToScan"))
    return infer(rows(), limit)


def infer(rows: Iterator[Any], limit: int | None) -> dict[str, Any]:
    """Every field nullable, typed from the Python values seen (text stays text)."""
    fields: dict[str, Any] = {}
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        for key, value in row.items() if isinstance(row, dict) else []:
            if value is not None or key not in fields:
                fields[key] = fields.get(key) if value is None else _inferred(value)
    return {"type": "record", "name": "root", "fields": [
        {"name": k, "type": ["null", t or "string"], "default": None} for k, t in fields.items()]}  # fmt: skip


def _inferred(value: Any) -> Any:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": scale}
    if isinstance(value, datetime):
        kind = "timestamp-millis" if value.tzinfo else "local-timestamp-millis"
        return {"type": "long", "logicalType": kind}
    if isinstance(value, date):
        return {"type": "int", "logicalType": "date"}
    return "string"
