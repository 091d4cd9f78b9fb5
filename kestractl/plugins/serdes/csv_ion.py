"""`csv.CsvToIon` and `csv.IonToCsv`: CSV files to Kestra's ION rows and back, one row at a time."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import Prop, RunContext, TaskError, register, write_ion_lines
from kestractl.plugins.serdes.common import (
    CHARSET,
    FROM,
    ON_BAD_LINES,
    TEXT_WRITER,
    SerdesTask,
    TextWriter,
    bad_line,
    character,
    charset,
    ion_rows,
    text_file,
)

MAX_SIZE = 16 * 1024 * 1024
NULL = "\\N"  # a field Kestra reads as null
SEPARATORS = {
    "header": Prop("Whether the first line is the header.", type="boolean", default=True),
    "fieldSeparator": Prop("The field separator character.", type="string", default=","),
    "textDelimiter": Prop("The text delimiter (quote) character.", type="string", default='"'),
    "charset": CHARSET,
}


@register
class CsvToIon(SerdesTask):
    """Read a CSV file into ION rows: a map per row (header → text) with a header, else a list."""

    type_name = "io.kestra.plugin.serdes.csv.CsvToIon"
    aliases = ("io.kestra.plugin.serdes.csv.CsvReader",)
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": FROM,
        **SEPARATORS,
        "skipEmptyRows": Prop("Skip empty lines.", type="boolean", default=False),
        "skipRows": Prop("How many rows to skip after the header.", type="integer", default=0),
        "onBadLines": ON_BAD_LINES,
        "onEmptyHeader": Prop(
            "Columns without a header name: DROP the trailing ones, or RENAME them col_0, col_1 ….",
            type="string",
            default="DROP",
            values=("DROP", "RENAME"),
        ),
        "errorOnDifferentFieldCount": Prop("Deprecated (use onBadLines); accepted and ignored.", type="boolean"),
        "maxBufferSize": Prop("Accepted for Kestra's flows; rows are read one at a time.", type="integer"),
        "maxFieldSize": Prop("The largest field, in characters.", type="integer", default=MAX_SIZE),
        "allowExtraCharsAfterClosingQuote": Prop(
            'Accept text after a closing quote (`"a"b` reads `ab`).', type="boolean", default=False
        ),
    }

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        csv.field_size_limit(max(int(ctx.prop("maxFieldSize")), 1))
        encoding = charset(ctx)
        encoding = "utf-8-sig" if encoding == "utf-8" else encoding  # Kestra strips a UTF-8 BOM
        with text_file(source, encoding) as fh, target.open("w", encoding="utf-8") as out:
            return write_ion_lines(self.records(ctx, fh), out)

    def records(self, ctx: RunContext, fh: Any) -> Iterator[Any]:
        reader = csv.reader(
            fh,
            delimiter=character(ctx, "fieldSeparator"),
            quotechar=character(ctx, "textDelimiter"),
            strict=not ctx.prop("allowExtraCharsAfterClosingQuote"),
        )
        rows = _rows(ctx, reader, ctx.prop("onBadLines"), ctx.prop("skipEmptyRows"))
        names = next(rows, None) if ctx.prop("header") else None
        rows = islice(rows, int(ctx.prop("skipRows")), None)  # the rows after the header, before any check
        if names is None:
            yield from ([None if field == NULL else field for field in row] for row in rows)
        else:
            yield from self.maps(ctx, rows, names)

    def maps(self, ctx: RunContext, rows: Iterator[list[str]], names: list[str]) -> Iterator[dict[str, Any]]:
        keys = _header(ctx, names, ctx.prop("onEmptyHeader"))
        policy, width = ctx.prop("onBadLines"), len(names)
        for row in rows:
            if len(row) != width:
                message = f"Expected {width}, got {len(row)} fields."
                bad_line(ctx, policy, f"Bad line encountered (field count mismatch): {message}")
                continue
            yield {key: None if field == NULL else field for key, field in zip(keys, row, strict=False)}


def _rows(ctx: RunContext, reader: Any, policy: str, skip_empty: bool) -> Iterator[list[str]]:
    """The parsed rows; an unparsable one follows `onBadLines`. An empty line is one empty field, as FastCSV
    reads it, unless `skipEmptyRows`."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            bad_line(ctx, policy, f"Bad line encountered at line {reader.line_num}: {error}")
            continue
        if not row:
            if skip_empty:
                continue
            row = [""]
        yield row


