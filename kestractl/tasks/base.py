"""What every task is, and the one door (`RunContext`) through which a running task reaches the world.

Runnable tasks do work (`run(ctx) -> outputs`); flowable tasks only decide which children run
next and what state they end in. The executor never asks a task what type it is.
"""

from __future__ import annotations

import functools
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kestractl.durations import is_duration, parse_duration
from kestractl.errors import TaskError
from kestractl.model import LOG_LEVELS, LogEntry, State, level_rank, utcnow
from kestractl.storage import Storage, execution_prefix, slugify
from kestractl.tasks.properties import Declared, Prop

if TYPE_CHECKING:
    from kestractl.model import Execution, ExecutionQuery, Flow, TaskRun
    from kestractl.tasks.flowable import FlowableView

TASK_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")


def id_problem(value: object) -> str | None:
    """Why `value` cannot be a task's or a trigger's id (Kestra holds both to one pattern), or None."""
    if isinstance(value, str) and TASK_ID_RE.match(value):
        return None
    return f"`{value}` does not match {TASK_ID_RE.pattern}"


# Properties every task accepts (Kestra's `Task`), so they never reach a task's own validator: the parser checks
# them itself (`_common_problems`); the flow schema describes them from here.
COMMON_PROPERTIES: dict[str, Prop] = {
    "id": Prop("The task's id, unique in the flow.", "string", required=True, dynamic=False),
    "type": Prop("The task's type.", "string", required=True, dynamic=False),
    "description": Prop("A description of the task (Markdown).", "string", dynamic=False),
    "disabled": Prop("Skip the task: it does not run.", "boolean", default=False, dynamic=False),
    "timeout": Prop("The longest the task may run, as an ISO-8601 duration (e.g. PT30S).", "duration"),
    "retry": Prop("How a failed run is retried: `type` constant, exponential or random.", "object", dynamic=False),
    "allowFailure": Prop("A failure ends the task WARNING and the flow goes on.", "boolean", default=False),
    "allowWarning": Prop("A warning ends the task SUCCESS.", "boolean", default=False),
    "runIf": Prop("Run the task only when this expression renders truthy.", "string", default="true"),
    "logLevel": Prop("The lowest level of the task's logs that is kept.", values=tuple(LOG_LEVELS), dynamic=False),
    "logToFile": Prop("Keep the task's logs in a file in internal storage.", "boolean", default=False),
    "workerGroup": Prop("Worker groups are an Enterprise Edition feature: refused.", "object", dynamic=False),
    "version": Prop("The plugin version to use (kestractl has one version of each type).", "string"),
}
COMMON_KEYS = frozenset(COMMON_PROPERTIES)


def dynamic(value: Any) -> bool:
    """A value Kestra renders at run time (`Property<T>`): it can only be checked then."""
    return isinstance(value, str) and "{{" in value


def is_true(value: Any, default: bool) -> bool:
    """A rendered boolean property as Kestra reads it: text is true only as `true`; absent is the default."""
    if value is None:
        return default
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


def duration_problems(spec: dict[str, Any], *names: str) -> list[str]:
    """Deploy-time check of static durations; an expression is checked when it is rendered."""
    return [
        f"{name}: `{spec[name]}` is not an ISO-8601 duration (e.g. PT30S)"
        for name in names
        if spec.get(name) is not None and not dynamic(spec[name]) and not is_duration(spec[name])
    ]


