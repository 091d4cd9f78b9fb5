"""The engine through real flows: flowables, outputs nesting, retries, timeouts, allowFailure, subflows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import Cli, runs, state

from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:  # noqa: F811
    """The engine on both stores: a SQLite file, then a PostgreSQL database."""
    return Cli(tmp_path / "home", store_url)


def test_nested_foreach_outputs_nest_by_value_and_current_each_output(cli: Cli) -> None:
    cli.deploy("flowables.yaml")
    code, execution = cli.execute("tests", "flowables")
    assert code == 0, execution
    assert state(execution) == "SUCCESS"
    pairs = sorted(r["outputs"]["value"] for r in runs(execution, "pair"))
    assert pairs == ["x1", "x2", "y1", "y2"]
    assert sorted(r["outputs"]["value"] for r in runs(execution, "again")) == ["x1!", "x2!", "y1!", "y2!"]
    assert {r["value"] for r in runs(execution, "inner")} == {"x", "y"}
    assert runs(execution, "case-b")[0]["outputs"]["value"] == "y2"
    assert runs(execution, "pick")[0]["outputs"] == {"value": "b", "defaults": False}
    assert runs(execution, "yes") and not runs(execution, "no")
    assert runs(execution, "second")[0]["outputs"]["value"] == "12"


def test_switch_defaults_and_if_else(cli: Cli) -> None:
    cli.deploy("flowables.yaml")
    _, execution = cli.execute("tests", "flowables", "--input", "choice=zzz")
    assert runs(execution, "fallback")[0]["outputs"]["value"] == "default"
    assert runs(execution, "pick")[0]["outputs"]["defaults"] is True
    assert runs(execution, "no") and not runs(execution, "yes")


def test_retry_adds_attempts_to_the_same_task_run_then_errors_run(cli: Cli) -> None:
    cli.deploy("retry.yaml")
    code, execution = cli.execute("tests", "retry")
    assert code == 1 and state(execution) == "FAILED"
    flaky = runs(execution, "flaky")[0]
    assert state(flaky) == "SUCCESS"
    assert [a["state"]["current"] for a in flaky["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert "RETRYING" in [h["state"] for h in flaky["state"]["histories"]]
    exhausted = runs(execution, "exhausted")[0]
    assert len(exhausted["attempts"]) == 2 and state(exhausted) == "FAILED"
    assert state(runs(execution, "handler")[0]) == "SUCCESS"


def test_timeout_kills_a_shell_task_and_fails_it(cli: Cli) -> None:
    cli.deploy("timeout.yaml")
    started = time.monotonic()
    code, execution = cli.execute("tests", "timeout")
    assert time.monotonic() - started < 5
    assert code == 1
    assert state(runs(execution, "slow")[0]) == "FAILED"
    assert not runs(execution, "never")
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "Timeout after PT0.5S" in logs


def test_allow_failure_run_if_and_disabled(cli: Cli) -> None:
    cli.deploy("allow-failure.yaml")
    code, execution = cli.execute("tests", "allow-failure")
    assert code == 0 and state(execution) == "WARNING"
    assert state(runs(execution, "broken")[0]) == "WARNING"
    assert state(runs(execution, "skipped")[0]) == "SKIPPED"
    assert runs(execution, "after")[0]["outputs"]["value"] == "still ran"
    assert not runs(execution, "off")


def test_parallel_branches_run_concurrently(cli: Cli) -> None:
    cli.deploy("parallel-sleep.yaml")
    started = time.monotonic()
    code, execution = cli.execute("tests", "parallel-sleep")
    elapsed = time.monotonic() - started
    assert code == 0 and state(execution) == "SUCCESS"
    assert elapsed < 1.8, f"two 1 s branches took {elapsed:.2f} s"


def test_shell_and_python_outputs_flow_into_expressions(cli: Cli) -> None:
    cli.deploy("shell.yaml")
    code, execution = cli.execute("tests", "shell", "--input", "name=kestra")
    assert code == 0, execution
    assert runs(execution, "sh")[0]["outputs"]["vars"] == {"greeted": "kestra"}
    assert runs(execution, "show")[0]["outputs"]["value"] == "kestra 6 0"
    assert "hello kestra" in cli("executions", "logs", execution["id"]).stdout


def test_subflow_outputs_and_failure_transmission(cli: Cli) -> None:
    cli.deploy("child.yaml", "parent.yaml")
    code, execution = cli.execute("tests", "parent", "--input", "n=4")
    assert code == 0, execution
    call = runs(execution, "call")[0]
    assert call["outputs"]["state"] == "SUCCESS" and call["outputs"]["outputs"] == {"doubled": 8}
    assert runs(execution, "report")[0]["outputs"]["value"] == "8"
    child = cli("executions", "show", call["outputs"]["executionId"], "--json")
    labels = {label["key"]: label["value"] for label in __import__("json").loads(child.stdout)["labels"]}
    assert labels["system.correlationId"] == execution["id"] and labels["owner"] == "child"
    code, failed = cli.execute("tests", "parent", "--input", "n=11")
    assert code == 1 and state(runs(failed, "call")[0]) == "FAILED"


def test_a_timeout_given_by_an_expression_is_rendered_when_the_task_starts(cli: Cli) -> None:
    cli.deploy("dynamic-timeout.yaml")
    code, execution = cli.execute("dev", "dynamic-timeout")
    assert code == 1 and execution["state"]["current"] == "FAILED"
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "Timeout after PT0.1S" in logs
    code, enough = cli.execute("dev", "dynamic-timeout", "--input", "limit=PT5S")
    assert code == 0, enough


def test_finally_runs_whatever_happened_and_after_execution_sees_the_final_state(cli: Cli) -> None:
    cli.deploy("finally.yaml")
    code, ok = cli.execute("dev", "finally")
    assert code == 0 and state(ok) == "SUCCESS"
    assert [r["taskId"] for r in ok["taskRunList"]] == ["work", "cleanup", "on_success", "on_failure", "broken"]
    assert runs(ok, "cleanup")[0]["outputs"]["value"] == "cleaned while RUNNING"
    assert state(runs(ok, "on_success")[0]) == "SUCCESS" and state(runs(ok, "on_failure")[0]) == "SKIPPED"
    assert state(runs(ok, "broken")[0]) == "FAILED"
    code, failed = cli.execute("dev", "finally", "--input", "fail=true")
    assert code == 1 and state(failed) == "FAILED"
    assert [r["taskId"] for r in failed["taskRunList"]] == [
        "work",
        "alert",
        "cleanup",
        "on_success",
        "on_failure",
        "broken",
    ]
    assert state(runs(failed, "on_success")[0]) == "SKIPPED" and state(runs(failed, "on_failure")[0]) == "SUCCESS"


def test_a_flow_sla_is_validated_and_each_execution_says_it_is_not_enforced(cli: Cli, tmp_path: Path) -> None:
    base = "id: sla\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    flow = tmp_path / "sla.yaml"
    flow.write_text(base + "sla:\n  - id: slow\n    type: LATE\n")
    assert cli("flow", "deploy", str(flow)).exit_code == 2
    flow.write_text(base + "sla:\n  - id: slow\n    type: MAX_DURATION\n    duration: PT1H\n    behavior: FAIL\n")
    assert cli("flow", "deploy", str(flow)).exit_code == 0
    code, execution = cli.execute("dev", "sla")
    assert code == 0
    assert "The flow's `sla` is not enforced by kestractl" in cli("executions", "logs", execution["id"]).stdout
