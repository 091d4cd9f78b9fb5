"""Creating executions: typed inputs (files into storage), labels, and subflow children, written as rows.

No loop needed: a process that only creates executions (a webserver, a scheduler) uses this alone; a runner
drives the rows afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kestractl.engine.contexts import MASK
from kestractl.errors import ConflictError, InputError, KestraError
from kestractl.expressions import render_typed
from kestractl.inputs import resolve_inputs
from kestractl.model import Execution, Flow, State, StateInfo, TaskRun, new_id
from kestractl.storage import Storage, execution_prefix
from kestractl.store import Store
from kestractl.tasks.base import Task

# Subflow children built before their rows are written (one statement), so that 100,000 are never all in memory.
CREATE_CHUNK = 500
FlowOf = Callable[..., Flow]


class ExecutionCreator:
    """Builds CREATED executions and writes them; it drives none."""

    def __init__(self, store: Store, storage: Storage) -> None:
        self.store = store
        self.storage = storage

    def create_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        labels: list[tuple[str, str]] | None = None,
        trigger: dict[str, Any] | None = None,
        parent: tuple[Execution, TaskRun] | None = None,
        validate_inputs: bool = True,
    ) -> Execution:
        """A new CREATED execution with typed inputs (files copied into storage), persisted."""
        execution = self._new_execution(flow, inputs, labels, trigger, parent, validate_inputs)
        with self.store.transaction():
            self.store.save_execution(execution)
        return execution

    def _new_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None,
        labels: list[tuple[str, str]] | None,
        trigger: dict[str, Any] | None,
        parent: tuple[Execution, TaskRun] | None,
        validate_inputs: bool,
    ) -> Execution:
        """`create_execution`'s execution, not yet written."""
        if flow.disabled:
            raise ConflictError(f"flow {flow.namespace}.{flow.id} is disabled")
        execution = Execution(
            id=new_id(),
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=flow.revision,
            state=StateInfo.new(State.CREATED),
            trigger=trigger,
        )
        prefix = execution_prefix(flow.namespace, flow.id, execution.id)

        def store_file(input_id: str, path: Path) -> str:
            return self.storage.put(f"{prefix}/inputs/{input_id}/{path.name}", path)

        try:
            execution.inputs = (
                resolve_inputs(flow.inputs, inputs or {}, store_file=store_file, render=input_renderer(flow))
                if validate_inputs
                else dict(inputs or {})
            )
        except KestraError:
            self.storage.delete_under(prefix)
            raise
        except OSError as exc:  # a FILE input that cannot be copied (name too long, unreadable …)
            self.storage.delete_under(prefix)
            raise InputError(f"Invalid input: the file cannot be stored ({exc.strerror or exc})") from None
        for declared in flow.inputs:
            if declared.type == "SECRET" and execution.inputs.get(declared.id) is not None:
                execution.secrets[declared.id] = execution.inputs[declared.id]
                execution.inputs[declared.id] = MASK
        correlation = execution.id
        if parent is not None:
            parent_execution, parent_run = parent
            execution.parent_id = parent_execution.id
            execution.parent_task_run_id = parent_run.id
            correlation = parent_execution.labels_map().get("system.correlationId", parent_execution.id)
        execution.labels = merge_labels([*flow.labels, *(labels or []), ("system.correlationId", correlation)])
        return execution

    def create_children(
        self,
        parent: Execution,
        task: Task,
        run: TaskRun,
        requests: Iterable[dict[str, Any]],
        flow_of: FlowOf,
        keep: int = 0,
    ) -> tuple[list[str], list[Execution]]:
        """The children's rows written CREATE_CHUNK at a time, in one statement each; their ids are kept, and the
        first `keep` children themselves. The caller holds the transaction: all children or none."""
        ids: list[str] = []
        kept: list[Execution] = []
        chunk: list[Execution] = []
        for request in requests:
            chunk.append(self._new_child(parent, task, run, request, flow_of))
            if len(chunk) == CREATE_CHUNK:
                self._write(chunk, ids, kept, keep)
                chunk = []
        self._write(chunk, ids, kept, keep)
        return ids, kept

    def _write(self, chunk: list[Execution], ids: list[str], kept: list[Execution], keep: int) -> None:
        self.store.save_executions(chunk)
        ids.extend(e.id for e in chunk)
        kept.extend(chunk[: max(0, keep - len(kept))])

    def _new_child(
        self, parent: Execution, task: Task, run: TaskRun, request: dict[str, Any], flow_of: FlowOf
    ) -> Execution:
        flow = flow_of(request["namespace"], request["flowId"], request.get("revision"))
        labels = list(request.get("labels") or [])
        if request.get("inheritLabels"):
            labels = [*[(k, v) for k, v in parent.labels if k != "system.correlationId"], *labels]
        variables = {**parent.reference(), **(request.get("triggerVariables") or {})}
        trigger = {"id": task.id, "type": task.type, "variables": variables}
        return self._new_execution(flow, request.get("inputs") or {}, labels, trigger, (parent, run), True)


def input_renderer(flow: Flow) -> Callable[[str, dict[str, Any]], Any]:
    """What renders `dependsOn.condition`, SELECT `expression` and dynamic `defaults`: the flow and the inputs
    resolved so far (there is no execution yet, as in Kestra: `{{ execution.id }}` is an error there)."""
    names = {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision}
    return lambda expression, inputs: render_typed(expression, {"flow": names, "inputs": inputs})


def merge_labels(labels: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Later labels override earlier ones with the same key; order of first appearance kept."""
    merged: dict[str, str] = {}
    for key, value in labels:
        merged[key] = value
    return list(merged.items())