def _header(ctx: RunContext, names: list[str], on_empty: str) -> list[str]:
    """Kestra's header rules: RENAME names unnamed columns `col_<i>`; DROP drops the trailing unnamed ones."""
    if on_empty == "RENAME":
        taken = set(names)
        renamed = []
        for index, name in enumerate(names):
            if not name:
                name = next(c for c in _candidates(index) if c not in taken)
                taken.add(name)
            renamed.append(name)
        return renamed
    named = [index for index, name in enumerate(names) if name]
    kept = named[-1] + 1 if named else len(names)
    if kept < len(names):
        ctx.log("WARN", f"Dropped {len(names) - kept} trailing unnamed header column(s); their values are not "
                "emitted. Set onEmptyHeader=RENAME to keep them.")  # fmt: skip
    if len(set(names[:kept])) < kept:
        ctx.log("WARN", "Header has duplicate or empty column name(s): only the last such column's value is kept.")
    return names[:kept]


def _candidates(index: int) -> Iterator[str]:
    yield f"col_{index}"
    attempt = 2
    while True:
        yield f"col_{index}_{attempt}"
        attempt += 1


class _Unquoted(str):
    """Text that the csv module's QUOTE_NONNUMERIC leaves unquoted (it counts as a number)."""

    __slots__ = ()

    def __float__(self) -> float:
        return float(self) if self else 0.0


_NUMERIC = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
QUOTING: dict[str, Any] = {"ALWAYS": csv.QUOTE_ALL, "REQUIRED": csv.QUOTE_MINIMAL, "NON_NUMERIC": csv.QUOTE_NONNUMERIC}


@register
class IonToCsv(SerdesTask):
    """Write ION rows as CSV: a map's values in its own order (the first map's keys as the header), or a list."""

    type_name = "io.kestra.plugin.serdes.csv.IonToCsv"
    aliases = ("io.kestra.plugin.serdes.csv.CsvWriter",)
    extension = ".csv"
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": FROM,
        **SEPARATORS,
        "lineDelimiter": Prop("The characters that end a row.", type="string", default="\n"),
        "alwaysDelimitText": Prop(
            "Deprecated: quote every field (quoteMode takes precedence).", type="boolean", default=False
        ),  # fmt: skip
        "quoteMode": Prop(
            "When fields are quoted: ALWAYS, REQUIRED (only when they must be) or NON_NUMERIC.",
            type="string",
            values=tuple(QUOTING),
        ),
        **TEXT_WRITER,
    }

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        mode = ctx.prop("quoteMode") or ("ALWAYS" if ctx.prop("alwaysDelimitText") else "REQUIRED")
        texts = TextWriter(ctx)
        with text_file(target, charset(ctx), "w") as out:
            writer = csv.writer(
                out,
                delimiter=character(ctx, "fieldSeparator"),
                quotechar=character(ctx, "textDelimiter"),
                lineterminator=str(ctx.prop("lineDelimiter")),
                quoting=QUOTING[mode],
            )
            cells = _non_numeric(texts) if mode == "NON_NUMERIC" else texts.text
            return _write(writer, ion_rows(source), cells, bool(ctx.prop("header")))


def _write(writer: Any, rows: Iterator[Any], cell: Any, header: bool) -> int:
    count, first = 0, True
    for row in rows:
        count += 1
        if isinstance(row, dict):
            if first and header:
                writer.writerow([cell(key) for key in row])
            first = False
            writer.writerow([cell(value) for value in row.values()])
        elif isinstance(row, list):
            if header:
                raise TaskError("Invalid data of type List with header")
            writer.writerow([cell(value) for value in row])
    return count


def _non_numeric(texts: TextWriter) -> Any:
    """Kestra's NON_NUMERIC: numbers and nulls unquoted, all other text quoted."""

    def cell(value: Any) -> str:
        text = texts.text(value)
        return _Unquoted("") if text is None else _Unquoted(text) if _NUMERIC.fullmatch(text) else text

    return cell
