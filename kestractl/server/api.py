"""Kestra's `/api/v1` on top of the engine: flows, executions, webhooks, logs.

Paths and JSON shapes are Kestra's, so curl commands from its docs, CI jobs and the official
`kestra` client work unchanged. Every route is also served under `/api/v1/main/` (the default tenant).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from kestractl.deploy import load_flow_texts
from kestractl.errors import ConflictError, NotFoundError, StoreError, ValidationError
from kestractl.model import Execution, Flow, label_pairs, label_text
from kestractl.parser import load_yaml, located, parse_flow, split_documents, to_plain
from kestractl.server import api_inputs
from kestractl.server.api_cluster import ClusterApi
from kestractl.server.api_executions import ExecutionsApi
from kestractl.server.api_files import NamespaceFilesApi
from kestractl.server.api_graph import add_routes as add_graph_routes
from kestractl.server.api_kv import KvApi
from kestractl.server.api_namespaces import NamespacesApi
from kestractl.server.api_plugins import add_routes as add_plugin_routes
from kestractl.server.api_search import SearchApi
from kestractl.server.api_tests import TestsApi
from kestractl.server.executions import Executions
from kestractl.server.http import BadRequest, Request, Response, Router, save_uploads
from kestractl.server.params import flag, int_param, labels_param, page_param, param
from kestractl.storage import execution_prefix
from kestractl.store import FlowRow
from kestractl.triggers import webhook
from kestractl.triggers.conditions import ConditionContext, all_met

WAIT_POLL_SECONDS = 0.05
# How often a request that follows an execution tries the database again while it is away.
OUTAGE_POLL_SECONDS = 1.0


class Api:
    def __init__(self, executions: Executions, base_url: str = "") -> None:
        self.executions = executions
        self.store = executions.store
        self.base_url = base_url

    def routes(self) -> Router:
        router = Router()
        add_graph_routes(router, self.executions)
        add_plugin_routes(router)
        add = router.add
        add("POST", "/api/v1/executions/trigger/{namespace}/{flowId}", self.create_execution)
        add("POST", "/api/v1/executions/{namespace}/{flowId}", self.create_execution)
        add("GET", "/api/v1/executions/{executionId}", self.get_execution)
        add("DELETE", "/api/v1/executions/{executionId}/kill", self.kill)
        add("POST", "/api/v1/executions/{executionId}/restart", self.restart)
        add("GET", "/api/v1/executions/{executionId}/file", self.file)
        add(["GET", "POST", "PUT"], "/api/v1/executions/webhook/{namespace}/{flowId}/{key}", self.webhook)
        add("GET", "/api/v1/logs/{executionId}", self.logs)
        add("GET", "/api/v1/logs/{executionId}/download", self.download_logs)
        add("GET", "/api/v1/logs/{executionId}/follow", self.follow_logs)
        add("POST", "/api/v1/flows", self.create_flow)
        add("GET", "/api/v1/flows/search", self.search_flows)
        add("POST", "/api/v1/flows/validate", self.validate_flows)
        add("GET", "/api/v1/flows/{namespace}", self.namespace_flows)
        add("POST", "/api/v1/flows/{namespace}", self.update_namespace)
        add("GET", "/api/v1/flows/{namespace}/{flowId}", self.get_flow)
        add("GET", "/api/v1/flows/{namespace}/{flowId}/revisions", self.revisions)
        add("PUT", "/api/v1/flows/{namespace}/{flowId}", self.update_flow)
        add("DELETE", "/api/v1/flows/{namespace}/{flowId}", self.delete_flow)
        KvApi(self.executions.storage).add_routes(router)
        NamespaceFilesApi(self.executions).add_routes(router)
        api_inputs.add_routes(router, self.executions)
        NamespacesApi(self.executions).add_routes(router)
        ExecutionsApi(self.executions, self._execution_json).add_routes(router)
        SearchApi(self.store, self._execution_json, self.executions.flows.get).add_routes(router)
        ClusterApi(self.store).add_routes(router)
        TestsApi(self.executions).add_routes(router)
        return router

    # ---- executions ---------------------------------------------------------------------------

    def create_execution(self, request: Request) -> Response:
        """The seed's `curl -X POST …/executions/trigger/dev/hello-world -F greeting="hey there"`."""
        ns, flow_id = request.path_params["namespace"], request.path_params["flowId"]
        flow = self.executions.flows.get(ns, flow_id, int_param(request.params, "revision"))
        fields, files = request.form()
        inputs: dict[str, Any] = _remote_inputs(flow, {k: v[-1] for k, v in fields.items()})
        with tempfile.TemporaryDirectory(prefix="kestractl-upload-") as tmp:
            inputs.update(save_uploads(files, tmp))
            execution = self.executions.create_execution(flow, inputs, labels_param(request.params))
        self.executions.submit(execution.id)
        if flag(request.params, "wait"):
            return self._json(self._wait(execution.id))
        return self._json(execution)

    def get_execution(self, request: Request) -> Response:
        return self._json(self.store.load_execution(request.path_params["executionId"]))

    def kill(self, request: Request) -> Response:
        execution = self.executions.kill(request.path_params["executionId"])
        return Response(status=202, body=self._execution_json(execution))

    def restart(self, request: Request) -> Response:
        execution_id = request.path_params["executionId"]
        self.store.load_execution(execution_id)
        self.executions.restart(execution_id)
        return self._json(self.store.load_execution(execution_id))

    def file(self, request: Request) -> Response:
        execution = self.store.load_execution(request.path_params["executionId"])
        uri = param(request.params, "path") or ""
        prefix = execution_prefix(execution.namespace, execution.flow_id, execution.id)
        data = self.executions.storage.read_under(prefix, uri)
        name = uri.rsplit("/", 1)[-1]
        return Response(body=data, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def webhook(self, request: Request) -> Response:
        """`…/executions/webhook/{namespace}/{flowId}/{key}`: 200 with the execution, 404, or 204."""
        ns, flow_id, key = (request.path_params[k] for k in ("namespace", "flowId", "key"))
        try:
            flow = self.executions.flows.get(ns, flow_id)
        except NotFoundError:
            raise NotFoundError(f"Flow not found: {ns}.{flow_id}") from None
        trigger = webhook.find_trigger(flow, key)
        if trigger is None or (ns, flow_id, trigger["id"]) in self.store.disabled_triggers():  # Toggle turns it off
            raise NotFoundError(f"Webhook not found: {ns}.{flow_id} has no webhook with this key")
        variables = webhook.trigger_variables(request.body, request.header_lists(), request.params)
        context = {"trigger": variables, "flow": {"id": flow.id, "namespace": flow.namespace}}
        if not all_met(trigger.get("conditions"), ConditionContext(variables=context)):
            return Response(status=204)
        execution = self.executions.create_execution(
            flow,
            _remote_inputs(flow, _inputs_param(request)),
            [],
            {"id": trigger["id"], "type": trigger["type"], "variables": variables},
        )
        answer = self._json(execution)  # before the loop takes the execution over and changes it
        self.executions.submit(execution.id, fresh=execution)
        return answer

    def _wait(self, execution_id: str) -> Execution:
        """`?wait=true`: block until the execution ends (a pause is not an end), the database being away meanwhile
        included: the execution was accepted, a 503 would have the client send it again."""
        while True:
            try:
                if self.store.execution_state(execution_id).is_terminated():
                    return self.store.load_execution(execution_id)
            except StoreError:
                time.sleep(OUTAGE_POLL_SECONDS)
            time.sleep(WAIT_POLL_SECONDS)

    def _execution_json(self, execution: Execution) -> dict[str, Any]:
        data = execution.to_api()
        data["url"] = f"{self.base_url}/ui/executions/{execution.namespace}/{execution.flow_id}/{execution.id}"
        return data

    def _json(self, execution: Execution) -> Response:
        return Response(body=self._execution_json(execution))

    # ---- logs ---------------------------------------------------------------------------------

    def logs(self, request: Request) -> Response:
        execution = self.store.load_execution(request.path_params["executionId"])
        minimum, task_id = param(request.params, "minLevel") or "TRACE", param(request.params, "taskId")
        entries = self.store.logs(execution, minimum, task_id)
        return Response(body=[e.to_api() for e in entries])

    def download_logs(self, request: Request) -> Response:
        execution = self.store.load_execution(request.path_params["executionId"])
        lines = [
            f"{e.to_api()['timestamp']} {e.level} {e.task_id or ''} {e.message}".replace("  ", " ")
            for e in self.store.logs(execution, param(request.params, "minLevel") or "TRACE")
        ]
        return Response(body="\n".join(lines) + ("\n" if lines else ""), content_type="text/plain")

    def follow_logs(self, request: Request) -> Response:
        """Server-sent events: every log line as it is stored, until the execution ends."""
        execution_id = request.path_params["executionId"]
        execution = self.store.load_execution(execution_id)
        minimum = param(request.params, "minLevel") or "TRACE"
        # Ours: where a reader already is (the UI's log view; a reconnecting EventSource sends the last event's id).
        resumed = str(request.headers.get("Last-Event-ID") or "")
        after = int(resumed) if resumed.isdigit() else int_param(request.params, "after", 0)

        def events() -> Iterator[bytes]:
            sent = after
            while True:
                try:
                    ended = self.store.execution_state(execution_id).is_terminated()
                    new = self.store.logs_after(execution, sent, minimum)
                except StoreError:  # the database is away for a while: the follower waits with us
                    time.sleep(OUTAGE_POLL_SECONDS)
                    continue
                for seq, entry in new:
                    yield f"id: {seq}\nevent: log\ndata: {json.dumps(entry.to_api())}\n\n".encode()
                sent = new[-1][0] if new else sent
                if ended:
                    return
                time.sleep(0.2)

        return Response(content_type="text/event-stream", stream=events())

    # ---- flows --------------------------------------------------------------------------------

    def create_flow(self, request: Request) -> Response:
        flow = parse_flow(request.text(), "request body")
        if self.store.latest_flow(flow.namespace, flow.id) is not None:
            raise ConflictError(f"Flow id already exists: {flow.namespace}.{flow.id}")
        revision, _ = self.store.save_flow(flow.namespace, flow.id, flow.source)
        return Response(body=_flow_json(self.store.flow_revision(flow.namespace, flow.id, revision), True))

    def update_flow(self, request: Request) -> Response:
        ns, flow_id = request.path_params["namespace"], request.path_params["flowId"]
        self.store.flow_revision(ns, flow_id)
        flow = parse_flow(request.text(), "request body")
        if (flow.namespace, flow.id) != (ns, flow_id):
            raise ValidationError(f"flow id and namespace must stay {ns}.{flow_id} (got {flow.namespace}.{flow.id})")
        revision, _ = self.store.save_flow(ns, flow_id, flow.source)
        return Response(body=_flow_json(self.store.flow_revision(ns, flow_id, revision), True))

    def get_flow(self, request: Request) -> Response:
        ns, flow_id = request.path_params["namespace"], request.path_params["flowId"]
        row = self.store.flow_revision(ns, flow_id, int_param(request.params, "revision"))
        return Response(body=_flow_json(row, flag(request.params, "source")))

    def delete_flow(self, request: Request) -> Response:
        self.store.delete_flow(request.path_params["namespace"], request.path_params["flowId"])
        return Response(status=204)

    def namespace_flows(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        rows = [r for r in self.store.latest_sources() if r.namespace == namespace]
        return Response(body=[_flow_json(r, False) for r in rows])

    def revisions(self, request: Request) -> Response:
        """Every revision with its source, oldest first (Kestra's `List<FlowWithSource>`)."""
        rows = self.store.revisions(request.path_params["namespace"], request.path_params["flowId"])
        return Response(body=[_flow_json(row, True) for row in rows])

    def search_flows(self, request: Request) -> Response:
        page, size = page_param(request.params, 10)
        namespace, query = param(request.params, "namespace"), (param(request.params, "q") or "").lower()
        rows = [
            r
            for r in self.store.latest_sources()
            if (not namespace or r.namespace == namespace or r.namespace.startswith(namespace + "."))
            and (not query or query in r.id.lower() or query in r.namespace.lower())
        ]
        chosen = rows[(page - 1) * size : page * size]
        return Response(body={"results": [_flow_json(r, False) for r in chosen], "total": len(rows)})

    def validate_flows(self, request: Request) -> Response:
        """Kestra's answer per document; `problems` (ours, added) gives each problem's line in the whole body,
        which the editor marks, while `constraints` stays Kestra's text."""
        text, results, cursor = request.text(), [], 0
        for index, doc in enumerate(split_documents(text)):
            start = max(text.find(doc, cursor), 0)
            cursor = start + len(doc)
            results.append(_validation(index, doc, text.count("\n", 0, start)))
        return Response(body=results)

    def update_namespace(self, request: Request) -> Response:
        """CI/CD's `flow namespace update`: every flow of the body; others of the namespace deleted."""
        namespace = request.path_params["namespace"]
        flows = load_flow_texts([(f"document {i}", d) for i, d in enumerate(split_documents(request.text()))])
        wrong = [f"{f.namespace}.{f.id}" for f, _ in flows if f.namespace != namespace]
        if wrong:
            raise ValidationError(f"flows outside namespace {namespace}: {', '.join(wrong)}")
        rows = []
        with self.store.transaction():
            for flow, _ in flows:
                revision, _ = self.store.save_flow(flow.namespace, flow.id, flow.source)
                rows.append(self.store.flow_revision(flow.namespace, flow.id, revision))
            if request.params.get("delete", ["true"])[-1].lower() != "false":
                kept = {f.id for f, _ in flows}
                for row in self.store.latest_sources():
                    if row.namespace == namespace and row.id not in kept:
                        self.store.delete_flow(row.namespace, row.id)
        return Response(body=[_flow_json(r, False) for r in rows])


def _validation(index: int, doc: str, first_line: int) -> dict[str, Any]:
    name = f"document {index}"
    entry: dict[str, Any] = {"index": index, "outdated": False, "deprecationPaths": [], "warnings": [], "infos": []}
    try:
        flow = parse_flow(doc, name)
        entry.update(flow=flow.id, namespace=flow.namespace)
    except ValidationError as exc:
        entry["constraints"] = "\n".join(exc.problems)
        located_problems = (located(problem, name) for problem in exc.problems)
        entry["problems"] = [
            {"line": line + first_line if line else None, "message": message} for line, message in located_problems
        ]
    return entry


def _flow_json(row: FlowRow, with_source: bool) -> dict[str, Any]:
    """Kestra's flow JSON: the YAML as data, labels as a list, revision assigned by the store."""
    data = to_plain(load_yaml(row.source, f"{row.namespace}.{row.id}")) or {}
    if isinstance(data.get("labels"), dict):
        data["labels"] = [{"key": k, "value": label_text(v)} for k, v in label_pairs(data["labels"]) or []]
    data.update(revision=row.revision, deleted=False, disabled=bool(data.get("disabled", False)))
    if with_source:
        data["source"] = row.source
    return data


def _remote_inputs(flow: Flow, inputs: dict[str, Any]) -> dict[str, Any]:
    """Values typed in a request: a FILE input must be an uploaded part (or a kestra:/// URI), never
    a path on this machine, or anyone reaching the API could read the server's files."""
    for declared in flow.inputs:
        value = inputs.get(declared.id)
        if declared.type == "FILE" and isinstance(value, str) and not value.startswith("kestra://"):
            raise ValidationError(f"Invalid input for `{declared.id}`: a FILE input must be uploaded as a file part")
    return inputs


def _inputs_param(request: Request) -> dict[str, Any]:
    """The seed's `inputs` query parameter: a JSON object, or repeated `key:value` pairs."""
    out: dict[str, Any] = {}
    for item in request.params.get("inputs", []):
        if item.strip().startswith("{"):
            try:
                parsed = json.loads(item)
            except ValueError:
                raise BadRequest("`inputs` must be a JSON object or key:value pairs") from None
            out.update(parsed if isinstance(parsed, dict) else {})
        else:
            key, sep, value = item.partition(":")
            if not sep:
                raise BadRequest(f"`inputs` must be a JSON object or key:value pairs, got `{item}`")
            out[key] = value
    return out
