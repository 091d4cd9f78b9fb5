"""Kestra's KV API (`KVController`): `/api/v1/namespaces/{namespace}/kv…`, Kestra 1.x shapes."""

from __future__ import annotations

from typing import Any

from kestractl import ion
from kestractl.durations import parse_duration
from kestractl.errors import NotFoundError, ValidationError
from kestractl.kv import KVStore, KVType, parents
from kestractl.model import iso
from kestractl.server.http import BadRequest, Request, Response, Router
from kestractl.storage import Storage
from kestractl.tasks.kv import plain

BASE = "/api/v1/namespaces/{namespace}/kv"


class KvApi:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add_routes(self, router: Router) -> None:
        router.add("GET", BASE, self.list_keys)
        router.add("DELETE", BASE, self.delete_keys)
        router.add("GET", BASE + "/inheritance", self.inherited_keys)
        router.add("GET", BASE + "/{key}", self.get_value)
        router.add("PUT", BASE + "/{key}", self.set_value)
        router.add("DELETE", BASE + "/{key}", self.delete_value)

    def _store(self, request: Request) -> KVStore:
        return KVStore(self.storage, request.path_params["namespace"])

    def list_keys(self, request: Request) -> Response:
        return Response(body=[e.to_api() for e in self._store(request).list()])

    def inherited_keys(self, request: Request) -> Response:
        """The parents' keys (not the namespace's own), nearest parent first, a key listed once."""
        seen: dict[str, dict[str, Any]] = {}
        for namespace in parents(request.path_params["namespace"])[1:]:
            for entry in KVStore(self.storage, namespace).list():
                seen.setdefault(entry.key, entry.to_api())
        return Response(body=list(seen.values()))

    def get_value(self, request: Request) -> Response:
        store, key = self._store(request), request.path_params["key"]
        found, entry = store.get(key), store.entry(key)
        if found is None or entry is None:
            raise NotFoundError(f"No value found for key '{key}' in namespace '{store.namespace}'")
        value = found.value.decode("utf-8", "replace") if isinstance(found.value, bytes) else found.value
        return Response(body={"type": KVType.of(value).value, "value": plain(value), "updated": iso(entry.update_date)})

    def set_value(self, request: Request) -> Response:
        """The body is a JSON/ION literal (`"text"`, `42`, `{…}`); other text is stored as a string (Kestra
        1.x). Headers: `ttl` (ISO duration), `description`."""
        text = request.text()
        try:
            value = ion.loads(text)
        except ValueError:
            value = text
        ttl = request.headers.get("ttl")
        try:
            expires = parse_duration(ttl) if ttl else None
        except ValueError as error:
            raise BadRequest(f"Invalid ttl header: {error}") from None
        self._store(request).put(
            request.path_params["key"], value, ttl=expires, description=request.headers.get("description")
        )
        return Response()

    def delete_value(self, request: Request) -> Response:
        return Response(body=self._store(request).delete(request.path_params["key"]))

    def delete_keys(self, request: Request) -> Response:
        body = request.json()
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise BadRequest('Expected a JSON body {"keys": [...]}')
        store = self._store(request)
        return Response(body={"keys": [k for k in map(str, keys) if _deleted(store, k)]})


def _deleted(store: KVStore, key: str) -> bool:
    """Bulk deletion ignores a key it cannot delete, as Kestra does."""
    try:
        return store.delete(key)
    except ValidationError:
        return False
