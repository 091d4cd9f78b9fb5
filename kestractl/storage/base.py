"""What every internal storage shares: Kestra's `kestra:///` URIs and paths, and the `Storage` protocol that the
engine, tasks, server and CLI use, whichever storage holds the bytes (a folder, or an S3-compatible bucket)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple, Protocol

SCHEME = "kestra://"


@functools.lru_cache(maxsize=1024)
def slugify(text: str) -> str:
    """Kestra's slug for storage paths: lower case, runs of other characters become `-`. Cached: a few flow and
    task ids make every path (a child's `read()` checks its file against three execution folders)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def name_parts(path: str) -> list[str] | None:
    """The parts of a storage path (a URI's, after `kestra:///`) when each is a name: None for an empty part, `.`,
    `..` or a NUL, which only resolving says where they lead."""
    parts = path.split("/")
    return None if "" in parts or "." in parts or ".." in parts or "\x00" in path else parts


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    return f"/{namespace.replace('.', '/')}/{slugify(flow_id)}/executions/{execution_id}"


class Entry(NamedTuple):
    """One child of a storage folder, as Kestra's FileAttributes need it (a NamedTuple: a frozen dataclass would
    add a millisecond to every command's start-up)."""

    name: str
    is_dir: bool
    size: int = 0
    modified_ms: int = 0


class Storage(Protocol):
    """Internal storage. Reads that need a file on disk ask for a `local_copy` (the file itself when the storage
    is a folder, a streamed download otherwise); files written at `local_path` become visible to other processes
    once `upload`ed or `publish`ed (nothing to do for a folder)."""

    def local_path(self, uri: str) -> Path: ...  # where the URI's local copy is (or is to be written); checked
    def local_copy(self, uri: str) -> Path: ...  # the URI's bytes on disk (missing when the URI is)
    def local_folder(self, uri: str) -> Path: ...  # every file under the URI on disk
    def upload(self, path: Path, uri: str) -> None: ...  # the file written at `path` stored as `uri`
    def publish(self, prefix: str) -> None: ...  # every file written locally under a storage path, stored
    def folder(self, prefix: str) -> Path: ...
    def folder_text(self, prefix: str) -> str: ...
    def put(self, path: str, source: Path | bytes) -> str: ...
    def read_bytes(self, uri: str, path: Path | None = None) -> bytes: ...
    def read_plain(self, uri: str) -> bytes | None: ...  # `read_bytes` if the path is names only, no link on it
    def read_under(self, prefix: str, uri: str) -> bytes: ...
    def path_under(self, prefix: str, uri: str) -> Path: ...
    def files_under(self, prefix: str) -> list[tuple[str, int]]: ...
    def entries(self, prefix: str) -> list[Entry]: ...  # a folder's direct children, sorted by name
    def exists(self, uri: str) -> bool: ...
    def size(self, uri: str) -> int | None: ...  # None when missing
    def delete(self, uri: str) -> bool: ...
    def delete_under(self, prefix: str) -> int: ...  # the number of files deleted
    def make_folder(self, prefix: str) -> None: ...  # an empty folder (a `name/` marker object in a bucket)
