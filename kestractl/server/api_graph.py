"""Kestra's topology endpoints (`FlowController`, `ExecutionController`): a flow's graph by id or
from unsaved YAML (the editor's) and an execution's graph with its task runs."""

from __future__ import annotations

from typing import Any

from kestractl.graph import flow_graph, to_api
from kestractl.parser import parse_flow
from kestractl.server.executions import Executions
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import int_param

FLOW = "/api/v1/flows/{namespace}/{flowId}"


def add_routes(router: Router, executions: Executions) -> None:
    router.add("GET", FLOW + "/graph", lambda request: flow_graph_of(executions, request))
    router.add("POST", "/api/v1/flows/graph", source_graph)
    router.add("GET", "/api/v1/executions/{executionId}/graph", lambda request: execution_graph(executions, request))


def flow_graph_of(executions: Executions, request: Request) -> Response:
    """`?revision=` picks one; the latest otherwise."""

    ns, flow_id = request.path_params["namespace"], request.path_params["flowId"]
    flow = executions.flows.get(ns, flow_id, int_param(request.params, "revision"))
    return Response(body=to_api(flow_graph(flow)))


def source_graph(request: Request) -> Response:
    """The graph of a flow's YAML as sent (not saved): a flow that does not parse answers 422 with why."""
    return Response(body=to_api(flow_graph(parse_flow(request.text(), "flow"))))


def execution_graph(executions: Executions, request: Request) -> Response:
    """The graph of the revision the execution ran, each task's node with its latest task run."""
    execution = executions.store.load_execution(request.path_params["executionId"])
    flow = executions.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
    latest: dict[str, Any] = {run.task_id: run.to_api(execution) for run in execution.task_runs}
    return Response(body=to_api(flow_graph(flow), latest))