class Task(Declared):
    """A task as written in the flow: its common properties (COMMON_KEYS, never declared) plus its own declared
    properties. The parser refuses any other key as Kestra does (`Unrecognized field`)."""

    # Properties holding child task lists (flowable tasks), parsed into Task objects by the parser.
    child_lists: ClassVar[tuple[str, ...]] = ()
    is_flowable: ClassVar[bool] = False
    # Executable tasks (Subflow) start another execution and wait for it.
    is_executable: ClassVar[bool] = False
    # Children of this task run in one shared local directory (WorkingDirectory).
    shares_working_directory: ClassVar[bool] = False

    def __init__(self, spec: dict[str, Any], children: dict[str, list[Task]] | None = None) -> None:
        self.spec = spec
        self.id: str = spec["id"]
        self.type: str = spec["type"]
        self.description: str | None = spec.get("description")
        self.disabled: bool = bool(spec.get("disabled", False))
        # An expression (Kestra 1.x renders `timeout`) is rendered when a run starts; see the worker.
        raw_timeout = spec.get("timeout")
        self.timeout: timedelta | None = (
            parse_duration(raw_timeout) if raw_timeout and not dynamic(raw_timeout) else None
        )
        self.retry: dict[str, Any] | None = spec.get("retry")
        self.allow_failure: bool = bool(spec.get("allowFailure", False))
        self.allow_warning: bool = bool(spec.get("allowWarning", False))
        self.run_if: Any = spec.get("runIf")
        self.log_level: str | None = spec.get("logLevel")
        self.children: dict[str, list[Task]] = children or {}

    @classmethod
    def child_specs(cls, spec: dict[str, Any]) -> dict[str, Any]:
        """Raw child task lists by name (e.g. `tasks`, `errors`); the parser turns them into Tasks."""
        return {name: spec[name] for name in cls.child_lists if spec.get(name) is not None}

    @property
    def props(self) -> dict[str, Any]:
        """The task's own properties (not the common ones, not child task lists)."""
        skip = COMMON_KEYS | set(self.child_lists)
        return {k: v for k, v in self.spec.items() if k not in skip}

    def all_children(self) -> Iterator[Task]:
        for tasks in self.children.values():
            yield from tasks

    def walk(self) -> Iterator[Task]:
        """This task and every task below it."""
        yield self
        for child in self.all_children():
            yield from child.walk()


class RunnableTask(Task):
    # Quick and bounded (render, log, return): run on the executor's thread, not handed to a worker thread.
    # A handoff costs more than such a task itself once the GIL is contended.
    inline = False
    # Its run has no effect but its outputs and log lines (nothing stored, no other execution touched).
    pure = False

    @functools.cached_property
    def runs_inline(self) -> bool:
        """Inline unless a timeout must be enforced or a `{% %}` tag (a loop) could keep the executor busy."""
        return self.inline and self.spec.get("timeout") is None and "{%" not in repr(self.spec)

    @functools.cached_property
    def computes_only(self) -> bool:
        """Run inline before the decision that started it is stored (see `Loop._run_now`)."""
        return self.pure and self.runs_inline

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raise NotImplementedError


class FlowableTask(Task):
    """A task that owns children. The executor asks it two questions and never more."""

    is_flowable = True

    def start(self, ctx: RunContext) -> dict[str, Any] | None:
        """Render what the decision needs (condition, values …) once, when the run starts.

        Returns the run's public outputs; private decisions go into `ctx.task_run.data`.
        """
        return None

    def resolve_nexts(self, view: FlowableView) -> list[TaskRun]:
        raise NotImplementedError

    def resolve_state(self, view: FlowableView) -> State | None:
        raise NotImplementedError

    def on_timer(self, run: TaskRun, kind: str) -> State:
        """A timer this task asked for (`view.set_timer`) is due; returns the run's new state."""
        raise NotImplementedError

    def on_resume(self, run: TaskRun, inputs: dict[str, Any] | None = None) -> State:
        """A user (or a Resume task, with its `inputs`) resumed the paused execution; returns the run's new state."""
        return State.RUNNING


class ExecutableTask(Task):
    """A task that starts other executions (subflows) and ends from what they become."""

    is_executable = True

    def subflow_requests(self, ctx: RunContext) -> Iterable[dict[str, Any]]:
        """One request per child (may be a generator: 100,000 children need not be 100,000 requests in memory):
        rendered `namespace`, `flowId`, `revision`, `inputs`, `labels`, `inheritLabels`, and `triggerVariables`
        added to the child's `trigger.*`."""
        raise NotImplementedError

    def subflows_started(self, run: TaskRun, child_ids: list[str]) -> State | None:
        """The children exist (these ids); a final state now (e.g. `wait: false`), or None to wait for them."""
        raise NotImplementedError

    def subflow_ended(
        self, run: TaskRun, child: Execution, ctx: Callable[[], RunContext], child_ctx: Callable[[], RunContext]
    ) -> State | None:
        """One child ended: record it on the run; the run's final state once it is done, else None. The run's
        context and the child's are made when first asked for: most ends need neither (ForEachItem counts)."""
        raise NotImplementedError


