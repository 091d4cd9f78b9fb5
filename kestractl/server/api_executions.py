"""Kestra's execution endpoints the execution page needs besides create/kill/restart: follow an execution
(SSE), resume with the Pause task's `onResume` inputs, set labels, and preview an output file."""

from __future__ import annotations

import codecs
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kestractl import ion
from kestractl.errors import ConflictError, NotFoundError, StoreError, ValidationError
from kestractl.inputs import parse_input, resolve_inputs
from kestractl.model import Execution, Input, State
from kestractl.server.executions import Executions
from kestractl.server.http import BadRequest, Request, Response, Router, UploadedFile, save_uploads
from kestractl.server.params import int_param, param
from kestractl.storage import execution_prefix

FOLLOW_SECONDS = 0.25
HEARTBEAT_SECONDS = 5.0
# Kestra's `kestra.server.preview.initial-rows` and `max-rows`.
PREVIEW_ROWS, PREVIEW_MAX_ROWS = 100, 5000
LINE_LIMIT = 1_000_000
SYSTEM_PREFIX = "system."

ExecutionJson = Callable[[Execution], dict[str, Any]]


class ExecutionsApi:
    def __init__(self, executions: Executions, execution_json: ExecutionJson) -> None:
        self.executions = executions
        self.store = executions.store
        self.execution_json = execution_json

    def add_routes(self, router: Router) -> None:
        router.add("GET", "/api/v1/executions/{executionId}/follow", self.follow)
        router.add("POST", "/api/v1/executions/{executionId}/resume", self.resume)
        router.add("POST", "/api/v1/executions/{executionId}/labels", self.set_labels)
        router.add("GET", "/api/v1/executions/{executionId}/file/preview", self.preview)

    def follow(self, request: Request) -> Response:
        """Server-sent events: the execution (id `progress`) each time it changes, then once more (id `end`)."""
        execution_id = request.path_params["executionId"]
        self.store.execution_state(execution_id)  # 404 before the stream starts
        return Response(content_type="text/event-stream", stream=self._changes(execution_id))

    def _changes(self, execution_id: str) -> Iterator[bytes]:
        seen: tuple[Any, ...] = ()
        quiet_since = time.monotonic()
        while True:
            began = time.monotonic()
            try:
                mark = self.store.execution_fingerprint(execution_id)
            except StoreError:  # the database is away for a while: the follower waits with us
                mark = seen
            if mark != seen:
                seen, quiet_since = mark, time.monotonic()
                data = json.dumps(self.execution_json(self.store.load_execution(execution_id)), default=str)
                yield f"id: progress\ndata: {data}\n\n".encode()
                if State(mark[0]).is_terminated():
                    yield f"id: end\ndata: {data}\n\n".encode()
                    return
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield b": waiting\n\n"  # a closed page is noticed here, not never
            # A huge execution takes long to send: a follower then waits as long, and never holds a core.
            time.sleep(max(FOLLOW_SECONDS, time.monotonic() - began))

    def resume(self, request: Request) -> Response:
        """A PAUSED execution goes on; multipart fields and files are the paused task's `onResume` inputs,
        typed and validated like a flow's inputs."""
        execution = self.store.load_execution(request.path_params["executionId"])
        if execution.state.current != State.PAUSED:
            raise ConflictError(f"execution {execution.id} is {execution.state.current.value}, not PAUSED")
        fields, files = request.form()
        declared = on_resume_inputs(self.executions, execution)
        inputs = self._resume_inputs(execution, declared, {k: v[-1] for k, v in fields.items()}, files)
        self.executions.resume(execution.id, inputs or None)
        return Response(body=self.execution_json(self.store.load_execution(execution.id)))

    def _resume_inputs(
        self, execution: Execution, declared: list[Input], fields: dict[str, str], files: list[UploadedFile]
    ) -> dict[str, Any]:
        if not declared:
            return {}
        prefix = execution_prefix(execution.namespace, execution.flow_id, execution.id)

        def store_file(input_id: str, path: Path) -> str:
            return self.executions.storage.put(f"{prefix}/resume/{input_id}/{path.name}", path)

        provided: dict[str, Any] = dict(fields)
        with tempfile.TemporaryDirectory(prefix="kestractl-resume-") as tmp:
            provided.update(save_uploads(files, tmp))
            return resolve_inputs(declared, provided, store_file=store_file)

    def set_labels(self, request: Request) -> Response:
        """Kestra's body `[{key, value}]` replaces the labels of an ended execution; `system.` labels stay."""
        wanted = _labels_body(request.json())
        with self.store.transaction():
            execution = self.store.load_execution(request.path_params["executionId"])
            if not execution.state.current.is_terminated():
                raise BadRequest("The execution is not terminated")
            system = [(k, v) for k, v in execution.labels if k.startswith(SYSTEM_PREFIX)]
            foreign = [(k, v) for k, v in wanted if k.startswith(SYSTEM_PREFIX) and (k, v) not in system]
            if foreign:
                key, value = foreign[0]
                raise BadRequest(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
            execution.labels = [*wanted, *[label for label in system if label not in wanted]]
            self.store.save_execution(execution)
        return Response(body=self.execution_json(execution))

    def preview(self, request: Request) -> Response:
        """Kestra's FileRender: `{extension, type, content, truncated}`; ION files as a LIST of records, any
        other file as the TEXT of its first lines."""
        execution = self.store.load_execution(request.path_params["executionId"])
        uri = param(request.params, "path") or ""
        rows = min(int_param(request.params, "maxRows", PREVIEW_ROWS, minimum=1), PREVIEW_MAX_ROWS)
        encoding = param(request.params, "encoding") or "UTF-8"
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise BadRequest(f"Unable to preview using encoding '{encoding}'") from None
        prefix = execution_prefix(execution.namespace, execution.flow_id, execution.id)
        lines = _first_lines(self.executions.storage.path_under(prefix, uri), encoding, rows + 1)
        name = uri.rsplit("/", 1)[-1]
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        truncated, lines = len(lines) > rows, lines[:rows]
        if extension == "ion":
            records = [json.loads(json.dumps(v, default=str)) for v in ion.iter_lines(lines)]
            return Response(body={"extension": extension, "type": "LIST", "content": records, "truncated": truncated})
        content = "\n".join(lines)
        return Response(body={"extension": extension, "type": "TEXT", "content": content, "truncated": truncated})


def _first_lines(path: Path, encoding: str, count: int) -> list[str]:
    """The first `count` lines of a file (a longer line comes in pieces of LINE_LIMIT): never the whole file."""
    if not path.is_file():
        raise NotFoundError(f"file not found in internal storage: {path.name}")
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        lines = (fh.readline(LINE_LIMIT) for _ in range(count))
        return [line.rstrip("\r\n") for line in lines if line]


def on_resume_inputs(executions: Executions, execution: Execution) -> list[Input]:
    """The `onResume` inputs declared by the execution's paused tasks (the resume form shows the same)."""
    tasks = executions.flows.get(execution.namespace, execution.flow_id, execution.flow_revision).tasks_by_id
    declared: list[Input] = []
    for run in execution.task_runs:
        task = tasks.get(run.task_id)
        if run.state.current == State.PAUSED and task is not None:
            declared += [i for raw in task.spec.get("onResume") or [] if (i := parse_input(raw)[0])]
    return declared


def _labels_body(body: Any) -> list[tuple[str, str]]:
    if not isinstance(body, list) or not all(isinstance(i, dict) and isinstance(i.get("key"), str) for i in body):
        raise ValidationError("labels: expected a list of {key, value}")
    labels = [(str(i["key"]).strip(), "" if i.get("value") is None else str(i["value"])) for i in body]
    if any(not key for key, _ in labels):
        raise ValidationError("labels: a label's key must not be empty")
    return labels
