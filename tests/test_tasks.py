"""Core runnable tasks one by one, with a real RunContext, renderer and storage."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kestractl.engine.worker import run_attempt
from kestractl.errors import TaskError
from kestractl.expressions import render_value
from kestractl.model import Execution, Flow, LogEntry, State, TaskRun
from kestractl.storage import LocalStorage
from kestractl.tasks import registry
from kestractl.tasks.base import Killed, RunContext, Task


def make(spec: dict[str, Any]) -> Task:
    cls = registry.resolve(spec["type"])
    assert cls is not None and not cls.validate(spec), cls and cls.validate(spec)
    return cls(spec)


def context(task: Task, tmp_path: Path, logs: list[LogEntry], variables: dict[str, Any] | None = None) -> RunContext:
    execution = Execution("e", "dev", "f", 1)
    run = TaskRun("r", "e", task.id)
    return RunContext(
        flow=Flow("f", "dev", [task]),
        execution=execution,
        task=task,
        task_run=run,
        variables={"task": {"id": task.id}, **(variables or {})},
        renderer=render_value,
        storage=LocalStorage(tmp_path / "storage"),
        log_sink=logs.append,
    )


def test_log_renders_each_message_of_a_list_at_its_level(tmp_path: Path) -> None:
    logs: list[LogEntry] = []
    task = make(
        {
            "id": "l",
            "type": "io.kestra.core.tasks.log.Log",
            "message": ["a {{ task.id }}", "b"],
            "level": "WARN",
        }
    )
    assert task.run(context(task, tmp_path, logs)) is None  # type: ignore[attr-defined]
    assert [(e.level, e.message) for e in logs] == [("WARN", "a l"), ("WARN", "b")]


def test_log_level_filter_drops_lower_levels(tmp_path: Path) -> None:
    logs: list[LogEntry] = []
    task = make(
        {
            "id": "l",
            "type": "io.kestra.plugin.core.log.Log",
            "message": "m",
            "level": "DEBUG",
            "logLevel": "INFO",
        }
    )
    task.run(context(task, tmp_path, logs))  # type: ignore[attr-defined]
    assert logs == []


def test_return_and_output_values_render_their_outputs(tmp_path: Path) -> None:
    task = make({"id": "r", "type": "io.kestra.plugin.core.debug.Return", "format": "{{ 1 + 1 }}"})
    assert task.run(context(task, tmp_path, [])) == {"value": "2"}  # type: ignore[attr-defined]
    values = make(
        {
            "id": "v",
            "type": "io.kestra.plugin.core.output.OutputValues",
            "values": {"a": "{{ x }}", "b": ["{{ x }}!"]},
        }
    )
    out = values.run(context(values, tmp_path, [], {"x": "hi"}))  # type: ignore[attr-defined]
    assert out == {"values": {"a": "hi", "b": ["hi!"]}}


def test_fail_fails_with_its_message_only_when_the_condition_holds(tmp_path: Path) -> None:
    task = make(
        {
            "id": "f",
            "type": "io.kestra.core.tasks.executions.Fail",
            "condition": "{{ x == 'bad' }}",
            "errorMessage": "x was {{ x }}",
        }
    )
    assert task.run(context(task, tmp_path, [], {"x": "good"})) is None  # type: ignore[attr-defined]
    with pytest.raises(TaskError, match="x was bad"):
        task.run(context(task, tmp_path, [], {"x": "bad"}))  # type: ignore[attr-defined]


def test_sleep_waits_and_a_stop_interrupts_it(tmp_path: Path) -> None:
    task = make({"id": "s", "type": "io.kestra.plugin.core.flow.Sleep", "duration": "PT0.05S"})
    started = time.monotonic()
    task.run(context(task, tmp_path, []))  # type: ignore[attr-defined]
    assert time.monotonic() - started >= 0.05
    long = make({"id": "s", "type": "io.kestra.plugin.core.flow.Sleep", "duration": "PT30S"})
    ctx = context(long, tmp_path, [])
    threading.Timer(0.05, ctx.stop.set).start()
    with pytest.raises(Killed):
        long.run(ctx)  # type: ignore[attr-defined]


def test_worker_turns_a_timeout_into_a_failed_attempt_with_its_log(tmp_path: Path) -> None:
    logs: list[LogEntry] = []
    task = make({"id": "s", "type": "io.kestra.plugin.core.flow.Sleep", "duration": "PT30S", "timeout": "PT0.1S"})
    result = run_attempt(task, context(task, tmp_path, logs))  # type: ignore[arg-type]
    assert result.state == State.FAILED
    assert logs[-1].message == "Timeout after PT0.1S" and logs[-1].level == "ERROR"


def test_worker_turns_an_expression_error_into_a_failed_attempt(tmp_path: Path) -> None:
    logs: list[LogEntry] = []
    task = make({"id": "l", "type": "io.kestra.plugin.core.log.Log", "message": "{{ missing }}"})
    assert run_attempt(task, context(task, tmp_path, logs)).state == State.FAILED  # type: ignore[arg-type]
    assert "`{{ missing }}`" in logs[-1].message and "undefined" in logs[-1].message


def test_task_validators_name_the_field() -> None:
    log = registry.resolve("io.kestra.plugin.core.log.Log")
    sleep = registry.resolve("io.kestra.plugin.core.flow.Sleep")
    assert log is not None and sleep is not None
    assert log.validate({"id": "l", "type": "x", "message": "m", "level": "LOUD"})[0].startswith("level:")
    assert sleep.validate({"id": "s", "type": "x", "duration": "forever"})[0].startswith("duration:")


def test_the_index_names_the_module_of_every_registered_type() -> None:
    """`resolve` trusts the index: a type registered by a module the index does not name would not resolve."""
    stale = "kestractl/tasks/_index.py is stale: run `python -m kestractl.tasks.registry`"
    assert registry.INDEX.read_text() == registry.index_source(), stale
    for name, cls in registry.all_types().items():
        assert cls.__module__ == f"kestractl.tasks.{registry.MODULES[name]}", name


def test_resolving_a_type_imports_only_the_module_that_holds_it() -> None:
    code = (
        "import sys; from kestractl.tasks import registry\n"
        "assert registry.resolve('io.kestra.core.tasks.log.Log').__name__ == 'Log'\n"
        "print(*sorted(m for m in sys.modules if m.startswith('kestractl.tasks.')))\n"
        # An unknown name loads the installed plugins, and what they build on (script tasks for the CLI tools).
        "assert registry.resolve('io.kestra.plugin.core.nope') is None\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [f"kestractl.tasks.{name}" for name in ("_index", "base", "core", "properties", "registry")]
