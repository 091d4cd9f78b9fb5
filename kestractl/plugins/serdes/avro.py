"""`avro.IonToAvro` and `avro.AvroToIon` (fastavro, imported when they run): Avro container files, streamed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import Prop, RunContext, register, write_ion_lines
from kestractl.plugins.serdes.avro_values import CONVERSION, Converter, Unfit, schema_of
from kestractl.plugins.serdes.common import FROM, ON_BAD_LINES, SerdesTask, bad_line, ion_rows, library


def fitted(ctx: RunContext, schema: dict[str, Any], source: Path, counter: list[int]) -> Iterator[dict[str, Any]]:
    """The rows of an ION file fitted to `schema`; `counter[0]` counts the rows read. A row that does not fit
    follows `onBadLines`."""
    converter, policy = Converter(ctx), ctx.prop("onBadLines")
    for row in ion_rows(source):
        counter[0] += 1
        try:
            yield converter.record(schema, row)
        except Unfit as error:
            bad_line(ctx, policy, f"Bad line encountered at row {counter[0]}: {error}")


@register
class IonToAvro(SerdesTask):
    """Write ION rows as an Avro file with the given (or an inferred) schema."""

    type_name = "io.kestra.plugin.serdes.avro.IonToAvro"
    aliases = ("io.kestra.plugin.serdes.avro.AvroWriter",)
    extension = ".avro"
    properties: ClassVar[dict[str, Prop | str]] = {"from": FROM, **CONVERSION}

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        fastavro = library("fastavro", "fastavro")
        schema = fastavro.parse_schema(schema_of(ctx, lambda: ion_rows(source)))
        counter = [0]
        with target.open("wb") as out:
            fastavro.writer(out, schema, fitted(ctx, schema, source, counter))
        return counter[0]


@register
class AvroToIon(SerdesTask):
    """Read an Avro file into ION rows (dates, times, timestamps and decimals typed as Kestra gives them)."""

    type_name = "io.kestra.plugin.serdes.avro.AvroToIon"
    aliases = ("io.kestra.plugin.serdes.avro.AvroReader",)
    properties: ClassVar[dict[str, Prop | str]] = {"from": FROM, "onBadLines": ON_BAD_LINES}

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        fastavro = library("fastavro", "fastavro")
        with source.open("rb") as fh, target.open("w", encoding="utf-8") as out:
            reader = fastavro.reader(fh)
            schema = reader.writer_schema or {}
            unwrap = _root_array(schema)
            return write_ion_lines((kestra_value(r[unwrap] if unwrap else r) for r in reader), out)


def _root_array(schema: dict[str, Any]) -> str | None:
    """Kestra wraps a root list in a record `root` with one array field `value`, and unwraps it when reading."""
    fields = schema.get("fields") or []
    wrapped = schema.get("name", "").rpartition(".")[2] == "root" and len(fields) == 1
    if wrapped and fields[0]["name"] == "value" and isinstance(fields[0]["type"], dict):
        return "value" if fields[0]["type"].get("type") == "array" else None
    return None


def kestra_value(value: Any) -> Any:
    """A value read by fastavro or pyarrow as Kestra's ION holds it: a UUID as text, a zoned timestamp as an
    instant (an ION timestamp), maps and lists deeply."""
    if isinstance(value, dict):
        return {key: kestra_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [kestra_value(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value
