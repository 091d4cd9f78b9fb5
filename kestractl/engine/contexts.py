"""Building `RunContext`s: the variables, the runtime functions (`read`, `errorLogs` …), shared
working directories, and the log buffer every task writes into."""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kestractl.engine.variables import build_variables, value_path
from kestractl.errors import StorageError, TaskError
from kestractl.expressions import render_value
from kestractl.javatext import utf16_text
from kestractl.kv import lookup as kv_lookup
from kestractl.model import Execution, Flow, LogEntry, TaskRun
from kestractl.namespace_files import NamespaceFiles, files_prefix
from kestractl.storage import Storage, execution_prefix
from kestractl.store import Store
from kestractl.tasks.base import ExecutionServices, RunContext, Task

MASK = "******"
NSFILE_SCHEME = "nsfile://"
URI_LIKE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# Log lines are stored in batches while the loop is busy: at most this old, or this many, before they are written
# (a batch of lines adds a few pages to its commit; a line per decision added four, half of what a task run wrote).
LOG_BATCH_SECONDS = 0.05
LOG_BATCH_LINES = 1_000


class LogBuffer:
    """Logs from any thread: secrets masked, shown at once through `on_log`, stored in batches (`flush` when
    they must be there, `flush_due` when the loop writes anyway)."""

    def __init__(self, store: Store, on_log: Callable[[LogEntry], None] | None = None) -> None:
        self.store = store
        self.on_log = on_log
        self._pending: list[LogEntry] = []
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._oldest = 0.0  # when the first pending line came

    def hide(self, value: Any) -> None:
        """Never show this value in a log line again."""
        text = str(value)
        if len(text) >= 3:
            with self._lock:
                self._secrets.add(text)

    def __call__(self, entry: LogEntry) -> None:
        entry.message = utf16_text(entry.message)
        with self._lock:
            for secret in self._secrets:
                if secret in entry.message:
                    entry.message = entry.message.replace(secret, MASK)
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(entry)
        if self.on_log is not None:
            self.on_log(entry)

    def flush(self, settled: bool = False) -> None:
        """Store every pending line. `settled`, before a task reads its execution's logs: also wait for the lines
        another thread (the loop) took into a transaction it has not committed yet. Lines are taken inside the
        store's transaction, whose writer lock waits for that thread's."""
        if not (settled or self._pending):
            return
        with self.store.transaction():
            with self._lock:
                pending, self._pending = self._pending, []
            if pending:
                self.store.on_rollback(lambda: self._put_back(pending))
                self.store.append_logs(pending)

    def _put_back(self, lines: list[LogEntry]) -> None:
        """Lines whose transaction did not commit (the database went away) wait for the next flush, in order."""
        with self._lock:
            self._pending[:0] = lines

    def flush_due(self) -> None:
        """Store the pending lines if they waited LOG_BATCH_SECONDS or are LOG_BATCH_LINES."""
        pending = self._pending
        if pending and (len(pending) >= LOG_BATCH_LINES or time.monotonic() - self._oldest >= LOG_BATCH_SECONDS):
            self.flush()


