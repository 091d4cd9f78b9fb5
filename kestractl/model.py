"""Kestra's domain objects as plain dataclasses: flows, executions, task runs, logs. No I/O.

Serialisation follows Kestra's API shapes (`to_api`) because the CLI's `--json`, the HTTP API
and the tests all read the same document.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import methodcaller
from typing import Any

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# A version-7 UUID (RFC 9562): the Unix time in milliseconds in its first 48 bits, then its version (7) and variant
# (0b10) among 74 random bits.
_UUID_V7 = (0x7000 << 64) | (0x8000 << 48)
_RANDOM_V7 = (1 << 80) - 1 & ~((0xF000 << 64) | (0xC000 << 48))


# Every two-digit base-62 number, so that an id takes half as many divisions.
_BASE62_PAIRS = [a + b for a in _BASE62 for b in _BASE62]


def new_id() -> str:
    """A Kestra-style FriendlyId: a UUID in base 62 (21 characters). Kestra's are random (version 4); these are
    time-ordered (version 7), so the rows of executions and task runs created together sit together in the store's
    indexes (10,000 ForEachItem children took 11% longer with random ids: each wrote a random page of two indexes)."""
    n = time.time_ns() // 1_000_000 << 80 | int.from_bytes(os.urandom(10)) & _RANDOM_V7 | _UUID_V7
    out = []
    while n:
        n, r = divmod(n, 3844)
        out.append(_BASE62_PAIRS[r])
    return "".join(reversed(out)).lstrip("0") or "0"


def utcnow() -> datetime:
    return datetime.now(UTC)


class RecentTexts(dict[Any, str]):
    """The texts of recently written values (dates), in two generations: a text asked for again joins the new one,
    and a full new one becomes the old one (the old one dropped). The dates of the executions being driven stay
    (1,000 children at once, five dates each) while older ones go. `texts[key]` is one dict lookup when the text is
    in the new generation; `text_of` makes it otherwise. Texts are pure functions of their keys: a lost race between
    threads only costs a formatting."""

    def __init__(self, size: int, text_of: Callable[[Any], str]) -> None:
        super().__init__()
        self.size = size
        self._text_of = text_of
        self._old: dict[Any, str] = {}

    def __missing__(self, key: Any) -> str:
        text = self._old.get(key)
        if text is None:
            text = self._text_of(key)
        if len(self) >= self.size:
            self._old = dict(self)
            self.clear()
        self[key] = text
        return text


def _utc_text(dt: datetime) -> str:
    return (dt if dt.tzinfo is UTC else dt.astimezone(UTC)).isoformat(timespec="milliseconds")[:-6] + "Z"


# The full text of an instant (`isoformat`, as stored rows write their dates), asked for again and again (a child's
# dates in each save of its row, in its contexts, in its logs): kept by instant, as equal aware datetimes are the
# same instant. Kestra's shorter text (`iso`) is cut from it: one text made per instant, not one per form.
_TEXTS = RecentTexts(8192, methodcaller("isoformat"))


def instant_text(dt: datetime) -> str:
    """The instant at full precision, in the zone it names (`datetime.isoformat`)."""
    # Another zone may name the same instant, and prints it otherwise.
    return _TEXTS[dt] if dt.tzinfo is UTC else dt.isoformat()


def iso(dt: datetime | None) -> str | None:
    """Instant as Kestra prints it: UTC, milliseconds, `Z`."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:  # local time (what it means depends on the zone of the moment), or another zone
        return _utc_text(dt)
    text = _TEXTS[dt]  # `2026-12-02T08:07:32.451664+00:00`, without the fraction when it is 0
    return f"{text[:23]}Z" if dt.microsecond else f"{text[:19]}.000Z"


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_duration(delta: timedelta) -> str:
    """ISO-8601 duration the way Java's `Duration.toString()` writes it (`PT1.2S`)."""
    total = delta.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if seconds or out == "PT":
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        out += f"{text}S"
    return sign + out


