"""`parquet.IonToParquet` and `parquet.ParquetToIon` (pyarrow, imported when they run), in batches of rows."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import Prop, RunContext, TaskError, register, write_ion_lines
from kestractl.plugins.serdes.avro import fitted, kestra_value
from kestractl.plugins.serdes.avro_values import CONVERSION, schema_of
from kestractl.plugins.serdes.common import FROM, SerdesTask, ion_rows, library

BATCH = 10_000  # rows held in memory at once
CODECS = ("UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD")


@register
class IonToParquet(SerdesTask):
    """Write ION rows as a Parquet file, typed by an Avro schema (given, or inferred from the first rows)."""

    type_name = "io.kestra.plugin.serdes.parquet.IonToParquet"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetWriter",)
    extension = ".parquet"
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": FROM,
        **CONVERSION,
        "compressionCodec": Prop("The compression codec.", type="string", default="GZIP", values=CODECS),
        "parquetVersion": Prop("The Parquet format version.", type="string", default="V2", values=("V1", "V2")),
        "rowGroupSize": Prop("Accepted for Kestra's flows; row groups here hold 10,000 rows.", type="integer"),
        "pageSize": Prop("The target size of a data page, in bytes.", type="integer", default=1024 * 1024),
        "dictionaryPageSize": Prop("The largest dictionary page, in bytes.", type="integer", default=1024 * 1024),
    }

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        pa = library("pyarrow", "pyarrow")
        pq = library("pyarrow.parquet", "pyarrow")
        avro_schema = schema_of(ctx, lambda: ion_rows(source))
        schema = pa.schema([pa.field(f["name"], *_arrow(pa, f["type"])) for f in avro_schema["fields"]])
        counter = [0]
        rows = fitted(ctx, avro_schema, source, counter)
        options = {
            "compression": "NONE" if ctx.prop("compressionCodec") == "UNCOMPRESSED" else ctx.prop("compressionCodec"),
            "version": "2.6" if ctx.prop("parquetVersion") == "V2" else "1.0",
            "data_page_size": int(ctx.prop("pageSize")),
            "dictionary_pagesize_limit": int(ctx.prop("dictionaryPageSize")),
        }
        with pq.ParquetWriter(str(target), schema, **options) as writer:
            while batch := list(islice(rows, BATCH)):
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        return counter[0]


def _arrow(pa: Any, avro: Any) -> tuple[Any, bool]:
    """An Avro type as (Arrow type, nullable)."""
    if isinstance(avro, list):
        others = [branch for branch in avro if branch != "null"]
        if len(others) != 1:
            raise TaskError(f"schema: unions other than [null, type] are not supported in Parquet: {avro}")
        return _arrow(pa, others[0])[0], True
    return _arrow_type(pa, avro), False


def _arrow_type(pa: Any, avro: Any) -> Any:
    kind = avro if isinstance(avro, str) else avro["type"]
    logical = avro.get("logicalType") if isinstance(avro, dict) else None
    if logical == "decimal":
        return pa.decimal128(int(avro.get("precision", 38)), int(avro.get("scale", 0)))
    simple = {
        "date": pa.date32(), "time-millis": pa.time32("ms"), "time-micros": pa.time64("us"),
        "timestamp-millis": pa.timestamp("ms", tz="UTC"), "timestamp-micros": pa.timestamp("us", tz="UTC"),
        "local-timestamp-millis": pa.timestamp("ms"), "local-timestamp-micros": pa.timestamp("us"),
        "uuid": pa.string(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
        "double": pa.float64(), "string": pa.string(), "enum": pa.string(), "bytes": pa.binary(),
        "fixed": pa.binary(),
    }  # fmt: skip
    if (logical or kind) in simple:
        return simple[logical or kind]
    if kind == "array":
        return pa.list_(pa.field("element", *_arrow(pa, avro["items"])))
    if kind == "map":
        return pa.map_(pa.string(), _arrow(pa, avro["values"])[0])
    if kind == "record":
        return pa.struct([pa.field(f["name"], *_arrow(pa, f["type"])) for f in avro["fields"]])
    raise TaskError(f"schema: Avro type {kind} is not supported in Parquet")


@register
class ParquetToIon(SerdesTask):
    """Read a Parquet file into ION rows, one batch of rows at a time."""

    type_name = "io.kestra.plugin.serdes.parquet.ParquetToIon"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetReader",)
    properties: ClassVar[dict[str, Prop | str]] = {"from": FROM}

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        pq = library("pyarrow.parquet", "pyarrow")
        parquet = pq.ParquetFile(str(source))
        with target.open("w", encoding="utf-8") as out:
            batches = parquet.iter_batches(batch_size=BATCH)
            rows = (kestra_value(row) for batch in batches for row in batch.to_pylist(maps_as_pydicts="strict"))
            return write_ion_lines(rows, out)
