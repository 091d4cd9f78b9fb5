"""What a command asks of the place flows and executions live: this machine's store and runner (`LocalBackend`)
or a Kestra-compatible server (`RemoteBackend`, `--server URL`). Each command is written once against this
interface, so its output and exit codes are the same in both modes.

A command gets its backend from `CliState.backend`, which imports the one implementation it needs (local mode
imports no HTTP client, remote mode no runner); this module itself imports nothing at run time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import timedelta
    from pathlib import Path

    from kestractl.deploy import Deployed
    from kestractl.model import Execution, LogEntry, TaskRun
    from kestractl.store import FlowRow

OnLog = Callable[["LogEntry"], None]
OnChange = Callable[["Execution", list["TaskRun"]], None]


@dataclass
class ExecuteRequest:
    """`kestractl execute`'s arguments: inputs as typed (a FILE input is a local path), labels as pairs."""

    namespace: str
    flow_id: str
    inputs: dict[str, str] = field(default_factory=dict)
    labels: list[tuple[str, str]] = field(default_factory=list)
    revision: int | None = None


@dataclass
class Watch:
    """How a command that runs an execution to its end shows it: each log line, and task runs as they change."""

    on_log: OnLog
    on_change: OnChange | None = None


class Backend(Protocol):
    def deploy(self, paths: list[Path]) -> list[Deployed]:
        """Validate every flow of the files, then store them all (all or nothing)."""

    def validate(self, paths: list[Path]) -> list[tuple[str, str, str]]:
        """(namespace, id, file) of every flow of the files; a ValidationError lists every problem."""

    def flow_schema(self) -> dict[str, Any]:
        """The JSON Schema of a flow with the types this backend has (a server's: its plugins)."""

    def flows(self, namespace: str | None) -> list[FlowRow]:
        """The latest revision of each flow (of a namespace and its children), sorted; no source."""

    def flow(self, namespace: str, flow_id: str, revision: int | None) -> FlowRow:
        """One revision (the latest when None), with its source."""

    def sources(self) -> list[FlowRow]:
        """The latest revision of every flow, with its source."""

    def revisions(self, namespace: str, flow_id: str) -> list[FlowRow]: ...

    def delete_flow(self, namespace: str, flow_id: str) -> None: ...

    def execute(self, request: ExecuteRequest, watch: Watch) -> Execution:
        """Create an execution and follow it to its end (or a pause); a refused one is a ValidationError."""

    def executions(self, namespace: str | None, flow_id: str | None, states: list[str], limit: int) -> list[Execution]:
        """Newest first."""

    def execution(self, execution_id: str) -> Execution: ...

    def logs(self, execution_id: str, level: str, task_id: str | None) -> list[LogEntry]: ...

    def restart(self, execution_id: str, watch: Watch) -> Execution:
        """Restart a failed execution and follow it to its end."""

    def resume(self, execution_id: str, watch: Watch) -> Execution:
        """Resume a paused execution and follow it to its end."""

    def kill(self, execution_id: str, watch: Watch) -> Execution:
        """Kill a running or paused execution (and its subflows); returns once it ended, or after a few seconds."""

    def execution_files(self, execution_id: str) -> list[tuple[str, int]]: ...

    def execution_file(self, execution_id: str, uri: str) -> bytes: ...

    def kv_put(self, namespace: str, key: str, value: Any, ttl: timedelta | None) -> None: ...

    def kv_get(self, namespace: str, key: str) -> tuple[Any] | None:
        """The value in a 1-tuple (a value may be null), None when the key is missing or expired."""

    def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        """Kestra's JSON entries."""

    def kv_delete(self, namespace: str, key: str) -> bool: ...

    def file_put(self, namespace: str, path: str, source: Path) -> None: ...

    def file_paths(self, namespace: str) -> list[str]:
        """Every namespace file, relative, sorted."""

    def file_get(self, namespace: str, path: str) -> bytes: ...

    def file_delete(self, namespace: str, path: str) -> bool: ...

    def services(self, include_ended: bool) -> list[dict[str, Any]]:
        """Kestra's JSON of the service instances sharing the database (with `include_ended`, NOT_RUNNING too)."""
