"""What script tasks and WorkingDirectory share: the files laid into the working directory before the work
(namespace files first, then `inputFiles`) and the `outputFiles` stored after it.

Follows Kestra's `NamespaceFilesUtils.loadNamespaceFiles`, `FilesService.inputFiles` and `outputFiles`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.namespace_files import NamespaceFiles, include_exclude, path_matcher
from kestractl.tasks.base import RunContext, Task, is_true
from kestractl.tasks.properties import Prop

NAMESPACE_FILES_KEYS = ("enabled", "include", "exclude", "namespaces", "ifExists", "folderPerNamespace")
IF_EXISTS = ("OVERWRITE", "FAIL", "WARN", "IGNORE")


def text_value(value: Any) -> str:
    """A property value as Kestra's Jackson would turn it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def string_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [text_value(item) for item in value] if isinstance(value, list) else [text_value(value)]


def inside(root: Path, name: str) -> Path:
    """A file path under the working directory; Kestra only accepts relative paths."""
    path = (root / name).resolve()
    if name.startswith("/") or root.resolve() not in path.parents:
        raise TaskError(f"Invalid file (only relative path is supported) for path '{name}'")
    return path


def files_under(root: Path) -> list[tuple[str, Path]]:
    """Every file below `root` with its relative POSIX name, in a stable order."""
    return [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*")) if p.is_file()]


def strings_problems(spec: dict[str, Any], key: str, non_empty: bool = False) -> list[str]:
    """`key`, when present, must be a string or a list of scalars (YAML `- echo a: b` is a map: a common slip)."""
    value = spec.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [f"{key}: must not be empty"] if non_empty and not value.strip() else []
    if not isinstance(value, list):
        return [f"{key}: must be a list of strings"]
    if non_empty and not value:
        return [f"{key}: must not be empty"]
    return [
        f"{key}[{i}]: must be a string" for i, item in enumerate(value) if item is None or isinstance(item, dict | list)
    ]


def type_problems(spec: dict[str, Any], key: str, kinds: tuple[type, ...], what: str) -> list[str]:
    """`key`, when present, must be one of `kinds` (a check a single declared kind cannot say)."""
    value = spec.get(key)
    return [f"{key}: must be {what}"] if value is not None and not isinstance(value, kinds) else []


def namespace_files_problems(spec: dict[str, Any]) -> list[str]:
    """`namespaceFiles` must be a map of Kestra's keys (an `ifExists` among its four values)."""
    block = spec.get("namespaceFiles")
    if block is None or isinstance(block, bool):  # some Kestra versions took `namespaceFiles: true`
        return []
    if not isinstance(block, dict):
        return ["namespaceFiles: must be a map (enabled, include, exclude, namespaces, ifExists, folderPerNamespace)"]
    problems = [f'namespaceFiles.{key}: Unrecognized field "{key}"' for key in block if key not in NAMESPACE_FILES_KEYS]
    if_exists = block.get("ifExists")
    if isinstance(if_exists, str) and "{{" not in if_exists and if_exists.upper() not in IF_EXISTS:
        problems.append(f"namespaceFiles.ifExists: must be one of {', '.join(IF_EXISTS)}")
    return problems


class TaskFiles(Task):
    """The `namespaceFiles`, `inputFiles` and `outputFiles` properties of tasks that own a working directory."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "namespaceFiles": Prop(
            "Inject namespace files into the working directory: a map of `enabled` (true), `include` and `exclude` "
            "globs, `namespaces` (the flow's), `ifExists` (OVERWRITE, FAIL, WARN, IGNORE), `folderPerNamespace`."
        ),
        "inputFiles": Prop(
            "The files to create in the working directory: a map (or a JSON string of one) of file name to content "
            "or kestra:// URI."
        ),
        "outputFiles": Prop(
            "The files of the working directory to send to internal storage: glob patterns relative to it (a list, "
            "or one string); output `outputFiles` maps each to its kestra:// URI."
        ),
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The declarations' checks, then inside `namespaceFiles` and the lists (a map or text: `inputFiles`)."""
        problems = super().validate(spec) + namespace_files_problems(spec)
        problems += type_problems(spec, "inputFiles", (dict, str), "a map of file name to content")
        return problems + strings_problems(spec, "outputFiles")

    def prepare_files(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> None:
        """Namespace files first, then `inputFiles` (which may overwrite them), as Kestra does."""
        if self.props.get("namespaceFiles") is not None:
            load_namespace_files(ctx, wd, ctx.render(self.props["namespaceFiles"], variables))
        write_input_files(ctx, wd, self.props.get("inputFiles") or {}, variables)

    def collect_outputs(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> dict[str, str]:
        """Files of the working directory matching an `outputFiles` pattern, stored by relative name."""
        patterns = string_list(ctx.render(self.props.get("outputFiles"), variables))
        if not patterns:
            return {}
        matches = path_matcher(patterns, base=str(wd))
        return {name: ctx.put_file(path, name) for name, path in files_under(wd) if matches(str(path))}


def write_input_files(ctx: RunContext, wd: Path, files: Any, variables: dict[str, Any]) -> None:
    """Kestra's `inputFiles`: a map (or a JSON string of one) of file name to text or `kestra://` URI, keys and
    values rendered; a null value is an empty file; stored files are copied, not read into memory."""
    if isinstance(files, str):
        try:
            files = json.loads(text_value(ctx.render(files, variables)))
        except ValueError as err:
            raise TaskError(f"Invalid `inputFiles`: not a JSON map ({err})") from err
    if not isinstance(files, dict):
        raise TaskError("Invalid `inputFiles`: expected a map of file name to content")
    for name, content in files.items():
        target = inside(wd, text_value(ctx.render(name, variables)))
        target.parent.mkdir(parents=True, exist_ok=True)
        value = "" if content is None else text_value(ctx.render(content, variables))
        if value.startswith("kestra://"):
            source = ctx.storage.local_copy(value)
            if not source.is_file():
                raise TaskError(f"file not found in internal storage: {value}")
            shutil.copyfile(source, target)
        else:
            target.write_text(value, encoding="utf-8")


def load_namespace_files(ctx: RunContext, wd: Path, settings: Any) -> None:
    """Copy the matching files of each namespace into `wd` (later namespaces override earlier ones)."""
    settings = settings if isinstance(settings, dict) else {"enabled": settings}
    if not is_true(settings.get("enabled"), True):
        return
    started = time.monotonic()
    namespaces = string_list(settings.get("namespaces")) or [ctx.flow.namespace]
    matches = include_exclude(string_list(settings.get("include")), string_list(settings.get("exclude")))
    if_exists = text_value(settings.get("ifExists") or "OVERWRITE").upper()
    per_namespace = is_true(settings.get("folderPerNamespace"), False)
    count = 0
    for namespace in namespaces:
        files = NamespaceFiles(ctx.storage, namespace)
        for path in files.find(matches):
            count += 1
            target = inside(wd, f"{namespace}/{path}" if per_namespace else path)
            if _may_write(ctx, target, path, if_exists):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(files.local(path), target)
    elapsed = time.monotonic() - started
    ctx.metric("namespacefiles.count", "counter", count)
    ctx.metric("namespacefiles.duration", "timer", elapsed)
    ctx.info(f"Loaded {count} namespace files from '{', '.join(namespaces)}' in {_hms(elapsed)}")


def _may_write(ctx: RunContext, target: Path, path: str, if_exists: str) -> bool:
    """Kestra's `FileExistComportment` for a file already in the working directory."""
    if not target.exists() or if_exists == "OVERWRITE":
        return True
    if if_exists == "FAIL":
        raise TaskError(f"File '{path}' already exists in the working directory and ifExists is FAIL")
    if if_exists == "WARN":
        ctx.log("WARN", f"File '{path}' already exists in the working directory: not overwritten")
    elif if_exists != "IGNORE":
        raise TaskError(f"namespaceFiles.ifExists must be one of {', '.join(IF_EXISTS)}, not '{if_exists}'")
    return False


def _hms(seconds: float) -> str:
    """Apache's `formatDurationHMS`: `00:00:01.234`."""
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"
