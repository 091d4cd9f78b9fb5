"""Internal storage in a folder (by default beside the database): `kestra:///…` URIs mapped to files under it.

Paths follow Kestra's layout (`/<namespace as path>/<flow>/executions/<id>/…`) so URIs a flow
prints look like the ones Kestra would give. A file that is not there may be a member of its folder's pack
(`storage/packed.py`): reads, sizes, listings and deletions serve it as a file of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import threading
from collections.abc import Callable, Collection, Hashable, Iterator
from pathlib import Path
from typing import TypeVar

from kestractl.errors import StorageError
from kestractl.storage import packed
from kestractl.storage.base import SCHEME, Entry, name_parts
from kestractl.storage.packed import DELETED, PACK, Read

T = TypeVar("T")
INDEXES_KEPT = 16  # packs whose index a process keeps (800 KB for 100,000 batches)
_O_PATH = getattr(os, "O_PATH", 0)  # a folder opened to be named, not read (Linux); else opened for reading
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LocalStorage:
    """The `Storage` whose files are the local copies: reads and writes happen in place, nothing to upload."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()  # resolved once: every file a task reads is checked against it
        self._root_text = str(self._real_root)
        self._indexes: dict[str, tuple[Hashable, packed.Index | None]] = {}  # by folder, the packs read lately
        self._indexes_lock = threading.Lock()

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
        """The path as it is when every part exists but maybe the last, and none is `.`, `..` or a link, so that
        resolving it would give it back; None otherwise. The kernel walks to the folder once and names what it
        reached (`_fd_path`), then the last part is looked at in that very folder; where the kernel cannot say,
        one `lstat` per part below the root. A child execution reading its item (a pack's member: no file of its
        own) costs a third of `resolve` (a walk from `/`)."""
        parts = name_parts(relative)
        if parts is None:
            return None
        folder = os.sep.join([self._root_text, *parts[:-1]])
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC | _O_DIRECTORY | _O_PATH)
        except OSError:  # missing, not a folder, refused, a loop: `resolve` says what it is
            return None
        try:
            return self._plain_in(fd, folder, parts)
        finally:
            os.close(fd)

    def _plain_in(self, fd: int, folder: str, parts: list[str]) -> Path | None:
        """`_plain` once the folder is open: it must be where the kernel led, and its last part no link."""
        real = _fd_path(fd)
        if real is None:
            return self._plain_parts(parts)
        if real != folder:  # a link anywhere on the way leads elsewhere
            return None
        path = f"{folder}{os.sep}{parts[-1]}"
        try:
            found = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:  # not written yet, or a member of its folder's pack: nothing has its name
            return Path(path)
        except OSError:
            return None
        return None if stat.S_ISLNK(found.st_mode) else Path(path)

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
        try:
            with io.FileIO(path, "rb") as found:  # unbuffered: read whole, no buffer nor terminal check to make
                return found.readall()
        except (FileNotFoundError, IsADirectoryError):
            data = self._member_bytes(path)
        if data is None:
            raise StorageError(
                f"file not found in internal storage: {uri} (expected at {path}; it was moved or deleted: "
                "restore it there, or run the execution that wrote it again)"
            )
        return data

    def read_plain(self, uri: str) -> bytes | None:
        """`read_bytes` of a URI whose path is plain (names only, no link on the way: where its text says), its
        folder opened once and everything else looked up in it; None for any other path, which the caller resolves
        and checks (`local_path`). A child reading its item (a pack's member) made four walks from `/` otherwise."""
        parts = name_parts(uri.removeprefix(SCHEME).lstrip("/"))
        if parts is None:
            return None
        folder = os.sep.join([self._root_text, *parts[:-1]])
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC | _O_DIRECTORY | _O_PATH)
        except OSError:
            return None
        try:
            return self._read_in(fd, folder, parts[-1], uri) if _fd_path(fd) == folder else None
        finally:
            os.close(fd)

    def _read_in(self, fd: int, folder: str, name: str, uri: str) -> bytes | None:
        """The file `name` of the open folder, else its pack's member; None for a link (or anything but a file)."""
        try:
            found = os.open(name, os.O_RDONLY | os.O_CLOEXEC | _O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            data = self._in_pack_of(fd, folder, name, _member_bytes)
            if data is None:
                raise StorageError(
                    f"file not found in internal storage: {uri} (expected at {folder}{os.sep}{name})"
                ) from None
            return data
        except OSError:
            return None
        with io.FileIO(found, "rb") as file:
            return file.readall() if stat.S_ISREG(os.fstat(found).st_mode) else None

    def local_copy(self, uri: str) -> Path:
        """The file itself; a pack's member is written out first, for readers that need a file."""
        path = self.local_path(uri)
        if not path.is_file():
            self._unpack(path)
        return path

    def local_folder(self, uri: str) -> Path:
        """The folder itself, with the members of the packs below it written out as files."""
        folder = self.local_path(uri)
        for pack in sorted(folder.rglob(PACK)) if folder.is_dir() else []:
            for name, _ in self._members_listed(pack.parent, os.listdir(pack.parent)):
                self._unpack(pack.parent / name)
        return folder

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
        return self._unpacked(
            [
                (SCHEME + "/" + path.relative_to(self._real_root).as_posix(), path.stat().st_size)
                for path in sorted(root.rglob("*"))
                if path.is_file()
            ]
        )

    def _unpacked(self, found: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """A listing of (URI, size) with each pack replaced by its live members."""
        listed = [(uri, size) for uri, size in found if not packed.hidden(uri.rpartition("/")[2])]
        for uri, _ in found:
            folder, _, name = uri.rpartition("/")
            if name == PACK:
                names = {u.rpartition("/")[2] for u, _ in found if u.rpartition("/")[0] == folder}
                path = self.local_path(folder)
                listed += [(f"{folder}/{n}", size) for n, size in self._members_listed(path, names)]
        return sorted(listed)

    def entries(self, prefix: str) -> list[Entry]:
        folder = self.local_path(SCHEME + "/" + prefix.strip("/"))
        try:
            with os.scandir(folder) as listing:
                return self._entries_unpacked(folder, [_entry(e) for e in listing if not e.is_symlink()])
        except (NotADirectoryError, FileNotFoundError):
            return []

    def _entries_unpacked(self, folder: Path, found: list[Entry]) -> list[Entry]:
        """A folder's entries, sorted by name, with its pack replaced by its live members."""
        listed = [e for e in found if not packed.hidden(e.name)]
        for pack in (e for e in found if e.name == PACK and not e.is_dir):
            members = self._members_listed(folder, {e.name for e in found})
            listed += [Entry(name, False, size, pack.modified_ms) for name, size in members]
        return sorted(listed, key=lambda e: e.name)

    def exists(self, uri: str) -> bool:
        try:
            return self.size(uri) is not None
        except StorageError:
            return False

    def size(self, uri: str) -> int | None:
        path = self.local_path(uri)
        stored = self._stored_size(path)
        return stored if stored is not None else self._member_size(path)

    def delete(self, uri: str) -> bool:
        """The file, and the member of the folder's pack so named (marked deleted: the pack is not rewritten)."""
        path = self.local_path(uri)
        member = self._member_size(path) is not None
        if member:
            folder, _, name = uri.removeprefix(SCHEME).rpartition("/")
            self.put(f"{folder}/{DELETED}{name}", b"")
        return self._remove(path) or member

    def _remove(self, path: Path) -> bool:
        if not path.is_file():
            return False
        path.unlink()
        return True

    def delete_under(self, prefix: str) -> int:
        count = len(self.files_under(prefix))
        shutil.rmtree(self.local_path(SCHEME + "/" + prefix.strip("/")), ignore_errors=True)
        return count

    def make_folder(self, prefix: str) -> None:
        self.local_path(SCHEME + "/" + prefix.strip("/")).mkdir(parents=True, exist_ok=True)

    def _stored_size(self, path: Path) -> int | None:
        """The size of the file itself (not of a pack's member), None when there is none."""
        try:
            info = path.stat()
        except OSError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    @contextlib.contextmanager
    def _pack(self, folder: str, dir_fd: int | None = None) -> Iterator[tuple[Read, Hashable]]:
        """Reads of the folder's pack (the folder open as `dir_fd`, or found by its path), and what tells this pack
        from a later one at its name (FileNotFoundError when the folder has none)."""
        at = PACK if dir_fd is not None else f"{folder}{os.sep}{PACK}"
        fd = os.open(at, os.O_RDONLY | os.O_CLOEXEC | _O_NOFOLLOW, dir_fd=dir_fd)
        try:
            info = os.fstat(fd)
            size = info.st_size
            yield (
                lambda start, length: os.pread(fd, length, start if start >= 0 else max(0, size - length)),
                (info.st_ino, size, info.st_mtime_ns),
            )
        finally:
            os.close(fd)

    def _in_pack_of(
        self, dir_fd: int | None, folder: str, name: str, answer: Callable[[Read, int, int], T]
    ) -> T | None:
        """`answer(read, start, end)` about the live member `name` of the folder's pack, else None."""
        if packed.hidden(name):
            return None
        try:
            with self._pack(folder, dir_fd) as (read, version):
                index = self._index(folder, read, version)
                span = index.span(name) if index else None
                if span is None or self._marked(folder, name, dir_fd):
                    return None
                return answer(read, *span)
        except OSError:  # no pack (or a link in its place)
            return None

    def _index(self, folder: str, read: Read, version: Hashable) -> packed.Index | None:
        """The pack's index, read once per version of the pack: 10,000 children reading their batches read it once."""
        cached = self._indexes.get(folder)
        if cached is not None and cached[0] == version:
            return cached[1]
        index = packed.load(read)
        with self._indexes_lock:  # workers' threads read batches too: the oldest is dropped by one at a time
            if len(self._indexes) >= INDEXES_KEPT:
                self._indexes.pop(next(iter(self._indexes)), None)
            self._indexes[folder] = (version, index)
        return index

    def _in_pack(self, path: Path, answer: Callable[[Read, int, int], T]) -> T | None:
        """`answer(read, start, end)` about the live member of the folder's pack that `path` names, else None."""
        folder, name = os.path.split(path)
        return self._in_pack_of(None, folder, name, answer)

    def _marked(self, folder: str, name: str, dir_fd: int | None = None) -> bool:
        """Whether the member was deleted (a mark beside the pack)."""
        at = DELETED + name if dir_fd is not None else f"{folder}{os.sep}{DELETED}{name}"
        return os.access(at, os.F_OK, dir_fd=dir_fd, follow_symlinks=False)

    def _member_bytes(self, path: Path) -> bytes | None:
        return self._in_pack(path, _member_bytes)

    def _member_size(self, path: Path) -> int | None:
        return self._in_pack(path, lambda _read, start, end: end - start)

    def _members_listed(self, folder: Path, names: Collection[str]) -> list[tuple[str, int]]:
        """The live members of the folder's pack that no file among `names` (the folder's) replaces or deletes."""
        try:
            with self._pack(str(folder)) as (read, version):
                index = self._index(str(folder), read, version)
                members = index.members() if index else iter(())
                return [(n, size) for n, size in members if n not in names and DELETED + n not in names]
        except OSError:
            return []

    def _unpack(self, path: Path) -> None:
        """The pack's member written out at `path` (under a temporary name first: readers may race)."""
        data = self._member_bytes(path)
        if data is None:
            return
        partial = partial_path(path)
        partial.write_bytes(data)
        os.replace(partial, path)


def _member_bytes(read: Read, start: int, end: int) -> bytes:
    return read(start, end - start) if end > start else b""


def partial_path(path: Path) -> Path:
    """Where a file is written before it is renamed into place: one name per process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")


def _entry(found: os.DirEntry[str]) -> Entry:
    is_dir = found.is_dir()
    info = found.stat()
    return Entry(found.name, is_dir, 0 if is_dir else info.st_size, info.st_mtime_ns // 1_000_000)


def _fd_path(fd: int) -> str | None:
    """The path of what `fd` holds open, as the kernel reached it (links followed), from `/proc/self/fd`; None
    where that cannot be asked (not Linux, no `/proc`)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
