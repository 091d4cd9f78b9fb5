"""Kestra's core storage tasks (`io.kestra.plugin.core.storage.*`): files in internal storage, streamed.

Every file is read line by line or in blocks, so a file of millions of lines never sits in memory
(DeduplicateItems keeps one entry per distinct key, as Kestra does). New files are written under the
task run through `RunContext.output_file`; `Delete` reaches only the flow's namespace and
`PurgeCurrentExecutionFiles` only the current execution's folder.
"""

from __future__ import annotations

import codecs
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from kestractl import ion
from kestractl.errors import KestraError, TaskError
from kestractl.expressions import is_truthy
from kestractl.namespace_files import path_matcher
from kestractl.storage import execution_prefix
from kestractl.tasks.base import RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.splitter import parse_size, split
from kestractl.tasks.workingdir import (
    files_under,
    string_list,
    strings_problems,
    text_value,
    type_problems,
    write_input_files,
)

PREFIX = "io.kestra.plugin.core.storage."
LEGACY = "io.kestra.core.tasks.storages."
FROM = {"from": Prop("The file to read (a `kestra://` internal storage URI).", type="string", required=True)}
EXTENSION = Prop("The extension of the created file.", type="string", default=".tmp")
SEPARATOR = Prop("The separator written after each line.", type="string", default="\n")
URI = {"uri": "The created file (a `kestra://` internal storage URI)."}
ITEMS = {
    "processedItemsTotal": "The number of records read.",
    "droppedItemsTotal": "The number of records dropped.",
}
BLOCK = 1 << 16


