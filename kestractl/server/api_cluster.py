"""Kestra's `ClusterController` (open-source edition): `GET /api/v1/cluster/services/{id}`, one service instance.

The list, `GET /api/v1/cluster/services`, is kestractl's: Kestra's open-source edition has none (its Enterprise
edition lists instances under `/api/v1/instance/services`); it answers Kestra's paged shape `{results, total}`,
the live instances unless `includeEnded=true`."""

from __future__ import annotations

from kestractl.errors import NotFoundError
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import flag
from kestractl.store import Store

BASE = "/api/v1/cluster/services"


class ClusterApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add_routes(self, router: Router) -> None:
        router.add("GET", BASE, self.services)
        router.add("GET", BASE + "/{id}", self.service)

    def services(self, request: Request) -> Response:
        instances = self.store.service_instances(flag(request.params, "includeEnded"))
        return Response(body={"results": [i.to_api() for i in instances], "total": len(instances)})

    def service(self, request: Request) -> Response:
        instance = self.store.service_instance(request.path_params["id"])
        if instance is None:
            raise NotFoundError(f"service {request.path_params['id']} not found")
        return Response(body=instance.to_api())
