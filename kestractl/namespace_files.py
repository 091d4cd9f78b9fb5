"""Namespace files: each namespace's own file tree (scripts, SQL, configs) in internal storage.

A file `a/b.sql` of namespace `company.team` lives at `kestra:///company/team/_files/a/b.sql`, as in Kestra.
Paths are relative, `/`-separated, never climb out (`..`), have components of at most 255 characters and
never enter `_flows` (Kestra reserves it for flows in zip exports). Kestra's glob rules (`PathMatcherPredicate`)
and a `.kestraignore` reader live here too, since every door (CLI, API, tasks, server folder) needs them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kestractl.errors import NotFoundError, ValidationError
from kestractl.storage import SCHEME, Entry, Storage

FLOWS_FOLDER = "_flows"
MAX_COMPONENT = 255
IGNORE_FILE = ".kestraignore"
MAX_UNZIPPED_BYTES = 1024**3  # an uploaded zip may not unpack to more (a zip bomb fills the disk)
NAMESPACE_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")  # each part a storage folder
_GLOB_TOKEN = re.compile(r"\*\*|\\.|\[!?\]?[^\]]*\]|[*?{},]|[^*?{},\[\\]+|.")


def files_prefix(namespace: str) -> str:
    """The storage path of a namespace's files (Kestra's `/%s/_files`)."""
    return f"/{namespace.replace('.', '/')}/_files"


def normalize(path: str) -> str:
    """A namespace file path as kept: relative, `/`-separated, no `.` parts; `''` is the root."""
    if "\x00" in path:
        raise ValidationError(f"Invalid path '{path!r}': it holds a NUL character")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValidationError(f"Invalid path '{path}': use the full path, not a relative '..' path")
    if any(len(p) > MAX_COMPONENT for p in parts):
        raise ValidationError(f"Invalid path '{path}': a file or folder name is longer than {MAX_COMPONENT} characters")
    if parts[:1] == [FLOWS_FOLDER]:
        raise ValidationError(f"Forbidden path: /{'/'.join(parts)} ({FLOWS_FOLDER} is reserved for flows)")
    return "/".join(parts)


def glob_regex(pattern: str) -> str:
    """Java's glob as a regex: `*` stays in a folder, `**` crosses folders, `?`, `[a-z]`, `[!x]`, `{a,b}`."""
    out, depth = [], 0
    for token in _GLOB_TOKEN.findall(pattern):
        if token in ("**", "*", "?"):
            out.append({"**": ".*", "*": "[^/]*", "?": "[^/]"}[token])
        elif token == "{" or (token in ",}" and depth):
            depth += {"{": 1, "}": -1}.get(token, 0)
            out.append({"{": "(?:", "}": ")", ",": "|"}[token])
        elif token.startswith("[") and len(token) > 2:
            body = token[1:-1].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
        else:
            out.append(re.escape(token[-1] if token.startswith("\\") else token))
    return "".join(out)


def _pattern_regex(pattern: str, base: str | None) -> re.Pattern[str]:
    """Kestra's `PathMatcherPredicate`: `regex:` and `glob:` as given; a bare glob is anchored to `base`, or
    (without one) made recursive when it starts with a word character (`a.py` → `**/a.py`)."""
    try:
        if pattern.startswith("regex:"):
            return re.compile(pattern.removeprefix("regex:"))
        if pattern.startswith("glob:"):
            return re.compile(glob_regex(pattern.removeprefix("glob:")))
        if base is not None:
            return re.compile(re.escape(base.rstrip("/")) + glob_regex("/" + pattern.lstrip("/")))
        return re.compile(glob_regex("**/" + pattern if re.match(r"\w", pattern) else pattern))
    except re.error as err:
        raise ValidationError(f"Invalid file pattern '{pattern}': {err}") from err


def path_matcher(patterns: Iterable[str], base: str | None = None) -> Callable[[str], bool]:
    """True for a path (`/a/b.py`, or absolute under `base`) matching any of the patterns."""
    regexes = [_pattern_regex(p, base) for p in patterns]
    return lambda path: any(r.fullmatch(path) for r in regexes)


def include_exclude(include: list[str], exclude: list[str]) -> Callable[[str], bool]:
    """Kestra's include AND NOT exclude; no include means every file."""
    included = path_matcher(include) if include else (lambda path: True)
    excluded = path_matcher(exclude) if exclude else (lambda path: False)
    return lambda path: included(path) and not excluded(path)