def _dynamic(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _whole(spec: dict[str, Any], key: str) -> list[str]:
    """A count of at least 1 (its kind is the declaration's check)."""
    value = spec.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        return [f"{key}: must be a whole number >= 1, not `{value}`"]
    return []


def stored_uri(ctx: RunContext, value: Any) -> str:
    """The rendered `kestra://` URI; anything else is one clear line."""
    uri = str(ctx.render(value))
    if not uri.startswith("kestra://"):
        raise TaskError(f"'{uri}' is not an internal storage URI (kestra:///…)")
    return uri


def source_file(ctx: RunContext, value: Any) -> tuple[str, Path]:
    """The rendered `kestra://` URI and its local copy; a missing file is one clear line."""
    uri = stored_uri(ctx, value)
    path = ctx.storage.local_copy(uri)
    if not path.is_file():
        raise TaskError(f"file not found in internal storage: {uri}")
    return uri, path


def new_file(ctx: RunContext, extension: str) -> tuple[Path, str]:
    """A new file for this task run, named after the task: (local path, URI)."""
    if "/" in extension or "\\" in extension:
        raise TaskError(f"Invalid extension '{extension}': it must not hold a path separator")
    assert ctx.task_run is not None
    return ctx.output_file(ctx.task_run.task_id + extension)


def suffix(uri: str) -> str:
    """The extension of a URI's file name, `.tmp` when it has none (as Kestra's temp files)."""
    return Path(uri.rsplit("/", 1)[-1]).suffix or ".tmp"


@register
class Write(RunnableTask):
    """Write `content` to a new internal-storage file."""

    type_name = PREFIX + "Write"
    properties: ClassVar[dict[str, Prop]] = {
        "content": Prop("The file content.", required=True),
        "extension": Prop("The file extension (e.g. `.txt`).", type="string", default=".tmp"),
    }
    outputs = URI

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        path, uri = new_file(ctx, ctx.prop("extension"))
        path.write_bytes(text_value(ctx.render(self.spec["content"])).encode())
        return {"uri": uri}


@register
class Concat(RunnableTask):
    """Concatenate files, in order, into one; `separator` follows each file."""

    type_name = PREFIX + "Concat"
    aliases = (LEGACY + "Concat",)
    properties: ClassVar[dict[str, Prop]] = {
        "files": Prop(
            "The files to concatenate: a list of `kestra://` URIs, or a JSON array of them as a string.", required=True
        ),
        "separator": Prop("Written after each file; none by default.", type="string"),
        "extension": EXTENSION,
    }
    outputs = URI

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        tail = (ctx.prop("separator") or "").encode()
        path, uri = new_file(ctx, ctx.prop("extension"))
        with path.open("wb") as out:
            for item in self._files(ctx):
                with source_file(ctx, item)[1].open("rb") as part:
                    shutil.copyfileobj(part, out, BLOCK)
                out.write(tail)
        return {"uri": uri}

    def _files(self, ctx: RunContext) -> list[Any]:
        files = self.spec["files"]
        if isinstance(files, list):
            return files
        if not isinstance(files, str):
            raise TaskError(f"Invalid `files` property with type '{type(files).__name__}'")
        try:
            parsed = json.loads(str(ctx.render(files)))
        except ValueError as exc:
            raise TaskError(f"Invalid `files`: not a JSON array of URIs ({exc})") from None
        if not isinstance(parsed, list):
            raise TaskError("Invalid `files`: must be a list of URIs")
        return [str(item) for item in parsed]


@register
class Split(RunnableTask):
    """Split a file into several by `bytes`, `partitions` or `rows` (the batches of ForEachItem)."""

    type_name = PREFIX + "Split"
    aliases = (LEGACY + "Split",)
    properties: ClassVar[dict[str, Prop]] = {
        **FROM,
        "bytes": Prop("Split into files of this size, e.g. `10MB`.", type="string"),
        "partitions": Prop("Split into this many files, lines dealt round-robin.", type="integer"),
        "rows": Prop("Split into files of this many lines.", type="integer"),
        "separator": SEPARATOR,
    }
    outputs = {"uris": "The created files (`kestra://` URIs)."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """One of bytes, partitions or rows; counts of at least 1; a size Kestra can read."""
        problems = super().validate(spec) + _whole(spec, "partitions") + _whole(spec, "rows")
        if all(spec.get(key) is None for key in ("bytes", "partitions", "rows")):
            problems.append("bytes: one of bytes, partitions or rows is required")
        if spec.get("bytes") is not None and not _dynamic(spec["bytes"]):
            try:
                parse_size(spec["bytes"])
            except ValueError as exc:
                problems.append(f"bytes: {exc}")
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri, source = source_file(ctx, self.spec["from"])
        size, partitions, rows = ctx.prop("bytes"), ctx.prop("partitions"), ctx.prop("rows")
        uris: list[str] = []

        def opener(index: int) -> BinaryIO:
            path, part = new_file(ctx, f"_{index:06d}{suffix(uri)}")
            uris.append(part)
            return path.open("wb")

        try:
            split(
                source,
                opener,
                rows=rows or None,
                size=parse_size(size) if size else None,
                partitions=partitions or None,
                separator=ctx.prop("separator"),
            )
        except ValueError as exc:
            raise TaskError(f"Invalid split setting: {exc}") from None
        return {"uris": uris}


@register
class Size(RunnableTask):
    """The size in bytes of an internal-storage file."""

    type_name = PREFIX + "Size"
    aliases = (LEGACY + "Size",)
    properties: ClassVar[dict[str, Prop]] = {
        "uri": Prop("The file (a `kestra://` internal storage URI).", type="string", required=True)
    }
    outputs = {"size": "The file's size in bytes."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = stored_uri(ctx, self.spec["uri"])
        size = ctx.storage.size(uri)  # asked of the storage: a bucket's object is not downloaded for it
        if size is None:
            raise TaskError(f"file not found in internal storage: {uri}")
        return {"size": size}


@register
class Delete(RunnableTask):
    """Delete one internal-storage file of the flow's namespace."""

    type_name = PREFIX + "Delete"
    aliases = (LEGACY + "Delete",)
    properties: ClassVar[dict[str, Prop]] = {
        "uri": Prop("The file to delete (a `kestra://` internal storage URI).", type="string", required=True),
        "errorOnMissing": Prop("Fail when the file does not exist.", type="boolean", default=False),
    }
    outputs = {"uri": "The file.", "deleted": "Whether it was deleted."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = str(ctx.render(self.spec["uri"]))
        path = ctx.storage.local_path(uri)
        namespace = "/" + ctx.execution.namespace.replace(".", "/")
        if not path.is_relative_to(ctx.storage.folder(namespace)):
            raise TaskError(f"'{uri}' does not belong to the namespace {ctx.execution.namespace}")
        deleted = ctx.storage.delete(uri)
        if not deleted and ctx.prop("errorOnMissing"):
            raise TaskError(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


@register
class Reverse(RunnableTask):
    """Write a file's lines in reverse order, each followed by `separator`."""

    type_name = PREFIX + "Reverse"
    aliases = (LEGACY + "Reverse",)
    properties: ClassVar[dict[str, Prop]] = {
        **FROM,
        "separator": SEPARATOR,
        "charset": Prop("The file's character set.", type="string", default="UTF-8"),
    }
    outputs = URI

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri, source = source_file(ctx, self.spec["from"])
        charset = ctx.prop("charset")
        try:
            ascii_lines = codecs.lookup(charset).encode("\n")[0] == b"\n"
        except LookupError:
            raise TaskError(f"Unknown charset '{charset}'") from None
        if not ascii_lines:
            raise TaskError(f"Reverse reads lines of ASCII-compatible charsets only, not {charset}")
        separator = ctx.prop("separator").encode(charset)
        path, out_uri = new_file(ctx, suffix(uri))
        with source.open("rb") as fh, path.open("wb") as out:
            for line in reversed_lines(fh):
                out.write(line + separator)
        return {"uri": out_uri}


def reversed_lines(fh: BinaryIO) -> Iterator[bytes]:
    """The lines of a file from the last to the first, without their ends, reading blocks from the end."""
    end = fh.seek(0, 2)
    rest = b""
    first = True
    while end > 0:
        start = max(0, end - BLOCK)
        fh.seek(start)
        lines = (fh.read(end - start) + rest).split(b"\n")
        end, rest = start, lines.pop(0)
        if first and lines and lines[-1] == b"":  # the file's final line end starts no new line
            lines.pop()
        first = False
        yield from (line.removesuffix(b"\r") for line in reversed(lines))
    if rest or not first:
        yield rest.removesuffix(b"\r")


def _records(source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each line of an ION file with its record (a map), line by line."""
    with source.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = ion.loads(line)
            except ValueError as exc:
                raise TaskError(f"line {number} is not valid ION: {exc}") from None
            if not isinstance(record, dict):
                raise TaskError(f"line {number} is not an ION record (a map): {line.strip()[:80]}")
            yield line.rstrip("\r\n"), record


@register
class DeduplicateItems(RunnableTask):
    """Keep the last record of each key (`expr`) of an ION file, in the file's order."""

    type_name = PREFIX + "DeduplicateItems"
    aliases = (LEGACY + "DeduplicateItems",)
    properties: ClassVar[dict[str, Prop]] = {
        **FROM,
        "expr": Prop(
            "The key of a record: an expression rendered with the record's fields as variables.",
            type="string",
            required=True,
            dynamic=False,
        ),
    }
    outputs = {**URI, "numKeys": "The number of distinct keys (records kept).", **ITEMS}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        _, source = source_file(ctx, self.spec["from"])
        expr = self.spec["expr"]
        last: dict[str, int] = {}
        for index, (_, record) in enumerate(_records(source)):
            last[str(ctx.render(expr, record))] = index
        kept = set(last.values())  # each key is rendered once: the second pass only copies the kept lines
        path, uri = new_file(ctx, ".ion")
        processed = 0
        with path.open("w", encoding="utf-8") as out:
            for processed, (line, _) in enumerate(_records(source), start=1):
                if processed - 1 in kept:
                    out.write(line + "\n")
        return {
            "uri": uri,
            "numKeys": len(last),
            "processedItemsTotal": processed,
            "droppedItemsTotal": processed - len(last),
        }


@register
class FilterItems(RunnableTask):
    """Keep (INCLUDE) or drop (EXCLUDE) the records of an ION file for which `filterCondition` is true."""

    type_name = PREFIX + "FilterItems"
    aliases = (LEGACY + "FilterItems",)
    properties: ClassVar[dict[str, Prop]] = {
        **FROM,
        "filterCondition": Prop(
            "An expression rendered with the record's fields; `0`, `-0`, `''` and `false` are false.",
            type="string",
            required=True,
            dynamic=False,
        ),
        "filterType": Prop(
            "INCLUDE keeps the matching records, EXCLUDE drops them.",
            type="string",
            default="INCLUDE",
            values=("INCLUDE", "EXCLUDE"),
        ),
        "errorOrNullBehavior": Prop(
            "When the condition fails or is null: FAIL, INCLUDE or EXCLUDE the record.",
            type="string",
            default="FAIL",
            values=("FAIL", "INCLUDE", "EXCLUDE"),
        ),
    }
    outputs = {**URI, **ITEMS}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        _, source = source_file(ctx, self.spec["from"])
        include = ctx.prop("filterType") == "INCLUDE"
        on_error = ctx.prop("errorOrNullBehavior")
        path, uri = new_file(ctx, ".ion")
        processed = dropped = 0
        with path.open("w", encoding="utf-8") as out:
            for line, record in _records(source):
                processed += 1
                if self._keeps(ctx, record, include, on_error):
                    out.write(line + "\n")
                else:
                    dropped += 1
        return {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}

    def _keeps(self, ctx: RunContext, record: dict[str, Any], include: bool, on_error: str) -> bool:
        condition = self.spec["filterCondition"]
        try:
            rendered = ctx.render(condition, record)
        except KestraError as exc:
            if on_error == "FAIL":
                raise TaskError(exc.message) from None
            return on_error == "INCLUDE"
        if rendered is None:
            if on_error == "FAIL":
                raise TaskError(f"Expression `{condition}` return `null` on item `{ion.dumps(record)}`")
            return on_error == "INCLUDE"
        return is_truthy(str(rendered).strip()) == include


@register
class PurgeCurrentExecutionFiles(RunnableTask):
    """Delete every internal-storage file of the current execution (inputs, outputs of its tasks)."""

    type_name = PREFIX + "PurgeCurrentExecutionFiles"
    aliases = (LEGACY + "PurgeExecution", PREFIX + "PurgeExecution")
    outputs = {"uris": "The deleted files (`kestra://` URIs)."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        execution = ctx.execution
        prefix = execution_prefix(execution.namespace, execution.flow_id, execution.id)
        uris = [uri for uri, _ in ctx.storage.files_under(prefix)]
        ctx.storage.delete_under(prefix)
        ctx.info(f"{len(uris)} file(s) deleted")
        return {"uris": uris}


@register
class LocalFiles(RunnableTask):
    """Deprecated: write `inputs` into the working directory and store the files matching `outputs`."""

    type_name = PREFIX + "LocalFiles"
    aliases = (LEGACY + "LocalFiles",)
    properties: ClassVar[dict[str, Prop]] = {
        "inputs": Prop("Files to create in the working directory: a map (or a JSON map) of name to content or URI."),
        "outputs": Prop("Globs, relative to the working directory, of the files to store (output `uris`)."),
    }
    outputs = {"uris": "The stored files: name → `kestra://` URI."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """`inputs` a map or a JSON text of one; `outputs` a glob or a list of them."""
        problems = super().validate(spec) + type_problems(spec, "inputs", (dict, str), "a map of file name to content")
        return problems + strings_problems(spec, "outputs")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        workdir = ctx.working_directory()
        if self.spec.get("inputs") is not None:
            write_input_files(ctx, workdir, self.spec["inputs"], {})
        matches = path_matcher(string_list(ctx.render(self.spec.get("outputs"))), base=str(workdir))
        uris = {name: ctx.put_file(path, name) for name, path in files_under(workdir) if matches(str(path))}
        return {"uris": uris}
