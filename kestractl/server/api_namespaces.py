"""Kestra's `NamespaceController`: `GET /api/v1/namespaces/search` and `GET /api/v1/namespaces/{id}`.

Kestra lists the namespaces of its flows (and their parents); kestractl also lists those only executions, KV
entries or namespace files use, since a local user's namespaces often start in the KV store or a file upload.
"""

from __future__ import annotations

from kestractl import namespaces
from kestractl.server.executions import Executions
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import page_param, param

BASE = "/api/v1/namespaces"


class NamespacesApi:
    def __init__(self, executions: Executions) -> None:
        self.store = executions.store
        self.storage = executions.storage

    def add_routes(self, router: Router) -> None:
        router.add("GET", BASE + "/search", self.search)
        router.add("GET", BASE + "/{id}", self.get)

    def search(self, request: Request) -> Response:
        """`q` (contained, case ignored), `page` (from 1), `size` (10), `sort=id:desc`: `{results, total}`."""
        page, size = page_param(request.params, 10)
        found = namespaces.search(namespaces.known(self.store, self.storage), param(request.params, "q") or "")
        ids = sorted((n.id for n in found), reverse=(param(request.params, "sort") or "").endswith(":desc"))
        window = ids[(page - 1) * size : page * size]
        return Response(body={"results": [namespaces.Namespace(i).to_api() for i in window], "total": len(ids)})

    def get(self, request: Request) -> Response:
        """Any id answers, as in Kestra's open-source edition (a namespace exists once something uses it)."""
        return Response(body=namespaces.Namespace(request.path_params["id"]).to_api())
