"""Internal storage in a folder (by default beside the database): `kestra:///…` URIs mapped to files under it.

Paths follow Kestra's layout (`/<namespace as path>/<flow>/executions/<id>/…`) so URIs a flow
prints look like the ones Kestra would give.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from kestractl.errors import StorageError
from kestractl.storage.base import SCHEME, Entry


class LocalStorage:
    """The `Storage` whose files are the local copies: reads and writes happen in place, nothing to upload."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()  # resolved once: every file a task reads is checked against it

    def local_path(self, uri: str) -> Path:
        """The file behind a `kestra:///` URI; refuses anything that escapes the root (`..`, links)."""
        if not uri.startswith(SCHEME):
            raise StorageError(f"'{uri}' is not an internal storage URI (kestra:///…)")
        if "\x00" in uri:
            raise StorageError(f"'{uri!r}' holds a NUL character, which no file name can")
        relative = uri[len(SCHEME) :].lstrip("/")
        plain = self._plain(relative)
        if plain is not None:
            return plain
        path = (self._real_root / relative).resolve()
        if not path.is_relative_to(self._real_root):
            raise StorageError(f"'{uri}' points outside internal storage")
        return path

    def _plain(self, relative: str) -> Path | None:
        """The path as it is when every part exists and none is `.`, `..` or a link, so that resolving it would
        give it back; None otherwise. The kernel walks the path once (`_real_path`); where it cannot say, one
        `lstat` per part below the root. A child execution reading its item costs a third of `resolve` (a walk
        from `/`)."""
        parts = relative.split("/")
        if "" in parts or "." in parts or ".." in parts:
            return None
        path = f"{self._real_root}{os.sep}{os.sep.join(parts)}"
        try:
            real = _real_path(path)
        except OSError:  # missing (or unreadable): `resolve` says what it is
            return None
        if real is None:
            return self._plain_parts(parts)
        # A link anywhere on the way leads elsewhere: the path the kernel reached differs from the one asked.
        return Path(path) if real == path else None

    def _plain_parts(self, parts: list[str]) -> Path | None:
        """`_plain` where the kernel cannot say which path it reached: one `lstat` per part below the root."""
        current = str(self._real_root)
        for part in parts:
            current = f"{current}{os.sep}{part}"
            try:
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    return None
            except OSError:
                return None
        return Path(current)

    def folder(self, prefix: str) -> Path:
        """The folder of a storage path we made ourselves (an execution's prefix): not resolved, so a file
        reached through a link planted inside it is not under it."""
        return self._real_root / prefix.lstrip("/")

    def folder_text(self, prefix: str) -> str:
        """`folder` as text, for a prefix made of plain names (`execution_prefix`, `files_prefix`): checking that
        a path lies under it is then a string comparison, with no Path built per read."""
        return f"{self._real_root}{os.sep}{prefix.strip('/')}"

    def put(self, path: str, source: Path | bytes) -> str:
        """Store bytes or a local file at `path` (a storage path starting with `/`); returns its URI."""
        uri = SCHEME + "/" + path.lstrip("/")
        target = self.local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        return uri

    def read_bytes(self, uri: str, path: Path | None = None) -> bytes:
        """The file's bytes; `path` is its `local_path`, when the caller already has it."""
        path = path or self.local_path(uri)
        if not path.is_file():
            raise StorageError(
                f"file not found in internal storage: {uri} (expected at {path}; it was moved or deleted: "
                "restore it there, or run the execution that wrote it again)"
            )
        return path.read_bytes()

    def local_copy(self, uri: str) -> Path:
        return self.local_path(uri)

    def local_folder(self, uri: str) -> Path:
        return self.local_path(uri)

    def upload(self, path: Path, uri: str) -> None:
        """Written in place already, unless `path` is another file."""
        target = self.local_path(uri)
        if path != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def publish(self, prefix: str) -> None:
        """Nothing to do: files written under the folder are the stored ones."""

    def read_under(self, prefix: str, uri: str) -> bytes:
        """The file behind `uri`, only if it resolves inside the storage path `prefix` (`..` and links refused)."""
        return self.read_bytes(uri, self._checked_under(prefix, uri))

    def path_under(self, prefix: str, uri: str) -> Path:
        """`read_under`'s check, then the file's local copy, for a reader that wants only its start (a preview)."""
        self._checked_under(prefix, uri)
        return self.local_copy(uri)

    def _checked_under(self, prefix: str, uri: str) -> Path:
        path = self.local_path(uri)
        if not path.is_relative_to(self.folder(prefix)):
            raise StorageError(f"'{uri}' does not belong to {prefix}")
        return path

    def files_under(self, prefix: str) -> list[tuple[str, int]]:
        """Every file below a storage path, as (URI, size in bytes), sorted."""
        root = self.local_path(SCHEME + "/" + prefix.lstrip("/"))
        if not root.is_dir():
            return []
        return [
            (SCHEME + "/" + path.relative_to(self._real_root).as_posix(), path.stat().st_size)
            for path in sorted(root.rglob("*"))
            if path.is_file()
        ]

    def entries(self, prefix: str) -> list[Entry]:
        try:
            with os.scandir(self.local_path(SCHEME + "/" + prefix.strip("/"))) as listing:
                return sorted((_entry(e) for e in listing if not e.is_symlink()), key=lambda e: e.name)
        except (NotADirectoryError, FileNotFoundError):
            return []

    def exists(self, uri: str) -> bool:
        try:
            return self.local_path(uri).is_file()
        except StorageError:
            return False

    def size(self, uri: str) -> int | None:
        path = self.local_path(uri)
        return path.stat().st_size if path.is_file() else None

    def delete(self, uri: str) -> bool:
        path = self.local_path(uri)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def delete_under(self, prefix: str) -> int:
        folder = self.local_path(SCHEME + "/" + prefix.strip("/"))
        count = sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def make_folder(self, prefix: str) -> None:
        self.local_path(SCHEME + "/" + prefix.strip("/")).mkdir(parents=True, exist_ok=True)


def _entry(found: os.DirEntry[str]) -> Entry:
    is_dir = found.is_dir()
    info = found.stat()
    return Entry(found.name, is_dir, 0 if is_dir else info.st_size, info.st_mtime_ns // 1_000_000)


def _real_path(path: str) -> str | None:
    """The path the kernel reaches for `path` (links followed), from one walk of it: the file opened without
    reading rights (`O_PATH`), then asked its name in `/proc/self/fd`. None where that cannot be asked (not
    Linux, no `/proc`); OSError when the path cannot be opened (missing, refused, a loop of links)."""
    flag = getattr(os, "O_PATH", None)
    if flag is None:
        return None
    fd = os.open(path, flag | os.O_CLOEXEC)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
