"""PostgreSQL `CopyIn` and `CopyOut` (Kestra's `AbstractCopy`): `COPY table FROM STDIN` from an internal-storage
file, and `COPY (query) | table TO STDOUT` into one, streamed in blocks through psycopg 3's COPY support.
The COPY statement is built from the properties as Kestra builds it (`FORMAT`, `DELIMITER`, `HEADER` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kestractl.plugin import Prop, RunContext, RunnableTask, TaskError, register
from kestractl.plugins.jdbc.base import guarded, stored_file
from kestractl.plugins.jdbc.postgresql import PostgresConnection, psycopg_errors

FORMATS = ("TEXT", "CSV", "BINARY")
BLOCK = 1 << 16
# COPY options: the words written when a boolean property is true, those whose value is quoted, column lists.
FLAGS = (("OIDS", "oids"), ("FREEZE", "freeze"))
QUOTED = (
    ("DELIMITER", "delimiter"), ("NULL", "nullString"), ("QUOTE", "quote"), ("ESCAPE", "escape"),
    ("ENCODING", "encoding"),
)  # fmt: skip
COLUMN_LISTS = (("FORCE_QUOTE", "forceQuote"), ("FORCE_NOT_NULL", "forceNotNull"), ("FORCE_NULL", "forceNull"))


def _quoted(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class _Copy(PostgresConnection, RunnableTask):
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "url": Prop("`jdbc:postgresql://host:port/database` (or `postgresql://…`).", type="string", required=True),
        "username": Prop("The database user.", type="string"),
        "password": Prop("The database user's password.", type="string"),
        "table": Prop("The table (optionally schema-qualified).", type="string"),
        "columns": Prop("The columns to copy (default: all).", type="array"),
        "format": Prop("The data's format.", type="string", default="TEXT", values=FORMATS),
        "oids": Prop("Copy each row's OID.", type="boolean"),
        "freeze": Prop("Copy with the rows already frozen.", type="boolean"),
        "delimiter": Prop("The column separator (tab in TEXT, comma in CSV).", type="string"),
        "nullString": Prop("The text of a null value.", type="string"),
        "header": Prop("CSV: the file has a header line.", type="boolean"),
        "quote": Prop("CSV: the quoting character.", type="string"),
        "escape": Prop("CSV: the character before a quote inside a quoted value.", type="string"),
        "forceQuote": Prop("CSV, out: quote these columns' non-null values (`*`: all).", type="array"),
        "forceNotNull": Prop("CSV, in: never match these columns against the null string.", type="array"),
        "forceNull": Prop("CSV, in: match these columns against the null string even when quoted.", type="array"),
        "encoding": Prop("The file's encoding (default: the client's).", type="string"),
    }
    outputs = {"rowCount": "How many rows were copied."}

    def copy_sql(self, ctx: RunContext, query: str | None, direction: str) -> str:
        """`COPY <table (columns) | (query)> <FROM STDIN | TO STDOUT> WITH (options)`, as Kestra writes it."""
        if query is not None:
            source = f"({query})"
        elif ctx.prop("table"):
            columns = ctx.prop("columns") or []
            source = ctx.prop("table") + (f" ({', '.join(map(str, columns))})" if columns else "")
        else:
            raise TaskError("table: required")
        options = self._options(ctx)
        return f"COPY {source} {direction}" + (f" WITH ({', '.join(options)})" if options else "")

    def _options(self, ctx: RunContext) -> list[str]:
        options = [] if ctx.prop("format") == "TEXT" else [f"FORMAT {ctx.prop('format')}"]
        options += [word for word, key in FLAGS if ctx.prop(key)]
        options += [f"{word} {_quoted(ctx.prop(key))}" for word, key in QUOTED if ctx.prop(key) is not None]
        if ctx.prop("header") is not None:
            options.append(f"HEADER {'TRUE' if ctx.prop('header') else 'FALSE'}")
        for word, key in COLUMN_LISTS:
            columns = [str(column) for column in ctx.prop(key) or []]
            if columns:
                every = word == "FORCE_QUOTE" and columns == ["*"]
                options.append(f"{word} {'*' if every else '(' + ', '.join(columns) + ')'}")
        return options


@register
class CopyIn(_Copy):
    """Load an internal-storage file (CSV, text or binary COPY data) into a PostgreSQL table."""

    type_name = "io.kestra.plugin.jdbc.postgresql.CopyIn"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "from": Prop("The kestra:// file to load.", type="string", required=True)
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = stored_file(ctx, ctx.prop("from"), "from")
        sql = self.copy_sql(ctx, None, "FROM STDIN")
        with guarded(ctx, "PostgreSQL", psycopg_errors()):
            with self.connect_postgres(ctx) as con, con.cursor() as cursor, source.open("rb") as fh:
                with cursor.copy(sql) as copy:
                    while block := fh.read(BLOCK):
                        copy.write(block)
                rows = max(cursor.rowcount, 0)
        ctx.metric("rows", "counter", float(rows))
        return {"rowCount": rows}


@register
class CopyOut(_Copy):
    """Copy a PostgreSQL table or a query's rows into an internal-storage file (CSV, text or binary)."""

    type_name = "io.kestra.plugin.jdbc.postgresql.CopyOut"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "sql": Prop("A SELECT (or a data-changing statement with RETURNING) whose rows to copy.", "string")
    }
    outputs = {"uri": "The copied data in internal storage."}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        sql = self.copy_sql(ctx, ctx.prop("sql"), "TO STDOUT")
        path, uri = ctx.output_file("copy-out")
        with guarded(ctx, "PostgreSQL", psycopg_errors()):
            with self.connect_postgres(ctx) as con, con.cursor() as cursor, path.open("wb") as fh:
                with cursor.copy(sql) as copy:
                    for block in copy:
                        fh.write(block)
                rows = max(cursor.rowcount, 0)
        ctx.metric("rows", "counter", float(rows))
        return {"uri": uri, "rowCount": rows}
