"""Keeps a flow directory and the store in sync while the server runs (`-f DIR`), and a folder of
namespace files and internal storage (`--namespace-files DIR`), with one polling mechanism.

At start every file is loaded; then each `poll()` compares file stamps: a new or changed file is
deployed (a new revision only when its source changed), a deleted file deletes the flows it had
defined. Invalid files are reported and skipped. Flows deployed by other means are never touched.
`watch()` polls on its own thread, often enough that an edit is live within a tenth of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kestractl.deploy import YAML_SUFFIXES
from kestractl.errors import KestraError, ValidationError
from kestractl.namespace_files import NamespaceFiles, local_files
from kestractl.parser import parse_flow, split_documents
from kestractl.storage import Storage
from kestractl.store import Store

_RETRY = (-1, -1)  # a stamp no file has


@dataclass
class _Seen:
    stamp: tuple[int, int]
    flows: set[tuple[str, str]] = field(default_factory=set)


class FolderWatcher:
    """Keeps something in sync with a folder's files by comparing their stamps at each poll; a subclass says
    which files count (`_scan`), what a new or changed one does (`_load`) and what a removed one does."""

    def __init__(self, root: Path, say: Callable[[str, str], None]) -> None:
        """`say(level, message)` reports each load, change, deletion and problem."""
        self.root = root
        self.say = say
        self._files: dict[Path, _Seen] = {}

    def watch(self, stop: threading.Event, every: float) -> None:
        """Poll until `stop` is set: every `every` seconds, or less often when stat-ing a big folder takes
        long, so watching never costs more than ~5% of a core. A failed poll is reported and retried."""
        pause = every
        while not stop.wait(pause):
            started = time.monotonic()
            try:
                current = self._stamps()
                pause = max(every, 20 * (time.monotonic() - started))
                self._apply(current)
            except (KestraError, OSError) as exc:
                self.say("ERROR", f"watching {self.root}: {exc}")

    def poll(self) -> None:
        """Apply new, changed and removed files."""
        self._apply(self._stamps())

    def _stamps(self) -> dict[Path, tuple[int, int]]:
        stamps = {}
        for path in self._scan():
            try:
                stamps[path] = _stamp(path)
            except FileNotFoundError:  # deleted since the scan: as good as unseen
                continue
        return stamps

    def _apply(self, current: dict[Path, tuple[int, int]]) -> None:
        for path, stamp in current.items():
            seen = self._files.get(path)
            if seen is None or seen.stamp != stamp:
                self._load(path, stamp, seen)
        for path in [p for p in self._files if p not in current]:
            self._removed(path, self._files.pop(path))

    def _scan(self) -> list[Path]:
        raise NotImplementedError

    def _load(self, path: Path, stamp: tuple[int, int], seen: _Seen | None) -> None:
        raise NotImplementedError

    def _removed(self, path: Path, seen: _Seen) -> None:
        raise NotImplementedError


class FlowDirectory(FolderWatcher):
    """`-f DIR`: every flow file deployed; a changed file a new revision, a removed one's flows deleted."""

    def __init__(self, root: Path, store: Store, say: Callable[[str, str], None]) -> None:
        super().__init__(root, say)
        self.store = store

    def source_of(self, namespace: str, flow_id: str) -> Path | None:
        """The file that defines this flow, if this folder's: the UI shows such a flow read-only."""
        return next((path for path, seen in self._files.items() if (namespace, flow_id) in seen.flows), None)

    def _scan(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())

    def _load(self, path: Path, stamp: tuple[int, int], seen: _Seen | None) -> None:
        before = seen.flows if seen else set()
        entry = _Seen(stamp, set(before))
        self._files[path] = entry
        try:
            text = path.read_text(encoding="utf-8")
            flows = [parse_flow(doc, str(path)) for doc in split_documents(text)]
        except ValidationError as exc:
            for problem in exc.problems:
                self.say("ERROR", f"skipped {problem}")
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.say("ERROR", f"skipped {path}: {exc}")
            return
        saved: set[tuple[str, str]] = set()
        try:
            for flow in flows:
                revision, changed = self.store.save_flow(flow.namespace, flow.id, flow.source)
                saved.add((flow.namespace, flow.id))
                if changed:
                    self.say("INFO", f"{flow.namespace}.{flow.id}  revision {revision}  from {path}")
        except KestraError:
            entry.stamp = _RETRY  # the store refused (locked, full disk …): load the file again next time
            entry.flows |= saved
            raise
        entry.flows = saved
        self._forget(path, before - saved)

    def _removed(self, path: Path, seen: _Seen) -> None:
        self._forget(path, seen.flows)

    def _forget(self, path: Path, flows: set[tuple[str, str]]) -> None:
        still_defined = {f for seen in self._files.values() for f in seen.flows}
        for namespace, flow_id in sorted(flows - still_defined):
            try:
                self.store.delete_flow(namespace, flow_id)
                self.say("INFO", f"{namespace}.{flow_id}  deleted ({path} no longer defines it)")
            except KestraError:
                pass


class NamespaceFilesDirectory(FolderWatcher):
    """`--namespace-files DIR`: each top-level folder is a namespace and its files that namespace's files
    (its `.kestraignore` applies). Files uploaded by other means are never touched."""

    def __init__(self, root: Path, storage: Storage, say: Callable[[str, str], None]) -> None:
        super().__init__(root, say)
        self.storage = storage

    def _scan(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [path for folder in folders for _, path in local_files(folder)]

    def _target(self, path: Path) -> tuple[NamespaceFiles, str]:
        relative = path.relative_to(self.root)
        return NamespaceFiles(self.storage, relative.parts[0]), "/".join(relative.parts[1:])

    def _load(self, path: Path, stamp: tuple[int, int], seen: _Seen | None) -> None:
        self._files[path] = _Seen(stamp)
        try:
            files, name = self._target(path)
            files.put(name, path)
        except KestraError as exc:
            self.say("ERROR", f"skipped {path}: {exc.message}")
            return
        except OSError as exc:
            self.say("ERROR", f"skipped {path}: {exc}")
            return
        self.say("INFO", f"{files.namespace}  /{name}  {'updated' if seen else 'added'} from {path}")

    def _removed(self, path: Path, seen: _Seen) -> None:
        try:
            files, name = self._target(path)
            if files.delete(name):
                self.say("INFO", f"{files.namespace}  /{name}  deleted ({path} was removed)")
        except KestraError as exc:
            self.say("ERROR", f"{path}: {exc.message}")


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size
