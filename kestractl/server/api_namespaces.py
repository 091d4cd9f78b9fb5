"""Kestra's `NamespaceController`: `GET /api/v1/namespaces/search` and `GET /api/v1/namespaces/{id}`.

Kestra lists the namespaces of its flows (and their parents); kestractl also lists those only executions, KV
entries or namespace files use, since a local user's namespaces often start in the KV store or a file upload.
"""

from __future__ import annotations

from kestractl import namespaces
from kestractl.engine.runner import Runner
from kestractl.server.http import BadRequest, Request, Response, Router

BASE = "/api/v1/namespaces"


class NamespacesApi:
    def __init__(self, runner: Runner) -> None:
        self.store = runner.store
        self.storage = runner.storage

    def add_routes(self, router: Router) -> None:
        router.add("GET", BASE + "/search", self.search)
        router.add("GET", BASE + "/{id}", self.get)

    def search(self, request: Request) -> Response:
        """`q` (contained, case ignored), `page` (from 1), `size` (10), `sort=id:desc`: `{results, total}`."""
        page, size = _positive(request, "page", 1), _positive(request, "size", 10)
        found = namespaces.search(namespaces.known(self.store, self.storage), _param(request, "q"))
        ids = sorted((n.id for n in found), reverse=_param(request, "sort").endswith(":desc"))
        window = ids[(page - 1) * size : page * size]
        return Response(body={"results": [namespaces.Namespace(i).to_api() for i in window], "total": len(ids)})

    def get(self, request: Request) -> Response:
        """Any id answers, as in Kestra's open-source edition (a namespace exists once something uses it)."""
        return Response(body=namespaces.Namespace(request.path_params["id"]).to_api())


def _param(request: Request, name: str) -> str:
    values = request.params.get(name)
    return values[-1] if values else ""


def _positive(request: Request, name: str, default: int) -> int:
    text = _param(request, name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise BadRequest(f"Invalid value for `{name}`: must be a number of at least 1, got '{text}'")
    return int(text)
