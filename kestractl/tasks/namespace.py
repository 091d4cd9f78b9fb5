"""Kestra's namespace file tasks (`io.kestra.plugin.core.namespace.*`): upload working-directory or
internal-storage files into a namespace, download namespace files into the execution, delete them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.namespace_files import NamespaceFiles, path_matcher
from kestractl.tasks.base import RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.workingdir import files_under, string_list, text_value

PACKAGE = "io.kestra.plugin.core.namespace."
CONFLICTS = ("OVERWRITE", "ERROR", "SKIP")


class _NamespaceTask(RunnableTask):
    properties: ClassVar[dict[str, Prop]] = {
        "namespace": Prop("The namespace whose files are used (default: the flow's).", type="string"),
        "files": Prop("A file or a list of files: globs (`glob:` or `regex:` prefixes allowed).", required=True),
    }

    def namespace_files(self, ctx: RunContext) -> NamespaceFiles:
        namespace = self.props.get("namespace")
        return NamespaceFiles(ctx.storage, text_value(ctx.render(namespace)) if namespace else ctx.flow.namespace)

    def patterns(self, ctx: RunContext) -> list[str]:
        patterns = string_list(ctx.render(self.props.get("files")))
        if not patterns:
            raise TaskError("files: required, a file pattern or a list of them")
        return patterns


@register
class UploadFiles(_NamespaceTask):
    """`files` (working-directory globs or kestra:// URIs) or `filesMap` (destination → kestra:// URI)."""

    type_name = PACKAGE + "UploadFiles"
    properties: ClassVar[dict[str, Prop]] = {
        "files": Prop("Files of the working directory to upload (globs, or kestra:// URIs); a map acts as `filesMap`."),
        "filesMap": Prop("A map (or a JSON string of one) of destination file name to the kestra:// URI to upload."),
        "destination": Prop("The destination folder.", type="string", default="/"),
        "conflict": Prop(
            "What to do when a file already exists.", type="string", default="OVERWRITE", values=CONFLICTS
        ),
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """`files` or `filesMap`."""
        missing = [] if spec.get("files") or spec.get("filesMap") else ["files: required (or filesMap)"]
        return missing + super().validate(spec)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        target = self.namespace_files(ctx)
        destination = ctx.prop("destination")
        files = ctx.render(self.props.get("files"))
        for name, source in self._sources(ctx, files, destination).items():
            self._store(ctx, target, name, source)
        return {}

    def _sources(self, ctx: RunContext, files: Any, destination: str) -> dict[str, str | Path]:
        """Destination path → a kestra:// URI or a local file."""
        sources: dict[str, str | Path] = {}
        mapped = files if isinstance(files, dict) else self._files_map(ctx)
        for name, uri in mapped.items():
            if ctx.storage.exists(text_value(uri)):
                sources[f"{destination}/{name}"] = text_value(uri)
        patterns = [] if isinstance(files, dict) else string_list(files)
        uris = [p for p in patterns if p.startswith("kestra://")]
        sources.update({f"{destination}/{uri.rsplit('/', 1)[-1]}": uri for uri in uris if ctx.storage.exists(uri)})
        globs = [p for p in patterns if not p.startswith("kestra://")]
        if globs:
            wd = ctx.working_directory()
            matches = path_matcher(globs, base=str(wd))
            sources.update({f"{destination}/{n}": p for n, p in files_under(wd) if matches(str(p))})
        return sources

    def _files_map(self, ctx: RunContext) -> dict[str, Any]:
        mapped = ctx.render(self.props.get("filesMap")) or {}
        if isinstance(mapped, str):
            try:
                mapped = json.loads(mapped)
            except ValueError as err:
                raise TaskError(f"filesMap: not a JSON map ({err})") from err
        if not isinstance(mapped, dict):
            raise TaskError("filesMap must be a map of file name to kestra:// URI")
        return mapped

    def _store(self, ctx: RunContext, target: NamespaceFiles, name: str, source: str | Path) -> None:
        conflict = ctx.prop("conflict")
        if target.exists(name) and conflict != "OVERWRITE":
            if conflict == "ERROR":
                raise TaskError(f"File {name} already exists and conflict is set to ERROR")
            ctx.log("DEBUG", f"File {name} already exists and conflict is set to {conflict}, skipping")
            return
        target.put(name, ctx.storage.local_copy(source) if isinstance(source, str) else source)
        ctx.log("DEBUG", f"File {name} uploaded to namespace {target.namespace}")


@register
class DownloadFiles(_NamespaceTask):
    type_name = PACKAGE + "DownloadFiles"
    properties: ClassVar[dict[str, Prop]] = {
        "destination": Prop("The folder the downloaded files are stored in.", type="string", default="")
    }
    outputs = {"files": "The downloaded files: namespace path → `kestra://` URI."}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.namespace_files(ctx)
        destination = ctx.prop("destination")
        downloaded = {
            f"/{path}": ctx.put_file(source.local(path), f"{destination}/{path}".lstrip("/"))
            for path in source.find(path_matcher(self.patterns(ctx)))
        }
        ctx.metric("downloaded", "counter", len(downloaded))
        return {"files": downloaded}


@register
class DeleteFiles(_NamespaceTask):
    type_name = PACKAGE + "DeleteFiles"
    properties: ClassVar[dict[str, Prop]] = {
        "deleteParentFolder": Prop(
            "Whether to delete the parent folders left empty by the deletion.", type="boolean", default=False
        ),
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        target = self.namespace_files(ctx)
        prune = ctx.prop("deleteParentFolder")
        deleted = [path for path in target.find(path_matcher(self.patterns(ctx))) if target.delete(path, prune)]
        for path in deleted:
            ctx.log("DEBUG", f"Deleted {path}")
        ctx.metric("deleted", "counter", len(deleted))
        return {}
