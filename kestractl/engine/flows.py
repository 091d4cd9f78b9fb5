"""The flow cache of a runner: each revision is parsed once, and only "the latest" asks the store."""

from __future__ import annotations

from kestractl.model import Flow
from kestractl.parser import parse_flow
from kestractl.store import Store


class FlowRepository:
    """Parsed flows by namespace, id and revision; each revision is parsed once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str, int], Flow] = {}

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow:
        """A given revision never changes, so only "the latest" needs the store (one query per new execution)."""
        cached = self._cache.get((namespace, flow_id, revision)) if revision is not None else None
        if cached is not None:
            return cached
        row = self.store.flow_revision(namespace, flow_id, revision)
        key = (row.namespace, row.id, row.revision)
        if key not in self._cache:
            flow = parse_flow(row.source, f"{namespace}.{flow_id}")
            flow.revision = row.revision
            self._cache[key] = flow
        return self._cache[key]