class Killed(Exception):
    """Raised inside a worker when the task run was asked to stop (kill or timeout)."""


# An edit of the execution's `vars` (a deep copy the runner hands in); raises TaskError to fail the task.
VariablesEdit = Callable[[dict[str, Any]], None]


@dataclass
class ExecutionUpdate:
    """What a task asks of its own execution (Kestra's `ExecutionUpdatableTask`). The task only records it;
    the runner applies it when it takes the task's successful result, in the transaction that ends the run."""

    labels: list[tuple[str, str]] = field(default_factory=list)
    variables: list[VariablesEdit] = field(default_factory=list)
    # Another PAUSED execution to resume, with onResume inputs.
    resume: tuple[str, dict[str, Any] | None] | None = None
    # The state the task run and the execution end in (Exit, Kill).
    end_state: State | None = None
    # Kill the execution; the value says whether its subflow executions are killed too.
    kill: bool | None = None

    def __bool__(self) -> bool:
        return bool(self.labels or self.variables or self.resume or self.end_state or self.kill is not None)


@dataclass(frozen=True)
class FlowSource:
    """A deployed flow as a task sees it (Kestra's `FlowWithSource`): where it lives, its revision, its YAML."""

    namespace: str
    id: str
    revision: int
    source: str


class ExecutionServices(Protocol):
    """What tasks about executions, logs, triggers and flows may ask of the engine; implemented over the store in
    `engine/services.py`, so no task touches the store itself."""

    def find_execution(self, execution_id: str) -> Execution: ...

    def paused_execution(self, namespace: str, flow_id: str) -> Execution | None: ...

    def count_executions(self, query: ExecutionQuery) -> list[tuple[str, str, int]]: ...

    def purge_executions(
        self, query: ExecutionQuery, executions: bool, logs: bool, storage: bool
    ) -> dict[str, int]: ...

    def fetch_logs(self, execution: Execution, min_level: str, task_ids: list[str] | None) -> list[LogEntry]: ...

    def purge_logs(self, query: ExecutionQuery, levels: list[str] | None) -> int: ...

    def toggle_trigger(self, namespace: str, flow_id: str, trigger_id: str, enabled: bool) -> None: ...

    def flows(self, namespace: str, children: bool) -> list[FlowSource]:
        """The latest revision of each flow of a namespace (and of its child namespaces with `children`)."""
        ...

    def deploy_flows(self, sources: list[tuple[str, str]], dry_run: bool) -> list[FlowSource]:
        """Validate (origin, YAML) flows, then store them all or none, as `kestractl flow deploy` does; each with
        the revision it has now (an unchanged source keeps its revision). `dry_run` validates and stores nothing."""
        ...

    def delete_flow(self, namespace: str, flow_id: str) -> None: ...