class IgnoreRules:
    """A `.kestraignore` in gitignore syntax: the last matching line wins, `!` re-includes, a `/` inside
    anchors the pattern to the folder's root, a trailing `/` matches folders only; an ignored folder
    ignores everything in it."""

    def __init__(self, text: str = "") -> None:
        self.rules: list[tuple[re.Pattern[str], bool, bool]] = []
        for raw in text.splitlines():
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negate, line = line.startswith("!"), line.removeprefix("!")
            folder_only, line = line.endswith("/"), line.rstrip("/")
            anchor = "" if "/" in line else "(?:.*/)?"
            self.rules.append((re.compile(anchor + glob_regex(line.lstrip("/"))), negate, folder_only))

    @classmethod
    def of(cls, folder: Path) -> IgnoreRules:
        ignore = folder / IGNORE_FILE
        return cls(ignore.read_text(encoding="utf-8") if ignore.is_file() else "")

    def ignores(self, relative: str) -> bool:
        parts = relative.split("/")
        folders = ("/".join(parts[:i]) for i in range(1, len(parts)))
        return any(self._matches(f, True) for f in folders) or self._matches(relative, False)

    def _matches(self, path: str, is_folder: bool) -> bool:
        result = False
        for regex, negate, folder_only in self.rules:
            if (is_folder or not folder_only) and regex.fullmatch(path):
                result = not negate
        return result


