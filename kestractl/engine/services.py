"""The engine's side of `ExecutionServices`: what execution, log, trigger and flow tasks may ask, done over the store
and internal storage, so the tasks themselves never touch either."""

from __future__ import annotations

from collections.abc import Callable

from kestractl.deploy import deploy_texts
from kestractl.engine.contexts import LogBuffer
from kestractl.errors import NotFoundError, TaskError
from kestractl.model import Execution, ExecutionQuery, Flow, LogEntry, State
from kestractl.storage import Storage, execution_prefix
from kestractl.store import Store
from kestractl.tasks.base import FlowSource


class StoreServices:
    """Implements `kestractl.tasks.base.ExecutionServices` for one runner's store, storage and logs."""

    def __init__(self, store: Store, storage: Storage, logs: LogBuffer, flow: Callable[[str, str], Flow]) -> None:
        self.store = store
        self.storage = storage
        self.logs = logs
        self._flow = flow

    def find_execution(self, execution_id: str) -> Execution:
        try:
            return self.store.load_execution(execution_id)
        except NotFoundError:
            raise TaskError(f"No execution found for execution id {execution_id}") from None

    def paused_execution(self, namespace: str, flow_id: str) -> Execution | None:
        """The latest PAUSED execution of a flow."""
        ids = self.store.find_execution_ids(namespace, flow_id, [State.PAUSED.value], limit=1_000)
        found = [self.store.load_execution(i) for i in ids]
        exact = [e for e in found if e.namespace == namespace]
        return exact[0] if exact else None

    def count_executions(self, query: ExecutionQuery) -> list[tuple[str, str, int]]:
        return self.store.execution_counts(query)

    def purge_executions(self, query: ExecutionQuery, executions: bool, logs: bool, storage: bool) -> dict[str, int]:
        """Kestra's `ExecutionService.purge` over ended executions: rows, logs and internal-storage files."""
        self.logs.flush(settled=True)
        found, log_count = self.store.purge_executions(query, executions, logs)
        files = sum(self._purge_files(e) for e in found) if storage else 0
        return {
            "executionsCount": len(found) if executions else 0,
            "logsCount": log_count,
            "storagesCount": files,
            "metricsCount": 0,
        }

    def _purge_files(self, execution: Execution) -> int:
        return self.storage.delete_under(execution_prefix(execution.namespace, execution.flow_id, execution.id))

    def fetch_logs(self, execution: Execution, min_level: str, task_ids: list[str] | None) -> list[LogEntry]:
        self.logs.flush(settled=True)
        if task_ids is None:
            return self.store.logs(execution, min_level)
        return [entry for task_id in task_ids for entry in self.store.logs(execution, min_level, task_id)]

    def purge_logs(self, query: ExecutionQuery, levels: list[str] | None) -> int:
        self.logs.flush(settled=True)
        return self.store.purge_logs(query, levels)

    def toggle_trigger(self, namespace: str, flow_id: str, trigger_id: str, enabled: bool) -> None:
        try:
            flow = self._flow(namespace, flow_id)
        except NotFoundError:
            raise TaskError(
                f"Unable to find flow {namespace}.{flow_id}. Make sure the flow exists and the current execution"
                " is authorized to access it."
            ) from None
        if not any(str(t.get("id")) == trigger_id for t in flow.triggers):
            raise TaskError(f"Unable to find trigger {trigger_id} for the flow {namespace}.{flow_id}")
        self.store.set_trigger_disabled(namespace, flow_id, trigger_id, not enabled)

    def flows(self, namespace: str, children: bool) -> list[FlowSource]:
        rows = self.store.latest_sources()
        inside = [r for r in rows if r.namespace == namespace or children and r.namespace.startswith(namespace + ".")]
        return [FlowSource(r.namespace, r.id, r.revision, r.source) for r in inside]

    def deploy_flows(self, sources: list[tuple[str, str]], dry_run: bool) -> list[FlowSource]:
        """Through `deploy.py`, the path of `kestractl flow deploy`: validated together, stored in one transaction."""
        deployed = deploy_texts(self.store, sources, dry_run)
        return [FlowSource(d.namespace, d.id, d.revision, text) for d, (_, text) in zip(deployed, sources, strict=True)]

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self.store.delete_flow(namespace, flow_id)
