"""A task's cost must not grow with the runs before it: counted as work (task-run attributes the engine reads
per task), not timed, so the test holds on a busy machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

import kestractl.tasks.flowable
from kestractl.engine.runner import Runner
from kestractl.engine.variables import ByTask, task_outputs
from kestractl.errors import ExpressionError
from kestractl.expressions import render, render_typed
from kestractl.model import Execution, State, TaskRun
from kestractl.storage import LocalStorage
from kestractl.store import open_store

RETURN = "  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n"
RETURN += '    format: "{{{{ outputs.t{p}.value | length }}}} {{{{ task.id }}}}"\n'
LOG = "  - id: l{i}\n    type: io.kestra.plugin.core.log.Log\n"
LOG += '    message: "{{{{ taskrun.id }}}} {{{{ tasks.l0.state }}}}"\n'


class CountedRun(TaskRun):
    """A task run that counts every read of its fields, whoever reads them."""

    reads: ClassVar[int] = 0

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("__"):
            CountedRun.reads += 1
        return super().__getattribute__(name)


def chain_flow(count: int) -> str:
    """Return tasks each reading the previous one's output, then Log tasks reading the task states."""
    first = '  - id: t0\n    type: io.kestra.plugin.core.debug.Return\n    format: "x"\n'
    returns = "".join(RETURN.format(i=i, p=i - 1) for i in range(1, count))
    logs = "".join(LOG.format(i=i) for i in range(count))
    return f"id: chain\nnamespace: flat\ntasks:\n{first}{returns}{logs}"


def reads_per_task(home: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> float:
    store = open_store(home / "kestractl.db")
    store.save_flow("flat", "chain", chain_flow(count))
    runner = Runner(store, LocalStorage(home / "storage"))
    monkeypatch.setattr(kestractl.tasks.flowable, "TaskRun", CountedRun)
    CountedRun.reads = 0
    execution = runner.run(runner.create_execution(runner.flows.get("flat", "chain")).id)
    runner.close()
    assert execution.state.current == State.SUCCESS
    previous, last = (execution.task_runs[i].outputs or {} for i in (count - 2, count - 1))
    assert last["value"] == f"{len(previous['value'])} t{count - 1}"  # each read the one before
    return CountedRun.reads / (2 * count)


def test_a_task_reads_as_many_runs_after_500_tasks_as_after_50(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = reads_per_task(tmp_path / "small", 50, monkeypatch)
    large = reads_per_task(tmp_path / "large", 500, monkeypatch)
    assert large <= 1.1 * small, f"{small:.0f} run reads per task for 50 tasks, {large:.0f} for 500"


def lazy_outputs() -> ByTask:
    execution = Execution(id="e", namespace="flat", flow_id="f", flow_revision=1)
    execution.task_runs = [
        TaskRun(id="1", execution_id="e", task_id="a", outputs={"value": 1}),
        TaskRun(id="2", execution_id="e", task_id="b", outputs={"value": "x"}),
        TaskRun(id="3", execution_id="e", task_id="c"),
    ]
    return ByTask(execution, task_outputs, lambda run: run.outputs is not None)


@pytest.mark.parametrize(
    "template",
    [
        "{{ outputs | keys }} {{ outputs | values }} {{ outputs | length }} {{ outputs | json }} {{ outputs }}",
        "{{ outputs is empty }} {{ outputs.a is defined }} {{ outputs.c is defined }} {{ 'a' in outputs }}",
        "{% for k, v in outputs.items() %}{{ k }}={{ v.value }};{% endfor %} {{ outputs | first }}",
        "{{ outputs['b'].value }} {{ outputs.zz ?? 'none' }}",
        "{{ outputs.c.value }}",
    ],
)
def test_the_outputs_built_on_first_use_render_as_the_whole_map(template: str) -> None:
    def rendered(outputs: Any) -> str:
        try:
            return render(template, {"outputs": outputs})
        except ExpressionError as error:
            return error.message

    assert rendered(lazy_outputs()) == rendered(dict(lazy_outputs()))


def test_a_typed_render_of_the_outputs_is_a_plain_map_the_store_can_write() -> None:
    typed = render_typed("{{ outputs }}", {"outputs": lazy_outputs()})
    assert type(typed) is dict and typed == {"a": {"value": 1}, "b": {"value": "x"}}
