"""Every namespace kestractl knows, as Kestra's namespace list shows them: those its flows and executions use
(asked of the database), those holding KV entries or namespace files (a walk of internal storage that never
enters an execution's folder), and every parent of those (`company` for `company.team`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kestractl.namespace_files import NAMESPACE_PATH
from kestractl.storage import Storage
from kestractl.store import Store

# Where a namespace was seen; a parent only implied by a child has none.
FLOWS, EXECUTIONS, KV, FILES = "flows", "executions", "kv", "files"
_SKIPPED = {"_kv", "_files", "executions"}  # never a namespace part worth entering: KV, files, execution outputs


@dataclass
class Namespace:
    id: str
    flows: int = 0
    sources: set[str] = field(default_factory=set)

    @property
    def depth(self) -> int:
        return self.id.count(".")

    def to_api(self) -> dict[str, object]:
        """Kestra's `Namespace` (OSS): an id, never deleted."""
        return {"id": self.id, "deleted": False}


def tree(namespace: str) -> list[str]:
    """The namespace and its parents, root first: `a`, `a.b`, `a.b.c` (Kestra's `NamespaceUtils.asTree`)."""
    parts = namespace.split(".")
    return [".".join(parts[:size]) for size in range(1, len(parts) + 1)]


def known(store: Store, storage: Storage) -> list[Namespace]:
    """Every namespace, parents included, in tree order (a parent right before its children)."""
    found: dict[str, Namespace] = {}

    def seen(namespace: str, source: str) -> Namespace:
        for name in tree(namespace):
            found.setdefault(name, Namespace(name))
        found[namespace].sources.add(source)
        return found[namespace]

    for namespace, count in store.flow_counts().items():
        seen(namespace, FLOWS).flows = count
    for namespace in store.execution_namespaces():
        seen(namespace, EXECUTIONS)
    for namespace, sources in in_storage(storage).items():
        for source in sources:
            seen(namespace, source)
    return sorted(found.values(), key=lambda n: n.id.split("."))


def search(namespaces: list[Namespace], q: str) -> list[Namespace]:
    """Kestra's filter: the id contains `q`, case ignored."""
    needle = q.strip().lower()
    return [n for n in namespaces if needle in n.id.lower()] if needle else namespaces


def in_storage(storage: Storage) -> dict[str, set[str]]:
    """Namespace → {"kv", "files"}: those with at least one KV entry or namespace file (or folder)."""
    found: dict[str, set[str]] = {}
    _walk(storage, [], found)
    return found


def _walk(storage: Storage, parts: list[str], found: dict[str, set[str]]) -> None:
    for entry in storage.entries("/" + "/".join(parts)):
        if not entry.is_dir:
            continue
        folder = [*parts, entry.name]
        if parts and entry.name == "_kv" and _holds(storage, folder, ".ion.metadata"):
            found.setdefault(".".join(parts), set()).add(KV)
        elif parts and entry.name == "_files" and _holds(storage, folder, ""):
            found.setdefault(".".join(parts), set()).add(FILES)
        elif entry.name not in _SKIPPED and NAMESPACE_PATH.fullmatch(entry.name):
            _walk(storage, folder, found)


def _holds(storage: Storage, folder: list[str], suffix: str) -> bool:
    return any(e.name.endswith(suffix) for e in storage.entries("/" + "/".join(folder)))
