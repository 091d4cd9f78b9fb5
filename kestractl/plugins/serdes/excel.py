"""`excel.IonToExcel` and `excel.ExcelToIon` (openpyxl, imported when they run): .xlsx workbooks, streamed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import Prop, RunContext, TaskError, register, write_ion_lines
from kestractl.plugins.serdes.common import (
    CHARSET,
    FROM,
    TEXT_WRITER,
    SerdesTask,
    TextWriter,
    failing_cleanly,
    ion_rows,
    java_text,
    library,
    output_file,
    stored_file,
)

HEADER = Prop("Whether the first row is the header.", type="boolean", default=True)


@register
class IonToExcel(SerdesTask):
    """Write ION rows as an .xlsx workbook: one sheet, or one per entry of a `from` map (title → URI)."""

    type_name = "io.kestra.plugin.serdes.excel.IonToExcel"
    extension = ".xlsx"
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": Prop("The ION file (a `kestra://` URI), or a map of sheet title → URI.", required=True),
        "sheetsTitle": Prop("The sheet's title (when `from` is one file).", type="string", default="Sheet"),
        "header": HEADER,
        "styles": Prop("Give date cells the `dateFormat` number format.", type="boolean", default=True),
        "charset": CHARSET,
        **TEXT_WRITER,
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        openpyxl = library("openpyxl", "openpyxl")
        source = ctx.prop("from")
        sheets = source if isinstance(source, dict) else {ctx.prop("sheetsTitle"): source}
        files = {str(title): stored_file(ctx, uri) for title, uri in sheets.items()}
        path, uri = output_file(ctx, self.extension)
        with failing_cleanly(ctx, path):
            workbook = openpyxl.Workbook(write_only=True)
            size = sum(self.sheet(ctx, workbook, title, file) for title, file in files.items())
            workbook.save(path)
        ctx.metric("records", "counter", size)
        return {"uri": uri, "size": size}

    def sheet(self, ctx: RunContext, workbook: Any, title: str, source: Path) -> int:
        from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]

        sheet = workbook.create_sheet(title)
        header, zone = bool(ctx.prop("header")), TextWriter(ctx).zone
        date_format = ctx.prop("dateFormat") if ctx.prop("styles") else None

        def cells(values: Any) -> list[Any]:
            return [_cell(WriteOnlyCell(sheet), value, zone, date_format) for value in values]

        count = 0
        for count, row in enumerate(ion_rows(source), 1):  # noqa: B007
            if isinstance(row, list):
                if header:
                    raise TaskError("Invalid data of type List with header")
                sheet.append(cells(row))
            elif isinstance(row, dict):
                if count == 1 and header:
                    sheet.append(cells(row.keys()))
                sheet.append(cells(row.values()))
        return count


def _cell(cell: Any, value: Any, zone: Any, date_format: str | None) -> Any:
    """Kestra's cell for a value: numbers, booleans, dates (instants as the day in `timeZoneId`), `Formula:…` as
    a formula, anything else as text. A null is an empty cell."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(zone).date()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, date):
        cell.number_format = date_format or cell.number_format
    elif isinstance(value, str) and value.startswith("Formula:"):
        value = "=" + value[len("Formula:") :]
    elif value is not None and not isinstance(value, bool | int | float | str):
        value = java_text(value)
    cell.value = value
    return cell


@register
class ExcelToIon(SerdesTask):
    """Read the sheets of an .xlsx workbook into ION rows: one file per sheet (output `uris`)."""

    type_name = "io.kestra.plugin.serdes.excel.ExcelToIon"
    outputs: ClassVar[dict[str, str]] = {
        "uris": "Sheet title → its converted file (`{{ outputs.id.uris.Sheet1 }}`).",
        "size": "The number of rows converted, all sheets together.",
    }
    properties: ClassVar[dict[str, Prop | str]] = {
        "from": FROM,
        "sheetsTitle": Prop("The sheets to read (default: all).", type="array"),
        "charset": CHARSET,
        "valueRender": Prop(
            "How cells are read.",
            type="string",
            default="UNFORMATTED_VALUE",
            values=("UNFORMATTED_VALUE", "FORMATTED_VALUE", "FORMULA"),
        ),  # fmt: skip
        "dateTimeRender": Prop(
            "How date cells are read.",
            type="string",
            default="UNFORMATTED_VALUE",
            values=("UNFORMATTED_VALUE", "FORMATTED_STRING", "SERIAL_NUMBER"),
        ),  # fmt: skip
        "header": HEADER,
        "skipEmptyRows": Prop("Skip rows whose cells are all empty.", type="boolean", default=False),
        "skipRows": Prop("Rows to skip at the top of each sheet.", type="integer", default=0),
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        openpyxl = library("openpyxl", "openpyxl")
        source = stored_file(ctx, ctx.prop("from"))
        wanted = [str(title) for title in ctx.prop("sheetsTitle") or []]
        uris, size = {}, 0
        with failing_cleanly(ctx):
            workbook = openpyxl.load_workbook(source, read_only=True, data_only=True)
            ctx.metric("sheets", "counter", len(workbook.sheetnames))
            for sheet in workbook.worksheets:
                if not wanted or sheet.title in wanted:
                    path, uris[sheet.title] = output_file(ctx, ".ion", f"{ctx.task_run.task_id}-{_slug(sheet.title)}")  # type: ignore[union-attr]
                    with path.open("w", encoding="utf-8") as out:
                        size += write_ion_lines(self.rows(ctx, sheet), out)
            workbook.close()
        ctx.metric("records", "counter", size)
        return {"uris": uris, "size": size}

    def rows(self, ctx: RunContext, sheet: Any) -> Iterator[Any]:
        cell = _reader(ctx.prop("valueRender"), ctx.prop("dateTimeRender"))
        rows = (list(row) for row in sheet.iter_rows(values_only=True))
        rows = (row for index, row in enumerate(rows) if index >= int(ctx.prop("skipRows")))
        if ctx.prop("skipEmptyRows"):
            rows = (row for row in rows if any(value is not None for value in row))
        if not ctx.prop("header"):
            yield from ([cell(value) for value in row] for row in rows)
            return
        names = next(rows, None)
        if names is None:
            return
        first = next((i for i, name in enumerate(names) if name is not None), 0)
        last = max((i + 1 for i, name in enumerate(names) if name is not None), default=0)
        keys = [java_text(cell(n)) if n is not None else f"Column{i}" for i, n in enumerate(names)][first:last]
        for row in rows:
            values = [cell(value) for value in row[first:last]]
            yield dict(zip(keys, values + [None] * (len(keys) - len(values)), strict=False))


def _reader(value_render: str, date_render: str) -> Any:
    """Kestra's cell values: numbers are doubles; dates ISO text, serial numbers or formatted text."""
    from openpyxl.utils.datetime import to_excel  # type: ignore[import-untyped]

    def cell(value: Any) -> Any:
        if isinstance(value, datetime | date):
            if date_render == "SERIAL_NUMBER":
                return float(to_excel(value))
            if isinstance(value, datetime):
                return value.isoformat(sep=" ") if date_render == "FORMATTED_STRING" else value.date().isoformat()
            return value.isoformat()
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value_render == "FORMATTED_VALUE" and value is not None:
            return java_text(int(value) if isinstance(value, float) and value.is_integer() else value)
        return value

    return cell


def _slug(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", title).strip("_") or "sheet"
