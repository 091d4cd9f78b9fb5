"""The variables a `{{ expression }}` sees (Kestra's `RunVariables`): flow, execution, inputs,
outputs nested by Each values, tasks (states), taskrun, parent(s), labels, trigger, envs, and runtime functions."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from kestractl.config import ENCRYPTION_KEY_VARIABLES
from kestractl.inputs import input_defaults
from kestractl.model import Execution, Flow, TaskRun, iso


def ancestors(run: TaskRun, by_id: dict[str, TaskRun]) -> list[TaskRun]:
    """Parents of a run, farthest first (Kestra's `findParents`)."""
    out = []
    current = by_id.get(run.parent_task_run_id or "")
    while current is not None:
        out.append(current)
        current = by_id.get(current.parent_task_run_id or "")
    return list(reversed(out))


def value_path(run: TaskRun, by_id: dict[str, TaskRun]) -> list[str]:
    """The Each values from the outermost ancestor down to this run."""
    return [r.value for r in [*ancestors(run, by_id), run] if r.value is not None]


def task_outputs(runs: list[TaskRun], by_id: dict[str, TaskRun]) -> Any:
    """`outputs.<id>` from the runs of that task, in the list's order: a run outside Each loops is its outputs
    (the last one wins); runs under Each loops nest by ancestor values (`outputs.t.v1.v2`)."""
    result: dict[str, Any] = {}
    for run in runs:
        if run.outputs is None:
            continue
        path = value_path(run, by_id)
        if not path:
            result[run.task_id] = run.outputs
            continue
        node = result.setdefault(run.task_id, {})
        for value in path[:-1]:
            node = node.setdefault(value, {})
        if run.value is not None:
            node[path[-1]] = run.outputs
        else:
            node.setdefault(path[-1], {}).update(run.outputs)
    return result[runs[0].task_id] if result else None


def task_state(runs: list[TaskRun], by_id: dict[str, TaskRun]) -> Any:
    """`tasks.<id>.state`, and `tasks.<id>.<value>.state` for runs of an Each value (the run's own value, not
    its ancestors'); the latest run of the task wins."""
    entry: dict[str, Any] | None = None
    for run in runs:
        state = {"state": run.state.current.value}
        if run.value is None:
            entry = state
        else:
            entry = {} if entry is None else entry
            entry[run.value] = state
    return entry


# Builds one task's entry of a `ByTask` variable from that task's runs (None: the task has no entry).
EntryBuilder = Callable[[list[TaskRun], dict[str, TaskRun]], Any]


class ByTask(Mapping[str, Any]):
    """A variable keyed by task id (`outputs`, `tasks`), each entry built from that task's runs on first use: a
    task's context must not cost more because many task runs came before it, and a template reads one or two
    entries. Read on the thread that made it, while the execution does not change (see `snapshot`)."""

    def __init__(self, execution: Execution, build: EntryBuilder, has_entry: Callable[[TaskRun], bool]) -> None:
        self._execution = execution
        self._build = build
        self._has_entry = has_entry
        self._known: dict[str, Any] = {}

    def __getitem__(self, task_id: str) -> Any:
        if task_id not in self._known:
            runs = self._execution.runs_of_task(task_id)
            self._known[task_id] = self._build(runs, self._execution.runs_by_id()) if runs else None
        value = self._known[task_id]
        if value is None:
            raise KeyError(task_id)
        return value

    def __iter__(self) -> Iterator[str]:
        """Task ids in the order their first entry appears (a scan: only templates listing the map pay it)."""
        return iter({r.task_id: None for r in self._execution.task_runs if self._has_entry(r)})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def snapshot(variables: dict[str, Any]) -> dict[str, Any]:
    """The variables of a context handed to a worker thread, with the maps built on first use built now: the
    worker sees the execution as it was when its task was handed over (as Kestra's WorkerTask does), and never
    reads runs the executor's thread is changing."""
    return {k: dict(v) if isinstance(v, ByTask) else v for k, v in variables.items()}


def parents_of(run: TaskRun, by_id: dict[str, TaskRun]) -> list[dict[str, Any]]:
    """Closest first; only ancestors with a value or outputs appear (Kestra's `parents`)."""
    out = []
    for parent in reversed(ancestors(run, by_id)):
        entry: dict[str, Any] = {}
        if parent.value is not None:
            entry["taskrun"] = {"value": parent.value}
        if parent.outputs:
            entry["outputs"] = parent.outputs
        if entry:
            out.append(entry)
    return out


@lru_cache(maxsize=1)
def envs() -> dict[str, str]:
    """`KESTRA_FOO=1` is `envs.foo`; read once per process (the environment does not change under us).
    The encryption key (`KESTRA_ENCRYPTION_SECRET_KEY`) is configuration, not a variable a flow may print."""
    names = [k for k in os.environ if k.startswith("KESTRA_") and k not in ENCRYPTION_KEY_VARIABLES]
    return {k[len("KESTRA_") :].lower(): os.environ[k] for k in names}


def build_variables(
    flow: Flow,
    execution: Execution,
    task: Any | None = None,
    run: TaskRun | None = None,
    functions: dict[str, Callable[..., Any]] | None = None,
) -> dict[str, Any]:
    by_id = execution.runs_by_id()
    variables: dict[str, Any] = {
        "flow": {
            "id": flow.id,
            "namespace": flow.namespace,
            "revision": execution.flow_revision,
            "tenantId": None,
        },
        "execution": {
            "id": execution.id,
            "startDate": iso(execution.state.start_date),
            "originalId": execution.original_id or execution.id,
            "state": (execution.ending or execution.state.current).value,
        },
        "inputs": {**input_defaults(flow.inputs, execution.inputs), **execution.secrets},
        "outputs": ByTask(execution, task_outputs, lambda run: run.outputs is not None),
        "tasks": ByTask(execution, task_state, lambda run: True),
        "vars": flow.variables if execution.variables is None else execution.variables,
        "labels": execution.labels_map(),
        "envs": envs(),
        "globals": {},
    }
    if execution.trigger:
        variables["trigger"] = execution.trigger.get("variables") or {}
        if execution.trigger.get("type", "").endswith("Schedule"):
            variables["schedule"] = variables["trigger"]
    if task is not None:
        variables["task"] = {"id": task.id, "type": task.type}
    if run is not None:
        variables["taskrun"] = {
            "id": run.id,
            "startDate": iso(run.state.start_date),
            "attemptsCount": max(0, len(run.attempts) - 1),
            "parentId": run.parent_task_run_id,
            "value": run.value,
            "iteration": run.iteration,
        }
        family = parents_of(run, by_id)
        variables["parents"] = family
        if family:
            variables["parent"] = family[0]
    variables.update(functions or {})
    return variables