class Contexts:
    """Makes the RunContext of a task run (or of the execution itself, for flow outputs)."""

    def __init__(
        self, store: Store, storage: Storage, logs: LogBuffer, services: ExecutionServices | None = None
    ) -> None:
        self.store = store
        self.storage = storage
        self.logs = logs
        self.services = services
        self._workdirs: dict[str, str] = {}

    def make(
        self, flow: Flow, execution: Execution, tasks: Mapping[str, Task], task: Task | None, run: TaskRun | None
    ) -> RunContext:
        by_id = execution.runs_by_id()
        for value in execution.secrets.values():
            self.logs.hide(value)
        return RunContext(
            flow=flow,
            execution=execution,
            task=task,
            task_run=run,
            variables=build_variables(flow, execution, task, run, self._functions(execution, run, by_id)),
            renderer=render_value,
            storage=self.storage,
            log_sink=self.logs,
            working_dir=self._workdir(tasks, run, by_id),
            services=self.services,
        )

    def release(self, execution: Execution) -> None:
        """Remove the shared working directories of an ended execution."""
        for run in execution.task_runs:
            path = self._workdirs.pop(run.id, None)
            if path:
                shutil.rmtree(path, ignore_errors=True)

    def _functions(
        self, execution: Execution, run: TaskRun | None, by_id: dict[str, TaskRun]
    ) -> dict[str, Callable[..., Any]]:
        path = value_path(run, by_id) if run is not None else []

        def current_each_output(outputs: Any) -> Any:
            for value in path:
                if isinstance(outputs, Mapping) and value in outputs:
                    outputs = outputs[value]
            return outputs

        def error_logs() -> list[dict[str, Any]]:
            self.logs.flush(settled=True)
            return [e.to_api() for e in self.store.logs(execution, "ERROR") if e.level == "ERROR"]

        return {
            "read": lambda path, namespace=None: self._read(execution, path, namespace),
            "fileURI": lambda path, namespace=None: self._file(execution, path, namespace)[0],
            "fileExists": lambda path, namespace=None: self.storage.exists(self._file(execution, path, namespace)[0]),
            "isFileEmpty": lambda path, namespace=None: self._size(execution, path, namespace) == 0,
            "errorLogs": error_logs,
            "currentEachOutput": current_each_output,
            "secret": self._secret,
            "fileSize": lambda path, namespace=None: self._size(execution, path, namespace),
            "kv": lambda key=None, namespace=None, errorOnMissing=True: kv_lookup(
                self.storage, execution.namespace, key, namespace, errorOnMissing
            ),
        }

    def _secret(self, key: str) -> str:
        value = _read_secret(key)
        self.logs.hide(value)
        return value

    def _read(self, execution: Execution, path: Any, namespace: Any = None) -> str:
        """`read()`: a namespace file (the flow's namespace unless `namespace` is given), or a kestra:// file."""
        text = str(path)
        if text.startswith("kestra://") and self._plainly_allowed(execution, text):
            data = self.storage.read_plain(text)
            if data is not None:
                return data.decode("utf-8")
        uri, target = self._file(execution, path, namespace)  # resolved, then checked where it leads
        return self.storage.read_bytes(uri, target).decode("utf-8")

    def _size(self, execution: Execution, path: Any, namespace: Any) -> int:
        uri, _ = self._file(execution, path, namespace)
        size = self.storage.size(uri)
        if size is None:
            raise StorageError(f"File not found: {uri}")
        return size

    def _file(self, execution: Execution, path: Any, namespace: Any) -> tuple[str, Path]:
        """Kestra's `AbstractFileFunction`: the URI and file a file function may reach. A `kestra://` URI must
        be a file of this execution, of the execution that started it, or a namespace file of the flow's
        namespace; `nsfile://[ns]/path` and a plain path name a namespace file."""
        text = str(path)
        if text.startswith("kestra://"):
            return text, self._allowed(execution, text)
        if text.startswith(NSFILE_SCHEME):
            authority, _, text = text.removeprefix(NSFILE_SCHEME).partition("/")
            if authority and namespace is not None:
                raise StorageError("You cannot set a namespace both as the function argument and inside the URI")
            namespace = namespace or authority or None
        elif URI_LIKE.match(text):
            raise StorageError(f"Cannot process the URI {text}: scheme not supported.")
        uri = NamespaceFiles(self.storage, str(namespace or execution.namespace)).uri(text)
        return uri, self.storage.local_path(uri)

    def _allowed(self, execution: Execution, uri: str) -> Path:
        target = self.storage.local_path(uri)
        text = str(target)
        folders = [self.storage.folder_text(prefix) for prefix in _allowed_folders(execution)]
        if any(text.startswith(f"{folder}{os.sep}") for folder in folders):
            return target
        raise StorageError(f"Unable to read the file '{uri}' as it didn't belong to the current execution")

    @staticmethod
    def _plainly_allowed(execution: Execution, uri: str) -> bool:
        """The URI's own text lies in an allowed folder (what `read_plain` reads, if the path is plain)."""
        path = uri.removeprefix("kestra://")
        return any(path.startswith(f"{prefix}/") for prefix in _allowed_folders(execution))

    def _workdir(self, tasks: Mapping[str, Task], run: TaskRun | None, by_id: dict[str, TaskRun]) -> Path | None:
        """The directory of the nearest WorkingDirectory: the run's own, else its nearest such ancestor's."""
        node = run
        while node is not None:
            if tasks[node.task_id].shares_working_directory:
                if node.id not in self._workdirs:
                    self._workdirs[node.id] = tempfile.mkdtemp(prefix="kestractl-wd-")
                return Path(self._workdirs[node.id])
            node = by_id.get(node.parent_task_run_id or "")
        return None


def _allowed_folders(execution: Execution) -> list[str]:
    """Kestra's `AbstractFileFunction`: the storage folders a file function may read, this execution's, its
    namespace's files and, for a subflow's execution, the execution that started it."""
    allowed = [
        execution_prefix(execution.namespace, execution.flow_id, execution.id),
        files_prefix(execution.namespace),
    ]
    variables = (execution.trigger or {}).get("variables") or {}
    if variables.get("executionId") and variables.get("namespace") and variables.get("flowId"):
        allowed.append(execution_prefix(variables["namespace"], variables["flowId"], variables["executionId"]))
    return allowed


def _read_secret(key: str) -> str:
    """Kestra OSS secrets: env var `SECRET_<KEY>`, base64-encoded."""
    raw = os.environ.get(f"SECRET_{key}")
    if raw is None:
        raise TaskError(f"Cannot find secret for key '{key}'")
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except ValueError:
        return raw
