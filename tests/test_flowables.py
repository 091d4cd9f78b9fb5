"""Kestra's execution semantics on our own flows: errors branches, Each variants, WorkingDirectory,
Pause timers, subflows without waiting, the task-run tree, and killing a running execution."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import FLOWS, Cli, runs, state


def test_local_errors_run_then_the_failure_reaches_the_flow_errors(cli: Cli) -> None:
    cli.deploy("local-errors.yaml")
    code, execution = cli.execute("tests", "local-errors")
    assert code == 1 and state(execution) == "FAILED"
    assert [r["taskId"] for r in execution["taskRunList"]] == [
        "guarded",
        "boom",
        "local-handler",
        "global-handler",
    ]
    assert state(runs(execution, "guarded")[0]) == "FAILED"
    assert runs(execution, "global-handler")[0]["outputs"]["value"] == "global boom"


def test_each_parallel_runs_values_at_once_and_foreach_respects_its_limit(cli: Cli) -> None:
    cli.deploy("each-parallel.yaml")
    started = time.monotonic()
    code, execution = cli.execute("tests", "each-parallel")
    assert code == 0, execution
    assert time.monotonic() - started < 1.4  # three 0.5 s sleeps side by side
    assert sorted(r["value"] for r in runs(execution, "nap")) == ["a", "b", "c"]
    assert sorted(r["outputs"]["value"] for r in runs(execution, "step2")) == ["1-2", "2-2", "3-2", "4-2"]
    assert sorted(r["value"] for r in runs(execution, "obj")) == ['{"k":1}', '{"k":2}']
    assert sorted(r["outputs"]["value"] for r in runs(execution, "obj")) == ["1", "2"]


def test_foreach_concurrency_limit_keeps_at_most_two_values_running() -> None:
    from kestractl.model import Execution, State, StateInfo, TaskRun
    from kestractl.parser import parse_flow
    from kestractl.tasks.flowable import FlowableView, RunIndex

    flow = parse_flow((FLOWS / "each-parallel.yaml").read_text())
    loop = flow.tasks[1]
    execution = Execution("e", "tests", "each-parallel", 1)
    parent = TaskRun("p", "e", "limited", state=StateInfo.new(State.RUNNING), data={"values": ["1", "2", "3", "4"]})
    execution.task_runs.append(parent)
    first = loop.resolve_nexts(FlowableView(execution, parent, RunIndex(execution)))
    assert [(r.task_id, r.value) for r in first] == [("step1", "1"), ("step1", "2")]
    execution.task_runs += first
    first[0].state.moved(State.SUCCESS)
    second = loop.resolve_nexts(FlowableView(execution, parent, RunIndex(execution)))
    assert [(r.task_id, r.value) for r in second] == [("step2", "1")]


def test_working_directory_children_share_files(cli: Cli) -> None:
    cli.deploy("workdir.yaml")
    code, execution = cli.execute("tests", "workdir")
    assert code == 0, execution
    assert runs(execution, "read")[0]["outputs"]["vars"] == {"note": "from the first task"}


def test_pause_delay_resumes_by_itself_and_timeout_fails(cli: Cli) -> None:
    cli.deploy("pause-timers.yaml")
    code, delayed = cli.execute("tests", "pause-timers", "--input", "mode=delay")
    assert code == 0 and state(delayed) == "SUCCESS"
    history = [h["state"] for h in runs(delayed, "short-delay")[0]["state"]["histories"]]
    assert history == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    code, timed_out = cli.execute("tests", "pause-timers", "--input", "mode=timeout")
    assert code == 1 and state(timed_out) == "FAILED"
    assert state(runs(timed_out, "short-timeout")[0]) == "FAILED" and not runs(timed_out, "end")


def test_subflow_without_wait_succeeds_at_once_and_passes_labels(cli: Cli) -> None:
    cli.deploy("child.yaml", "no-wait.yaml")
    code, execution = cli.execute("tests", "no-wait")
    assert code == 0
    fire = runs(execution, "fire")[0]
    assert state(fire) == "SUCCESS" and len(fire["attempts"]) == 1
    child = json.loads(cli("executions", "show", fire["outputs"]["executionId"], "--json").stdout)
    labels = {label["key"]: label["value"] for label in child["labels"]}
    assert labels == {
        "owner": "child",
        "team": "parents",
        "extra": "no-wait",
        "system.correlationId": execution["id"],
    }
    assert child["trigger"]["variables"]["executionId"] == execution["id"]
    assert state(child) == "SUCCESS"


def test_show_draws_the_task_run_tree(cli: Cli) -> None:
    cli.deploy("each-parallel.yaml")
    _, execution = cli.execute("tests", "each-parallel")
    lines = cli("executions", "show", execution["id"]).stdout.splitlines()
    fan = next(line for line in lines if "fan" in line)
    nap = next(line for line in lines if "nap [a]" in line)
    assert len(nap) - len(nap.lstrip()) > len(fan) - len(fan.lstrip())
    assert "SUCCESS" in nap


def test_kill_stops_a_running_execution_and_its_processes(tmp_path: Path) -> None:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path / "home"), NO_COLOR="1")
    exe = str(Path(sys.executable).parent / "kestractl")
    subprocess.run([exe, "flow", "deploy", str(FLOWS / "kill-me.yaml")], env=env, check=True, capture_output=True)
    running = subprocess.Popen(
        [exe, "execute", "tests", "kill-me", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    execution_id = _wait_for_running(exe, env)
    started = time.monotonic()
    killed = subprocess.run([exe, "executions", "kill", execution_id], env=env, capture_output=True, text=True)
    assert killed.returncode == 0, killed.stderr
    out, _ = running.communicate(timeout=20)
    assert time.monotonic() - started < 10
    execution = json.loads(out)
    assert running.returncode == 1 and state(execution) == "KILLED"
    assert {state(r) for r in execution["taskRunList"]} == {"KILLED"}
    assert not runs(execution, "never")
    leftover = subprocess.run(["pgrep", "-f", "sleep 59.731"], capture_output=True, text=True).stdout.split()
    for pid in leftover:
        os.kill(int(pid), signal.SIGKILL)
    assert leftover == []


def _wait_for_running(exe: str, env: dict[str, str]) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listed = subprocess.run([exe, "executions", "list", "--json"], env=env, capture_output=True, text=True)
        found = json.loads(listed.stdout or "[]")
        if found and any(
            state(r) == "RUNNING" and r["taskId"] == "long-shell" for r in found[0].get("taskRunList") or []
        ):
            time.sleep(0.3)
            return str(found[0]["id"])
        time.sleep(0.1)
    raise AssertionError("the execution never started running")


def test_allow_failure_wrapper_ends_warning_and_keeps_outer_errors_out(cli: Cli) -> None:
    cli.deploy("wrapper.yaml")
    code, execution = cli.execute("tests", "wrapper")
    assert code == 0 and state(execution) == "WARNING"
    assert state(runs(execution, "wrapped")[0]) == "WARNING"
    assert state(runs(execution, "wrapper-handler")[0]) == "SUCCESS"
    assert runs(execution, "continues") and not runs(execution, "never-global")


def test_values_read_like_json_switch_keys_like_java_and_parallel_limit(cli: Cli) -> None:
    cli.deploy("values.yaml")
    started = time.monotonic()
    code, execution = cli.execute("tests", "values")
    assert code == 0, execution
    assert [r["value"] for r in runs(execution, "seen")] == ["true", "[1,2]", "1", "a"]
    assert runs(execution, "yes-case") and not runs(execution, "no-case")
    assert time.monotonic() - started >= 0.4  # concurrent: 1 runs the two sleeps one after the other
    _, other = cli.execute("tests", "values", "--input", "flag=false")
    assert runs(other, "no-case")


def test_hundreds_of_subflows_failing_at_once_do_not_overflow(cli: Cli) -> None:
    cli.deploy("many-subflows.yaml")
    code, execution = cli.execute("tests", "many-subflows")
    assert code == 0 and state(execution) == "WARNING"
    assert len(runs(execution, "missing")) == 700  # Pebble ranges include their end
    assert {state(r) for r in runs(execution, "missing")} == {"WARNING"}


def test_resuming_a_paused_child_wakes_its_parent(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "id: paused-child\nnamespace: tests\ntasks:\n  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n"
    )
    (tmp_path / "parent.yaml").write_text(
        "id: paused-parent\nnamespace: tests\ntasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: tests\n    flowId: paused-child\n  - id: after\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: done\n"
    )
    cli("flow", "deploy", str(tmp_path))
    _, parent = cli.execute("tests", "paused-parent")
    child_id = runs(parent, "call")[0]["outputs"] if runs(parent, "call")[0]["outputs"] else None
    assert child_id is None and state(parent) == "RUNNING"
    children = json.loads(cli("executions", "list", "--flow", "paused-child", "--json").stdout)
    assert state(children[0]) == "PAUSED"
    assert cli("executions", "resume", children[0]["id"]).exit_code == 0
    finished = json.loads(cli("executions", "show", parent["id"], "--json").stdout)
    assert state(finished) == "SUCCESS" and runs(finished, "after")


def test_bad_settings_are_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(
        "id: bad\nnamespace: tests\nvariables: 5\nretry: 3\ntasks:\n"
        "  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: abc\n    tasks:\n"
        "      - id: s\n        type: io.kestra.plugin.core.flow.Subflow\n        namespace: tests\n"
        "        flowId: x\n        labels: 7\n"
        "outputs:\n  - id: o\n    type: INTX\n    value: '1'\n"
    )
    result = cli("flow", "validate", str(flow))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    for expected in (
        "variables: must be a map",
        "retry.type",
        "concurrent: expected an integer, not `abc`",
        "labels: must be a map",
        "outputs[0].type: unknown output type `INTX`",
    ):
        assert expected in result.stderr, expected


def test_cli_refuses_reserved_labels_unknown_levels_and_states(cli: Cli) -> None:
    cli.deploy("hello.yaml")
    assert cli("execute", "tests", "hello", "--label", "system.correlationId=x").exit_code == 2
    code, execution = cli.execute("tests", "hello", "--label", "team=data", "--revision", "1")
    assert {"key": "team", "value": "data"} in execution["labels"] and execution["flowRevision"] == 1
    assert cli("executions", "logs", execution["id"], "--level", "LOUD").exit_code == 2
    assert cli("executions", "list", "--state", "DONE").exit_code == 2
    assert "revision 0" in cli("flow", "show", "tests", "hello", "--revision", "0").stderr


def test_each_result_is_decided_on_before_the_next_so_a_freed_slot_is_used(cli: Cli) -> None:
    cli.deploy("parallel-slot-freed.yaml")
    for _ in range(3):  # the order is deterministic: the same every time
        code, execution = cli.execute("tests", "parallel-slot-freed")
        assert code == 1 and state(execution) == "FAILED"
        assert [state(runs(execution, t)[0]) for t in ("a", "b", "c")] == ["SUCCESS", "FAILED", "SUCCESS"]
