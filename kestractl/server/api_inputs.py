"""`POST /api/v1/executions/{namespace}/{id}/validate`: Kestra's check of a new execution's inputs before it is
created. The execute form calls it as the user types: which inputs `dependsOn` enables, the choices a SELECT's
`expression` gives, and each input's problem, in Kestra's `ApiValidateExecutionInputsResponse` shape.
Nothing is stored: an uploaded file becomes the `kestra://` URI it would get, as in Kestra."""

from __future__ import annotations

from typing import Any

from kestractl.engine.creation import input_renderer
from kestractl.errors import ConflictError
from kestractl.inputs import InputCheck, check_inputs
from kestractl.model import Flow, new_id
from kestractl.server.executions import Executions
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import int_param
from kestractl.storage import execution_prefix

SECRET_MASK = "******"


def add_routes(router: Router, executions: Executions) -> None:
    path = "/api/v1/executions/{namespace}/{flowId}/validate"
    router.add("POST", path, lambda request: validate(executions, request))


def validate(executions: Executions, request: Request) -> Response:
    ns, flow_id = request.path_params["namespace"], request.path_params["flowId"]
    flow = executions.flows.get(ns, flow_id, int_param(request.params, "revision"))
    if flow.disabled:
        raise ConflictError(f"flow {ns}.{flow_id} is disabled")
    checks = check_inputs(flow.inputs, _provided(flow, request), render=input_renderer(flow))
    return Response(body={"id": flow.id, "namespace": flow.namespace, "inputs": [_input_json(c) for c in checks]})


def _provided(flow: Flow, request: Request) -> dict[str, Any]:
    """The form's fields; a file part stands for the URI it would be stored at (Kestra's `readData` without
    upload). A FILE input typed as text is dropped: only an upload or a `kestra://` URI may name a file."""
    fields, files = request.form()
    provided: dict[str, Any] = {k: v[-1] for k, v in fields.items()}
    file_ids = {inp.id for inp in flow.inputs if inp.type == "FILE"}
    for key in file_ids & provided.keys():
        if not str(provided[key]).startswith("kestra://"):
            del provided[key]
    prefix = execution_prefix(flow.namespace, flow.id, new_id())
    for upload in files:
        provided[upload.field] = f"kestra://{prefix}/inputs/{upload.field}/{upload.filename}"
    return provided


def _input_json(check: InputCheck) -> dict[str, Any]:
    """`{input, value, enabled, isDefault, errors: [{message}]}`; a SECRET's value is never echoed back."""
    declared = check.input
    described = {"description": declared.description} if declared.description is not None else {}
    defaults = {"defaults": declared.defaults} if declared.defaults is not None else {}
    value = SECRET_MASK if declared.type == "SECRET" and check.value is not None else check.value
    return {
        "input": {
            "id": declared.id,
            "type": declared.type,
            "required": declared.required,
            **described,
            **defaults,
            **check.props,
        },
        "value": value,
        "enabled": check.enabled,
        "isDefault": check.is_default,
        "errors": [{"message": check.problem}] if check.problem else [],
    }