class RunContext:
    """Everything a task may use while it runs: rendering, logs, files, metrics, its directory."""

    def __init__(
        self,
        *,
        flow: Flow,
        execution: Execution,
        task: Task | None,
        task_run: TaskRun | None,
        variables: dict[str, Any],
        renderer: Callable[[Any, dict[str, Any]], Any],
        storage: Storage,
        log_sink: Callable[[LogEntry], None],
        stop: threading.Event | None = None,
        working_dir: Path | None = None,
        services: ExecutionServices | None = None,
    ) -> None:
        self.flow = flow
        self.execution = execution
        self.task = task
        self.task_run = task_run
        self.variables = variables
        self.storage = storage
        self._stop = stop
        self.metrics: list[dict[str, Any]] = []
        self.warning = False
        # Changes to this execution the task asks for; applied by the runner with a successful result.
        self.update = ExecutionUpdate()
        self._services = services
        self._renderer = renderer
        self._log_sink = log_sink
        self._working_dir = working_dir
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._min_level = level_rank(task.log_level) if task and task.log_level else 0

    @property
    def stop(self) -> threading.Event:
        """Set when the run is asked to stop (kill, timeout); made on first use, as most runs never look."""
        if self._stop is None:
            self._stop = threading.Event()
        return self._stop

    @stop.setter
    def stop(self, event: threading.Event) -> None:
        self._stop = event

    def render(self, value: Any, extra: dict[str, Any] | None = None) -> Any:
        """Render strings (recursively in lists and maps) with this run's variables."""
        variables = {**self.variables, **extra} if extra else self.variables
        return self._renderer(value, variables)

    def prop(self, name: str) -> Any:
        """The task's property `name` as its `Prop` declares it: rendered, the default when absent, converted to
        its kind (an integer property written `"{{ 2 + 3 }}"` gives 5); a wrong kind fails the task."""
        if self.task is None:
            raise TaskError(f"{name}: no task to read it from")
        try:
            return self.task.rendered(name, self.render)
        except ValueError as error:
            raise TaskError(str(error)) from None

    def render_flag(self, value: Any, default: bool) -> bool:
        """A boolean property (Kestra 1.x renders them): `true`, or an expression that gives it."""
        return is_true(self.render(value), default)

    def render_duration(self, value: Any, name: str) -> timedelta:
        """A duration property (Kestra 1.x renders them): ISO-8601 text, or an expression that gives one."""
        try:
            return parse_duration(self.render(value))
        except ValueError as exc:
            raise TaskError(f"{name}: {exc}") from None

    def log(self, level: str, message: str) -> None:
        if level_rank(level) < self._min_level:
            return
        tr = self.task_run
        self._log_sink(
            LogEntry(
                execution_id=self.execution.id,
                namespace=self.execution.namespace,
                flow_id=self.execution.flow_id,
                level="WARN" if level.upper() == "WARNING" else level.upper(),
                message=message,
                timestamp=utcnow(),
                task_id=tr.task_id if tr else None,
                task_run_id=tr.id if tr else None,
                attempt_number=len(tr.attempts) or 1 if tr else None,
            )
        )

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)

    def metric(self, name: str, kind: str, value: float, tags: dict[str, Any] | None = None) -> None:
        self.metrics.append({"name": name, "type": kind, "value": value, "tags": tags or {}})

    @property
    def services(self) -> ExecutionServices:
        """Other executions, logs and triggers (Count, Fetch, Purge*, Toggle …)."""
        if self._services is None:
            raise TaskError("this task needs the engine's execution services, which this context has not")
        return self._services

    def mark_warning(self) -> None:
        """The run succeeded, but should end WARNING (e.g. a script wrote to stderr)."""
        self.warning = True

    def working_directory(self) -> Path:
        """The task's own directory (shared by the children of a WorkingDirectory task)."""
        if self._working_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="kestractl-")
            self._working_dir = Path(self._tempdir.name)
        return self._working_dir

    def put_file(self, local: Path, name: str | None = None) -> str:
        """Copy a local file into internal storage under this task run; returns its `kestra:///` URI."""
        return self.storage.put(self._run_path(name or local.name), local)

    def output_file(self, name: str) -> tuple[Path, str]:
        """A file to write straight into internal storage under this task run: (local path, URI)."""
        uri = "kestra://" + self._run_path(name)
        path = self.storage.local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, uri

    def publish_files(self) -> None:
        """Store what the task wrote with `output_file` (for a storage other processes read: a bucket)."""
        if self.task_run is not None:
            self.storage.publish(self._run_path(""))

    def _run_path(self, name: str) -> str:
        if self.task_run is None:
            raise TaskError("files can only be stored from a running task")
        prefix = execution_prefix(self.execution.namespace, self.execution.flow_id, self.execution.id)
        return f"{prefix}/tasks/{slugify(self.task_run.task_id)}/{self.task_run.id}/{name}"

    def close(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