class State(str, Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    QUEUED = "QUEUED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"

    def is_terminated(self) -> bool:
        return self in TERMINATED_STATES

    def is_failed(self) -> bool:
        return self in FAILED_STATES

    def is_created(self) -> bool:
        return self in (State.CREATED, State.RESTARTED)

    def is_running(self) -> bool:
        return self in (State.RUNNING, State.KILLING)


TERMINATED_STATES = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED, State.SKIPPED}
)
FAILED_STATES = frozenset({State.FAILED, State.KILLED, State.CANCELLED})

# Worst first: the state a list of finished runs adds up to (Kestra's `guessFinalState`).
_SEVERITY = [State.KILLED, State.FAILED, State.WARNING, State.PAUSED]


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Kestra's `MapUtils.deepMerge`: nested maps merge, any other value from `update` wins (pluginDefaults,
    SetVariables, KV Put, the State store)."""
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        merged[key] = deep_merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return merged


def worst_state(states: list[State]) -> State:
    for candidate in _SEVERITY:
        if candidate in states:
            return candidate
    return State.SUCCESS


@dataclass
class StateInfo:
    """A state and the history of how it got there (one entry per change)."""

    current: State = State.CREATED
    histories: list[tuple[State, datetime]] = field(default_factory=list)

    @classmethod
    def new(cls, state: State = State.CREATED, at: datetime | None = None) -> StateInfo:
        return cls(state, [(state, at or utcnow())])

    def moved(self, state: State, at: datetime | None = None) -> bool:
        """Move to `state`; a move to the current state is a no-op (returns False)."""
        if state == self.current and self.histories:
            return False
        self.current = state
        self.histories.append((state, at or utcnow()))
        return True

    @property
    def start_date(self) -> datetime | None:
        return self.histories[0][1] if self.histories else None

    @property
    def end_date(self) -> datetime | None:
        if self.current.is_terminated() or self.current == State.PAUSED:
            return self.histories[-1][1]
        return None

    def to_api(self) -> dict[str, Any]:
        start, end = self.start_date, self.end_date
        duration = ((end or utcnow()) - start) if start else timedelta(0)
        return {
            "current": self.current.value,
            "histories": [{"state": s.value, "date": iso(d)} for s, d in self.histories],
            "startDate": iso(start),
            "endDate": iso(end),
            "duration": iso_duration(duration),
        }

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> StateInfo:
        hist = [(State(h["state"]), parse_iso(h["date"]) or utcnow()) for h in data.get("histories", [])]
        return cls(State(data["current"]), hist)


@dataclass
class Input:
    """A flow input declaration; type-specific keys (`min`, `values`, `itemType` …) stay in `props`."""

    id: str
    type: str
    required: bool = True
    defaults: Any = None
    description: str | None = None
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class Output:
    """A flow output: rendered when the execution ends, then typed like an input."""

    id: str
    type: str
    value: Any
    description: str | None = None


@dataclass
class Flow:
    id: str
    namespace: str
    tasks: list[Any]
    revision: int = 1
    description: str | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    # Kestra 1.x: tasks run after the main ones (and their errors) whatever happened, and tasks run once the
    # execution's state is decided, which they see as `execution.state` and cannot change.
    finally_: list[Any] = field(default_factory=list)
    after_execution: list[Any] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    disabled: bool = False
    triggers: list[dict[str, Any]] = field(default_factory=list)
    retry: dict[str, Any] | None = None
    # Kestra's `concurrency`: {limit, behavior QUEUE | CANCEL | FAIL} over the flow's running executions.
    concurrency: dict[str, Any] | None = None
    # Kestra's `sla` list: validated, not enforced here (each execution says so in one WARN line).
    sla: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @property
    def uid(self) -> str:
        return f"{self.namespace}.{self.id}"

    @functools.cached_property
    def tasks_by_id(self) -> dict[str, Any]:
        """Every task of the flow (errors and nested ones included) by id; one map for all its executions."""
        lists = [*self.tasks, *self.errors, *self.finally_, *self.after_execution]
        return {t.id: t for top in lists for t in top.walk()}


@dataclass
class Attempt:
    state: StateInfo = field(default_factory=StateInfo.new)
    # The WORKER service instance that ran it (Kestra's `workerId`); None: run in the executor's process.
    worker_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {"state": self.state.to_api()} | ({"workerId": self.worker_id} if self.worker_id else {})

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Attempt:
        return cls(StateInfo.from_api(data["state"]), data.get("workerId"))


@dataclass
class TaskRun:
    id: str
    execution_id: str
    task_id: str
    parent_task_run_id: str | None = None
    value: str | None = None
    iteration: int | None = None
    state: StateInfo = field(default_factory=StateInfo.new)
    attempts: list[Attempt] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    # Private to the engine (never in the API): a flowable's resolved decision, e.g. ForEach values.
    data: dict[str, Any] = field(default_factory=dict)

    def to_api(self, execution: Execution) -> dict[str, Any]:
        return {
            "id": self.id,
            "executionId": self.execution_id,
            "namespace": execution.namespace,
            "flowId": execution.flow_id,
            "taskId": self.task_id,
            "parentTaskRunId": self.parent_task_run_id,
            "value": self.value,
            "iteration": self.iteration,
            "attempts": [a.to_api() for a in self.attempts] or None,
            "outputs": self.outputs,
            "state": self.state.to_api(),
        }

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> TaskRun:
        """A task run as a server sent it (the CLI against a remote server)."""
        return cls(
            data["id"],
            data["executionId"],
            data["taskId"],
            data.get("parentTaskRunId"),
            data.get("value"),
            data.get("iteration"),
            StateInfo.from_api(data["state"]),
            [Attempt.from_api(a) for a in data.get("attempts") or []],
            data.get("outputs"),
        )


@dataclass
class Execution:
    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    inputs: dict[str, Any] = field(default_factory=dict)
    labels: list[tuple[str, str]] = field(default_factory=list)
    state: StateInfo = field(default_factory=StateInfo.new)
    task_runs: list[TaskRun] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    parent_id: str | None = None
    original_id: str | None = None
    attempt_number: int = 1
    # The parent's task run waiting on this execution (Subflow / ForEachItem), if any.
    parent_task_run_id: str | None = None
    scheduled_at: datetime | None = None
    # SECRET input values: rendered inside tasks, shown as `******` everywhere else.
    secrets: dict[str, Any] = field(default_factory=dict)
    # The execution's own `vars` once a task changed them (SetVariables …); None: the flow's `variables`.
    variables: dict[str, Any] | None = None
    # The state the execution ends in, decided before its `afterExecution` tasks run (they see it).
    ending: State | None = None

    # Task runs by id and by task id; rebuilt when the list's length or last run changed (runs are appended, a
    # restart removes).
    _by_id: dict[str, TaskRun] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_task: dict[str, list[TaskRun]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def runs_by_id(self) -> dict[str, TaskRun]:
        """Every task run by id; every task's context walks its ancestors, so this must not cost a scan."""
        runs, by_id, known = self.task_runs, self._by_id, len(self._by_id)
        if known == len(runs) and (not runs or by_id.get(runs[-1].id) is runs[-1]):
            return by_id
        if 0 < known < len(runs) and by_id.get(runs[known - 1].id) is runs[known - 1]:  # only appended since
            self._index(runs[known:])
        else:
            self._by_id, self._by_task = {}, {}
            self._index(runs)
        return self._by_id

    def runs_of_task(self, task_id: str) -> list[TaskRun]:
        """The runs of one task, in the list's order: what `outputs.<id>` is made of, without a scan."""
        self.runs_by_id()
        return self._by_task.get(task_id, [])

    def _index(self, runs: list[TaskRun]) -> None:
        for run in runs:
            self._by_id[run.id] = run
            self._by_task.setdefault(run.task_id, []).append(run)

    def run(self, task_run_id: str) -> TaskRun:
        return self.runs_by_id()[task_run_id]

    def reference(self) -> dict[str, Any]:
        """How `trigger.*` names this execution in the executions it starts (Subflow, Flow trigger)."""
        return {
            "executionId": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
        }

    def labels_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.labels:
            out.setdefault(k, v)
        return out

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
            "labels": [{"key": k, "value": v} for k, v in self.labels],
            "state": self.state.to_api(),
            "taskRunList": [tr.to_api(self) for tr in self.task_runs] or None,
            "parentId": self.parent_id,
            "originalId": self.original_id or self.id,
            "trigger": self.trigger,
            "metadata": {
                "attemptNumber": self.attempt_number,
                "originalCreatedDate": iso(self.state.start_date),
            },
            "scheduleDate": iso(self.scheduled_at),
            "deleted": False,
        }
        if self.inputs:
            data["inputs"] = self.inputs
        if self.outputs:
            data["outputs"] = self.outputs
        if self.variables is not None:
            data["variables"] = self.variables
        return data

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Execution:
        """An execution as a server sent it, so remote commands print what local ones print."""
        return cls(
            data["id"],
            data["namespace"],
            data["flowId"],
            data.get("flowRevision") or 1,
            inputs=data.get("inputs") or {},
            labels=[(str(label["key"]), str(label.get("value"))) for label in data.get("labels") or []],
            state=StateInfo.from_api(data["state"]),
            task_runs=[TaskRun.from_api(run) for run in data.get("taskRunList") or []],
            outputs=data.get("outputs"),
            trigger=data.get("trigger"),
            parent_id=data.get("parentId"),
            original_id=data.get("originalId"),
            attempt_number=(data.get("metadata") or {}).get("attemptNumber") or 1,
            scheduled_at=parse_iso(data.get("scheduleDate")),
            variables=data.get("variables"),
        )


LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


def label_pairs(raw: Any) -> list[tuple[str, Any]] | None:
    """Labels as Kestra accepts them, a map or a list of `{key, value}`, as (key, value) pairs; None for
    any other shape. Flows, Subflow and ForEachItem tasks and triggers all declare labels this way."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [(str(k), v) for k, v in raw.items()]
    if isinstance(raw, list) and all(isinstance(i, dict) and "key" in i for i in raw):
        return [(str(i["key"]), i.get("value")) for i in raw]
    return None


def label_text(value: Any) -> str:
    """A label value as Java prints it (`true`, not `True`; nothing for null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def level_rank(level: str) -> int:
    """Position of a log level, WARNING accepted for WARN; unknown levels count as INFO."""
    name = "WARN" if level.upper() == "WARNING" else level.upper()
    return LOG_LEVELS.index(name) if name in LOG_LEVELS else 2


@dataclass
class LogEntry:
    execution_id: str
    namespace: str
    flow_id: str
    level: str
    message: str
    timestamp: datetime = field(default_factory=utcnow)
    task_id: str | None = None
    task_run_id: str | None = None
    attempt_number: int | None = None
    trigger_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "taskId": self.task_id,
            "executionId": self.execution_id,
            "taskRunId": self.task_run_id,
            "attemptNumber": self.attempt_number,
            "triggerId": self.trigger_id,
            "timestamp": iso(self.timestamp),
            "level": self.level,
            "message": self.message,
        }

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> LogEntry:
        return cls(
            data["executionId"],
            data["namespace"],
            data["flowId"],
            data["level"],
            data.get("message") or "",
            parse_iso(data.get("timestamp")) or utcnow(),
            data.get("taskId"),
            data.get("taskRunId"),
            data.get("attemptNumber"),
            data.get("triggerId"),
        )


@dataclass
class ExecutionQuery:
    """Which executions a task means (Count, PurgeExecutions, PurgeLogs); every field is optional."""

    namespace: str | None = None
    flow_id: str | None = None
    flows: list[tuple[str, str]] | None = None
    namespaces: list[str] | None = None
    states: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
