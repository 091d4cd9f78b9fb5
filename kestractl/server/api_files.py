"""Kestra's namespace files API (`NamespaceFileController`): `/api/v1/namespaces/{namespace}/files…`.

Read, stat, list, create folders, upload (a `.zip` is extracted; its `_flows/<x>.yml` entries become flows of
the namespace), move, delete, search and export as a zip (files plus the namespace's flows under `_flows/`).
"""

from __future__ import annotations

import re

from kestractl.errors import NotFoundError
from kestractl.namespace_files import FLOWS_FOLDER, NamespaceFiles
from kestractl.parser import parse_flow
from kestractl.server.executions import Executions
from kestractl.server.http import BadRequest, Request, Response, Router
from kestractl.server.params import param, required

BASE = "/api/v1/namespaces/{namespace}/files"
NAMESPACE_LINE = re.compile(r"(?m)^namespace: .*$")


class NamespaceFilesApi:
    def __init__(self, executions: Executions) -> None:
        self.store = executions.store
        self.storage = executions.storage

    def add_routes(self, router: Router) -> None:
        router.add("GET", BASE, self.file)
        router.add("POST", BASE, self.upload)
        router.add("PUT", BASE, self.move)
        router.add("DELETE", BASE, self.delete)
        router.add("GET", BASE + "/stats", self.stats)
        router.add("GET", BASE + "/directory", self.directory)
        router.add("POST", BASE + "/directory", self.create_directory)
        router.add("GET", BASE + "/search", self.search)
        router.add("GET", BASE + "/export", self.export)

    def _files(self, request: Request) -> NamespaceFiles:
        return NamespaceFiles(self.storage, request.path_params["namespace"])

    def file(self, request: Request) -> Response:
        data = self._files(request).get(required(request.params, "path"))
        return Response(body=data, content_type="application/octet-stream", headers={"Cache-Control": "no-cache"})

    def stats(self, request: Request) -> Response:
        return Response(body=self._files(request).stats(param(request.params, "path") or ""))

    def directory(self, request: Request) -> Response:
        return Response(body=self._files(request).directory(param(request.params, "path") or ""))

    def create_directory(self, request: Request) -> Response:
        self._files(request).create_directory(required(request.params, "path"))
        return Response()

    def upload(self, request: Request) -> Response:
        """Multipart part `fileContent`: stored at `path`, or, for a `.zip`, every entry under its own path."""
        files = self._files(request)
        upload = next((f for f in request.form()[1] if f.field == "fileContent"), None)
        if upload is None:
            raise BadRequest("Expected a multipart file part named `fileContent`")
        if not upload.filename.lower().endswith(".zip"):
            files.put(required(request.params, "path"), upload.data)
            return Response()
        for name, source in files.import_zip(upload.data).items():
            self._import_flow(files.namespace, name, source)
        return Response()

    def _import_flow(self, namespace: str, name: str, source: bytes) -> None:
        """A `_flows/<x>.yml` entry: its `namespace:` line becomes this namespace, as Kestra does."""
        text = NAMESPACE_LINE.sub(f"namespace: {namespace}", source.decode("utf-8"), count=1)
        flow = parse_flow(text, name)
        self.store.save_flow(flow.namespace, flow.id, flow.source)

    def move(self, request: Request) -> Response:
        self._files(request).move(required(request.params, "from"), required(request.params, "to"))
        return Response()

    def delete(self, request: Request) -> Response:
        path = required(request.params, "path")
        if not self._files(request).delete(path):
            raise NotFoundError(f"'{path}' not found in namespace '{request.path_params['namespace']}'")
        return Response()

    def search(self, request: Request) -> Response:
        return Response(body=self._files(request).search(param(request.params, "q") or ""))

    def export(self, request: Request) -> Response:
        files = self._files(request)
        flows = {
            f"{FLOWS_FOLDER}/{row.id}.yml": row.source
            for row in self.store.latest_sources()
            if row.namespace == files.namespace
        }
        disposition = f'attachment; filename="{files.namespace}_files.zip"'
        return Response(
            body=files.export_zip(flows),
            content_type="application/octet-stream",
            headers={"Content-Disposition": disposition},
        )