def local_files(folder: Path) -> list[tuple[str, Path]]:
    """The files of a local folder to upload as namespace files: relative name and path, `.kestraignore` applied."""
    rules = IgnoreRules.of(folder)
    found = [(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return [(name, path) for name, path in found if name != IGNORE_FILE and not rules.ignores(name)]


class NamespaceFiles:
    """One namespace's files, as Kestra's `InternalNamespace` and `NamespaceFileController` see them."""

    def __init__(self, storage: Storage, namespace: str) -> None:
        if not NAMESPACE_PATH.fullmatch(namespace):
            raise ValidationError(f"Invalid namespace '{namespace}': expected names joined by dots, e.g. company.team")
        self.storage = storage
        self.namespace = namespace

    def uri(self, path: str) -> str:
        return SCHEME + self.storage_path(path)

    def storage_path(self, path: str) -> str:
        return files_prefix(self.namespace) + "/" + normalize(path)

    def local(self, path: str) -> Path:
        """A file's local copy (checked to stay inside internal storage; missing when the file is)."""
        return self.storage.local_copy(self.uri(path))

    def is_folder(self, path: str) -> bool:
        """The root, or a folder (one that holds files, or an empty one made by `create_directory`)."""
        parent, _, name = normalize(path).rpartition("/")
        return not name or any(e.is_dir and e.name == name for e in self.entries(parent))

    def entries(self, path: str = "") -> list[Entry]:
        return self.storage.entries(self.storage_path(path))

    def put(self, path: str, source: Path | bytes) -> str:
        if not normalize(path):
            raise ValidationError("A namespace file needs a path")
        if self.is_folder(path):
            raise ValidationError(f"'/{normalize(path)}' is a folder in namespace '{self.namespace}'")
        return self.storage.put(self.storage_path(path), source)

    def get(self, path: str) -> bytes:
        if not self.exists(path):
            raise NotFoundError(f"File '/{normalize(path)}' not found in namespace '{self.namespace}'")
        return self.storage.read_bytes(self.uri(path))

    def exists(self, path: str) -> bool:
        return self.storage.exists(self.uri(path))

    def paths(self) -> list[str]:
        """Every file, recursively, as relative paths, sorted."""
        start = len(self.uri(""))
        return [uri[start:] for uri, _ in self.storage.files_under(files_prefix(self.namespace))]

    def find(self, matches: Callable[[str], bool]) -> list[str]:
        """The files whose `/`-led path (`/a/b.py`, what Kestra's patterns see) matches."""
        return [p for p in self.paths() if matches("/" + p)]

    def stats(self, path: str = "") -> dict[str, Any]:
        """Kestra's FileAttributes; the root is created on first look, as Kestra does."""
        if not normalize(path):
            self.storage.make_folder(files_prefix(self.namespace))
            return _attributes(Entry("_files", True))
        parent, _, name = normalize(path).rpartition("/")
        found = next((e for e in self.entries(parent) if e.name == name), None)
        if found is None:
            raise NotFoundError(f"'/{normalize(path)}' not found in namespace '{self.namespace}'")
        return _attributes(found)

    def directory(self, path: str = "") -> list[dict[str, Any]]:
        """The attributes of a folder's direct children; an unknown root is an empty list."""
        if normalize(path) and not self.is_folder(path):
            raise NotFoundError(f"Folder '/{normalize(path)}' not found in namespace '{self.namespace}'")
        return [_attributes(entry) for entry in self.entries(path)]

    def create_directory(self, path: str) -> None:
        if self.exists(path):
            raise ValidationError(f"'/{normalize(path)}' is a file in namespace '{self.namespace}'")
        self.storage.make_folder(self.storage_path(path))

    def move(self, source: str, target: str) -> None:
        """A file, or a folder's files, copied to the new path, then deleted from the old one."""
        if not normalize(source) or not normalize(target):
            raise ValidationError("The namespace root cannot be moved, nor anything moved onto it")
        if not self.exists(source) and not self.is_folder(source):
            raise NotFoundError(f"'/{normalize(source)}' not found in namespace '{self.namespace}'")
        if self.exists(target) or self.is_folder(target):
            raise ValidationError(f"'/{normalize(target)}' already exists in namespace '{self.namespace}'")
        if self.exists(source):
            self.put(target, self.local(source))
        else:
            self.storage.make_folder(self.storage_path(target))
            origin = normalize(source)
            for name in [p for p in self.paths() if p.startswith(origin + "/")]:
                self.put(normalize(target) + name[len(origin) :], self.local(name))
        self.delete(source)

    def delete(self, path: str, prune: bool = True) -> bool:
        """Delete a file or a folder, then (`prune`) the folders it leaves empty, as Kestra's API; False if absent."""
        name = normalize(path)
        deleted = bool(name) and self.storage.delete(self.uri(path))
        if not deleted and self.is_folder(path):
            self.storage.delete_under(self.storage_path(path))
            deleted = True
        if deleted and prune and name:
            self._prune(name.rpartition("/")[0])
        return deleted

    def _prune(self, folder: str) -> None:
        while folder and not self.entries(folder):
            self.storage.delete_under(self.storage_path(folder))
            folder = folder.rpartition("/")[0]

    def search(self, query: str) -> list[str]:
        return [f"/{p}" for p in self.paths() if query in f"/{p}"]

    def export_zip(self, extra: dict[str, str] | None = None) -> bytes:
        """Every file in a zip, plus `extra` entries (Kestra adds the namespace's flows as `_flows/<id>.yml`)."""
        import zipfile  # here and in import_zip: the only users, so running a flow does not load it

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in self.paths():
                archive.write(self.local(path), path)
            for name, text in (extra or {}).items():
                archive.writestr(name, text)
        return buffer.getvalue()

    def import_zip(self, data: bytes) -> dict[str, bytes]:
        """Extract every file of a zip into the namespace; returns the `_flows/<x>.yml` entries, to import as flows."""
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = [entry for entry in archive.infolist() if not entry.is_dir()]
                if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
                    raise ValidationError(f"Zip file too large: over {MAX_UNZIPPED_BYTES:,} bytes once extracted")
                flows = {e.filename: archive.read(e) for e in entries if _is_flow_entry(e.filename)}
                for entry in entries:
                    if entry.filename not in flows:
                        self.put(entry.filename, archive.read(entry))
        except zipfile.BadZipFile as err:
            raise ValidationError(f"Invalid zip file: {err}") from err
        return flows


def _is_flow_entry(name: str) -> bool:
    """`_flows/<x>.yml` is a flow; anything deeper under `_flows` is refused, as Kestra does."""
    parts = name.strip("/").split("/")
    if parts[0] != FLOWS_FOLDER:
        return False
    if len(parts) != 2:
        raise ValidationError(f"Invalid flow file path: /{name}")
    return True


def _attributes(entry: Entry) -> dict[str, Any]:
    """Kestra's FileAttributes (storages keep no creation time: the last change stands for it)."""
    return {
        "fileName": entry.name,
        "lastModifiedTime": entry.modified_ms,
        "creationTime": entry.modified_ms,
        "type": "Directory" if entry.is_dir else "File",
        "size": entry.size,
        "metadata": {},
    }
