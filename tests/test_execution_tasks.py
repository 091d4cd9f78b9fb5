"""Execution, log, loop and trigger-toggle tasks through the real CLI (and, for Toggle, a real scheduler tick):
each task's outputs and its effect on executions, logs and triggers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kestractl.config import resolve_home
from kestractl.engine.runner import Runner
from kestractl.ion import loads_lines
from kestractl.server.scheduler import Scheduler
from kestractl.storage import LocalStorage, execution_prefix
from kestractl.store import open_store
from tests.conftest import Cli, runs, state

CONFORMANCE = Path("/work/shared/conformance/kestra-validation/valids")
LOG = "io.kestra.plugin.core.log.Log"


def deploy(cli: Cli, tmp_path: Path, *sources: str) -> None:
    paths = []
    for n, source in enumerate(sources):
        path = tmp_path / f"flow{n}-{abs(hash(source))}.yaml"
        path.write_text(source)
        paths.append(str(path))
    result = cli("flow", "deploy", *paths)
    assert result.exit_code == 0, result.stdout + result.stderr


def flow(flow_id: str, tasks: str, extra: str = "", namespace: str = "qa") -> str:
    return f"id: {flow_id}\nnamespace: {namespace}\n{extra}tasks:\n{tasks}"


def outputs(execution: dict[str, Any], task_id: str) -> Any:
    return runs(execution, task_id)[-1]["outputs"]


def labels(execution: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in execution["labels"]}


# ---- variables ---------------------------------------------------------------------------------------

VARS_FLOW = flow(
    "vars",
    """  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    variables:
      message: "Hello {{ vars.name }}"
      nested: {b: 2}
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ vars.message }} {{ vars.nested.a }}{{ vars.nested.b }}"
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after_restart
    type: io.kestra.plugin.core.debug.Return
    format: "{{ vars.message }}"
  - id: unset
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables: [message, nested.a]
  - id: left
    type: io.kestra.plugin.core.debug.Return
    format: "{{ vars | json }}"
""",
    "variables:\n  name: World\n  nested: {a: 1}\n",
)


def test_set_variables_are_read_by_later_tasks_survive_a_restart_and_are_unset(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, VARS_FLOW)
    code, paused = cli.execute("qa", "vars")
    assert code == 0 and state(paused) == "PAUSED"
    assert outputs(paused, "read")["value"] == "Hello World 12"
    assert paused["variables"] == {"name": "World", "nested": {"a": 1, "b": 2}, "message": "Hello World"}
    resumed = json.loads(cli("executions", "resume", paused["id"], "--json").stdout)  # a new runner: from the row
    assert state(resumed) == "SUCCESS"
    assert outputs(resumed, "after_restart")["value"] == "Hello World"
    assert json.loads(outputs(resumed, "left")["value"]) == {"name": "World", "nested": {"b": 2}}


def test_overwrite_false_and_a_missing_variable_fail_the_task(cli: Cli, tmp_path: Path) -> None:
    deploy(
        cli,
        tmp_path,
        flow(
            "no-overwrite",
            """  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    overwrite: false
    variables: {name: other}
""",
            "variables:\n  name: World\n",
        ),
        flow(
            "unset-missing",
            """  - id: ignored
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables: [nothing]
    ignoreMissing: true
  - id: refused
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables: [nothing.here]
""",
        ),
    )
    code, refused = cli.execute("qa", "no-overwrite")
    assert code == 1 and state(runs(refused, "set")[0]) == "FAILED"
    log = cli("executions", "logs", refused["id"]).stdout
    assert "`overwrite` is set to false and the following variables already exist: name" in log
    code, missing = cli.execute("qa", "unset-missing")
    assert [state(r) for r in missing["taskRunList"]] == ["SUCCESS", "FAILED"]
    assert "Unable to unset the variable `nothing.here`" in cli("executions", "logs", missing["id"]).stdout


# ---- labels ------------------------------------------------------------------------------------------


def test_labels_from_a_map_a_list_and_json_are_set_on_the_execution(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, (CONFORMANCE / "labels-update-task.yml").read_text())
    code, execution = cli.execute(
        "io.kestra.tests",
        "labels-update-task",
        "--input",
        'labelsJson={"fromJson": "yes"}',
        "--input",
        "labelsMapKey=mapKey",
        "--input",
        "labelsMapValue=mapValue",
        "--input",
        "labelsListKey=listKey",
        "--input",
        "labelsListValue=listValue",
    )
    assert code == 0, execution
    found = labels(execution)
    assert found["fromJson"] == "yes" and found["mapKey"] == "mapValue" and found["listKey"] == "listValue"
    assert found["flowLabelKey"] == "flowLabelValue"
    assert found["overriddenFlowLabelKey"] == "io.kestra.tests.labels-update-task"
    assert found["overriddenExecutionLabelKey"] == runs(execution, "override-labels")[0]["id"]
    stored = json.loads(cli("executions", "show", execution["id"], "--json").stdout)
    assert labels(stored) == found


def test_system_labels_are_refused_and_the_legacy_name_works(cli: Cli, tmp_path: Path) -> None:
    deploy(
        cli,
        tmp_path,
        flow(
            "system-label",
            """  - id: legacy
    type: io.kestra.core.tasks.executions.Labels
    labels: {ok: "{{ 1 + 1 }}", flag: true}
  - id: system
    type: io.kestra.plugin.core.execution.Labels
    labels: {system.correlationId: mine}
""",
        ),
    )
    code, execution = cli.execute("qa", "system-label")
    assert code == 1 and labels(execution)["ok"] == "2" and labels(execution)["flag"] == "true"
    assert labels(execution)["system.correlationId"] == execution["id"]
    log = cli("executions", "logs", execution["id"]).stdout
    assert "System labels can only be set by Kestra itself, offending label: system.correlationId=mine" in log


# ---- exit, kill, assert --------------------------------------------------------------------------------

EXIT_FLOW = flow(
    "exit",
    """  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: exit
        type: io.kestra.plugin.core.execution.Exit
        state: "{{ inputs.state }}"
      - id: never
        type: io.kestra.plugin.core.log.Log
        message: never
  - id: never_either
    type: io.kestra.plugin.core.log.Log
    message: never
""",
    "inputs:\n  - id: state\n    type: STRING\n",
)


@pytest.mark.parametrize(
    ("exit_state", "final", "code"),
    [("SUCCESS", "SUCCESS", 0), ("WARNING", "WARNING", 0), ("FAILED", "FAILED", 1), ("CANCELED", "CANCELLED", 1)]
    + [("KILLED", "KILLED", 1)],
)
def test_exit_ends_the_execution_and_its_parents_in_the_state_asked(
    cli: Cli, tmp_path: Path, exit_state: str, final: str, code: int
) -> None:
    deploy(cli, tmp_path, EXIT_FLOW)
    exit_code, execution = cli.execute("qa", "exit", "--input", f"state={exit_state}")
    assert exit_code == code and state(execution) == final
    assert [(r["taskId"], state(r)) for r in execution["taskRunList"]] == [("seq", final), ("exit", final)]


def test_an_unknown_exit_state_is_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(flow("bad", "  - id: exit\n    type: io.kestra.plugin.core.execution.Exit\n    state: DONE\n"))
    result = cli("flow", "validate", str(path))
    assert result.exit_code != 0 and "state: must be one of SUCCESS, WARNING, KILLED, FAILED, CANCELED" in (
        result.stdout + result.stderr
    )


def test_kill_stops_running_branches_and_subflows_only_when_propagated(cli: Cli, tmp_path: Path) -> None:
    child = flow("paused-child", "  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n")
    parent = flow(
        "killer",
        """  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: sleep
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT30S
      - id: sub
        type: io.kestra.plugin.core.flow.Subflow
        namespace: qa
        flowId: paused-child
        wait: false
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.3S
          - id: kill
            type: io.kestra.plugin.core.execution.Kill
            propagateKill: "{{ inputs.propagate }}"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
""",
        "inputs:\n  - id: propagate\n    type: BOOLEAN\n",
    )
    deploy(cli, tmp_path, child, parent)
    for propagate, child_state in (("true", "KILLED"), ("false", "PAUSED")):
        started = datetime.now(UTC)
        code, execution = cli.execute("qa", "killer", "--input", f"propagate={propagate}")
        assert code == 1 and state(execution) == "KILLED"
        assert datetime.now(UTC) - started < timedelta(seconds=15)  # the 30 s sleep was stopped
        assert state(runs(execution, "kill")[0]) == "KILLED" and state(runs(execution, "sleep")[0]) == "KILLED"
        assert not runs(execution, "never")
        child_id = outputs(execution, "sub")["executionId"]
        shown = json.loads(cli("executions", "show", child_id, "--json").stdout)
        assert state(shown) == child_state


def test_assert_passes_or_fails_with_the_count_of_failed_assertions(cli: Cli, tmp_path: Path) -> None:
    deploy(
        cli,
        tmp_path,
        flow(
            "asserts",
            """  - id: ok
    type: io.kestra.plugin.core.execution.Assert
    conditions: ["{{ inputs.n == 2 }}", "yes"]
  - id: ko
    type: io.kestra.plugin.core.execution.Assert
    conditions: ["{{ inputs.n == 3 }}", "{{ 0 }}", "{{ undefined.field.call() }}", "true"]
    errorMessage: "n was {{ inputs.n }}"
""",
            "inputs:\n  - id: n\n    type: INT\n",
        ),
    )
    code, execution = cli.execute("qa", "asserts", "--input", "n=2")
    assert code == 1 and [state(r) for r in execution["taskRunList"]] == ["SUCCESS", "FAILED"]
    log = cli("executions", "logs", execution["id"]).stdout
    assert "3 assertions failed! n was 2" in log
    assert "Assertion `{{ 0 }}` failed!" in log and "Assertion `{{ inputs.n == 3 }}` failed!" in log


# ---- other executions: count, purge, fetch, resume ------------------------------------------------------


def test_count_counts_executions_per_flow_and_keeps_rows_by_expression(cli: Cli, tmp_path: Path) -> None:
    hello = flow("hello", f"  - id: hi\n    type: {LOG}\n    message: hi\n")
    other = flow("other", f"  - id: hi\n    type: {LOG}\n    message: hi\n", namespace="qa.sub")
    counter = flow(
        "counter",
        """  - id: flows
    type: io.kestra.plugin.core.execution.Count
    flows:
      - {namespace: qa, flowId: hello}
      - {namespace: qa, flowId: missing}
    states: [SUCCESS]
    startDate: "{{ now() | dateAdd(-1, 'HOURS') }}"
    expression: "{{ count >= 0 }}"
  - id: none
    type: io.kestra.plugin.core.execution.Count
    namespaces: [qa, qa.sub]
    startDate: "{{ now() | dateAdd(-1, 'HOURS') }}"
    endDate: "{{ now() }}"
    expression: "{{ count == 0 }}"
  - id: legacy
    type: io.kestra.core.tasks.executions.Counts
    namespaces: [qa.sub]
    startDate: "2000-01-01T00:00:00Z"
    expression: "{{ count > 1 }}"
""",
    )
    deploy(cli, tmp_path, hello, other, counter)
    for flow_id, namespace in (("hello", "qa"), ("hello", "qa"), ("hello", "qa"), ("other", "qa.sub")):
        assert cli.execute(namespace, flow_id)[0] == 0
    code, execution = cli.execute("qa", "counter")
    assert code == 0, execution
    assert outputs(execution, "flows") == {
        "results": [
            {"namespace": "qa", "flowId": "hello", "count": 3},
            {"namespace": "qa", "flowId": "missing", "count": 0},
        ],
        "total": 3,
    }
    assert outputs(execution, "none") == {"results": [], "total": 0}
    assert outputs(execution, "legacy") == {"results": [], "total": 0}


def test_purge_executions_and_logs_remove_rows_logs_and_files(cli: Cli, tmp_path: Path) -> None:
    noisy = flow(
        "noisy",
        """  - id: say
    type: io.kestra.plugin.core.log.Log
    message: [one, two]
  - id: file
    type: io.kestra.plugin.scripts.shell.Commands
    commands: ["echo data > out.txt"]
    outputFiles: ["out.txt"]
""",
    )
    purger = flow(
        "purger",
        """  - id: logs
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: qa
    flowId: noisy
    logLevels: [INFO]
    endDate: "{{ now() }}"
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    namespace: qa
    flowId: noisy
    states: [SUCCESS]
    endDate: "{{ now() }}"
""",
    )
    deploy(cli, tmp_path, noisy, purger)
    ids = [cli.execute("qa", "noisy")[1]["id"] for _ in range(2)]
    storage = LocalStorage(resolve_home(cli.home).storage_root)
    assert all(storage.folder(execution_prefix("qa", "noisy", i)).is_dir() for i in ids)
    code, execution = cli.execute("qa", "purger")
    assert code == 0, execution
    assert outputs(execution, "logs")["count"] == 4  # two INFO lines per execution
    assert outputs(execution, "purge") == {
        "executionsCount": 2,
        "logsCount": 2,  # PurgeLogs took the INFO lines: the shell task's WARN (no Docker here) is left
        "storagesCount": 2,  # out.txt of each
        "metricsCount": 0,
    }
    left = json.loads(cli("executions", "list", "--json").stdout)
    assert [e["flowId"] for e in left] == ["purger"]
    assert not any(storage.folder(execution_prefix("qa", "noisy", i)).exists() for i in ids)


def test_purge_executions_counts_logs_and_keeps_running_ones(cli: Cli, tmp_path: Path) -> None:
    noisy = flow("noisy", f"  - id: say\n    type: {LOG}\n    message: [one, two, three]\n")
    purger = flow(
        "purger",
        """  - id: purge
    type: io.kestra.plugin.core.storage.Purge
    namespace: qa
    endDate: "{{ now() }}"
    purgeExecution: false
""",
    )
    deploy(cli, tmp_path, noisy, purger)
    noisy_id = cli.execute("qa", "noisy")[1]["id"]
    code, execution = cli.execute("qa", "purger")
    assert code == 0, execution
    assert outputs(execution, "purge")["executionsCount"] == 0 and outputs(execution, "purge")["logsCount"] == 3
    assert cli("executions", "logs", noisy_id).stdout.strip() == ""  # its logs went, the execution stayed
    assert json.loads(cli("executions", "show", noisy_id, "--json").stdout)["id"] == noisy_id


def test_fetch_writes_the_logs_as_an_ion_file(cli: Cli, tmp_path: Path) -> None:
    fetcher = flow(
        "fetcher",
        """  - id: one
    type: io.kestra.plugin.core.log.Log
    message: first line
  - id: two
    type: io.kestra.plugin.core.log.Log
    message: second line
    level: WARN
  - id: all
    type: io.kestra.plugin.core.log.Fetch
  - id: warnings
    type: io.kestra.plugin.core.log.Fetch
    level: WARN
  - id: of_one
    type: io.kestra.core.tasks.log.Fetch
    executionId: "{{ execution.id }}"
    tasksId: [one]
  - id: other_flow
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ execution.id }}"
    namespace: qa
    flowId: another
""",
    )
    deploy(cli, tmp_path, fetcher)
    code, execution = cli.execute("qa", "fetcher")
    assert code == 0, execution
    assert outputs(execution, "all")["size"] == 2 and outputs(execution, "warnings")["size"] == 1
    assert outputs(execution, "of_one")["size"] == 1 and outputs(execution, "other_flow")["size"] == 0
    uri = outputs(execution, "all")["uri"]
    assert uri.startswith("kestra:///qa/fetcher/executions/") and uri.endswith(".ion")
    text = cli("executions", "file", execution["id"], uri).stdout
    rows = loads_lines(text)
    assert [(r["taskId"], r["level"], r["message"]) for r in rows] == [
        ("one", "INFO", "first line"),
        ("two", "WARN", "second line"),
    ]
    assert rows[0]["executionId"] == execution["id"] and isinstance(rows[0]["timestamp"], datetime)


RESUMER = flow(
    "resumer",
    """  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    namespace: qa
    flowId: paused
    inputs:
      approvedBy: "{{ flow.id }}"
""",
)
PAUSED = flow(
    "paused",
    """  - id: pause
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.pause.onResume.approvedBy }}"
""",
)


def test_resume_resumes_a_paused_execution_of_another_flow(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, PAUSED, RESUMER, (CONFORMANCE / "resume-execution.yaml").read_text())
    code, paused = cli.execute("qa", "paused")
    assert code == 0 and state(paused) == "PAUSED"
    code, execution = cli.execute("qa", "resumer")
    assert code == 0 and state(execution) == "SUCCESS"
    resumed = json.loads(cli("executions", "show", paused["id"], "--json").stdout)
    assert state(resumed) == "SUCCESS" and outputs(resumed, "after")["value"] == "resumer"
    code, again = cli.execute("io.kestra.tests", "resume-execution", "--input", f"executionId={paused['id']}")
    assert code == 1 and state(runs(again, "resume")[0]) == "FAILED"
    assert f"execution {paused['id']} is SUCCESS, not PAUSED" in cli("executions", "logs", again["id"]).stdout
    code, nothing = cli.execute("qa", "resumer")
    assert code == 1 and "No paused execution found for the flow qa.paused" in (
        cli("executions", "logs", nothing["id"]).stdout
    )


# ---- LoopUntil -----------------------------------------------------------------------------------------


def loop_flow(flow_id: str, condition: str, frequency: str, type_name: str = "LoopUntil") -> str:
    return flow(
        flow_id,
        f"""  - id: loop
    type: io.kestra.plugin.core.flow.{type_name}
    condition: "{condition}"
{frequency}    tasks:
      - id: count
        type: io.kestra.plugin.core.output.OutputValues
        values:
          next: "{{{{ outputs.loop.iterationCount + 1 }}}}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.loop.iterationCount }}}}"
""",
    )


def test_loop_until_repeats_its_tasks_until_the_condition_holds(cli: Cli, tmp_path: Path) -> None:
    frequency = "    checkFrequency:\n      interval: PT0.05S\n"
    deploy(cli, tmp_path, loop_flow("until", "{{ outputs.count.values.next == '4' }}", frequency))
    code, execution = cli.execute("qa", "until")
    assert code == 0 and state(execution) == "SUCCESS"
    assert [r["iteration"] for r in runs(execution, "count")] == [1, 2, 3]
    assert outputs(execution, "loop") == {"iterationCount": 3} and outputs(execution, "after")["value"] == "3"


@pytest.mark.parametrize(("fail", "final"), [("true", "FAILED"), ("false", "SUCCESS")])
def test_loop_until_stops_at_max_iterations_failing_only_when_asked(
    cli: Cli, tmp_path: Path, fail: str, final: str
) -> None:
    frequency = f"    failOnMaxReached: {fail}\n    checkFrequency:\n      maxIterations: 3\n      interval: PT0.05S\n"
    deploy(cli, tmp_path, loop_flow("capped", "{{ false }}", frequency, type_name="WaitFor"))
    code, execution = cli.execute("qa", "capped")
    assert state(execution) == final and code == (1 if final == "FAILED" else 0)
    assert len(runs(execution, "count")) == 3 and outputs(execution, "loop") == {"iterationCount": 3}
    assert "Max iterations reached" in cli("executions", "logs", execution["id"]).stdout


def test_loop_until_interval_and_limits_may_be_expressions(cli: Cli, tmp_path: Path) -> None:
    frequency = '    checkFrequency:\n      maxIterations: "{{ inputs.most }}"\n      interval: "{{ inputs.every }}"\n'
    source = loop_flow("dynamic", "{{ false }}", frequency)
    source = source.replace(
        "tasks:\n", "inputs:\n  - id: most\n    type: INT\n  - id: every\n    type: STRING\ntasks:\n", 1
    )
    deploy(cli, tmp_path, source)
    code, execution = cli.execute("qa", "dynamic", "--input", "most=2", "--input", "every=PT0.01S")
    assert code == 0 and len(runs(execution, "count")) == 2
    code, bad = cli.execute("qa", "dynamic", "--input", "most=2", "--input", "every=soon")
    assert code == 1 and "interval: 'soon' is not an ISO-8601 duration" in cli("executions", "logs", bad["id"]).stdout


def test_kestras_loop_flows_validate(cli: Cli) -> None:
    files = sorted(str(p) for p in CONFORMANCE.glob("waitfor*.yaml"))
    assert len(files) == 6
    result = cli("flow", "validate", *files)
    assert result.exit_code == 0, result.stdout + result.stderr


# ---- dynamic durations -------------------------------------------------------------------------------


def test_a_pause_delay_from_an_input_is_valid_and_rendered_when_the_pause_starts(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, (CONFORMANCE / "pause-delay-from-input.yaml").read_text())
    started = datetime.now(UTC)
    code, execution = cli.execute("io.kestra.tests", "pause-delay-from-input", "--input", "delay=PT0.3S")
    assert code == 0 and state(execution) == "SUCCESS"
    assert datetime.now(UTC) - started >= timedelta(seconds=0.3)
    bad = tmp_path / "bad.yaml"
    bad.write_text(flow("bad", "  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    timeout: soon\n"))
    refused = cli("flow", "validate", str(bad))
    assert refused.exit_code != 0 and "timeout: `soon` is not an ISO-8601 duration" in refused.stdout + refused.stderr


# ---- Toggle --------------------------------------------------------------------------------------------

TOGGLED = flow(
    "scheduled",
    f"  - id: hi\n    type: {LOG}\n    message: hi\n",
    "triggers:\n  - id: every_minute\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '* * * * *'\n",
)
TOGGLER = flow(
    "toggler",
    """  - id: toggle
    type: io.kestra.plugin.core.trigger.Toggle
    namespace: qa
    flowId: scheduled
    trigger: every_minute
    enabled: "{{ inputs.enabled }}"
""",
    "inputs:\n  - id: enabled\n    type: BOOLEAN\n",
)


def test_a_trigger_disabled_by_toggle_does_not_fire_until_enabled_again(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, TOGGLED, TOGGLER)
    home = resolve_home(cli.home)
    store = open_store(home.db_path)
    scheduler = Scheduler(Runner(store, LocalStorage(home.storage_root)))
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert scheduler.tick(now) == []  # first sight: the next minute is due next
    assert cli.execute("qa", "toggler", "--input", "enabled=false")[0] == 0
    assert scheduler.tick(now + timedelta(minutes=1, seconds=1)) == []
    assert scheduler.tick(now + timedelta(minutes=5, seconds=1)) == []
    assert cli.execute("qa", "toggler", "--input", "enabled=true")[0] == 0
    later = now + timedelta(minutes=6, seconds=1)
    assert scheduler.tick(later) == []  # back on: it starts again from now, the missed minutes are not fired
    fired = scheduler.tick(later + timedelta(minutes=1))
    assert [(e.namespace, e.flow_id) for e in fired] == [("qa", "scheduled")]


def test_toggle_of_the_current_flow_by_its_legacy_name_and_of_an_unknown_trigger(cli: Cli, tmp_path: Path) -> None:
    bad = TOGGLER.replace("trigger: every_minute", "trigger: nope").replace("id: toggler", "id: toggler-bad")
    deploy(cli, tmp_path, TOGGLED, bad, (CONFORMANCE / "trigger-toggle.yaml").read_text())
    code, legacy = cli.execute("io.kestra.tests.trigger", "trigger-toggle")
    assert code == 0, legacy
    assert "Trigger schedule of io.kestra.tests.trigger.trigger-toggle enabled" in (
        cli("executions", "logs", legacy["id"]).stdout
    )
    code, refused = cli.execute("qa", "toggler-bad", "--input", "enabled=true")
    assert code == 1
    assert "Unable to find trigger nope for the flow qa.scheduled" in cli("executions", "logs", refused["id"]).stdout


def test_exit_leaves_a_running_branch_to_finish_and_records_it(cli: Cli, tmp_path: Path) -> None:
    deploy(
        cli,
        tmp_path,
        flow(
            "exit-parallel",
            """  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.5S
      - id: exit
        type: io.kestra.plugin.core.execution.Exit
        state: WARNING
""",
        ),
    )
    code, execution = cli.execute("qa", "exit-parallel")
    assert code == 0 and state(execution) == "WARNING" and state(runs(execution, "exit")[0]) == "WARNING"
    assert state(runs(execution, "slow")[0]) == "SUCCESS"


LISTENER = flow(
    "listener",
    f"  - id: hi\n    type: {LOG}\n    message: hi\n",
    "triggers:\n  - id: after_toggler\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
    "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: qa\n        flowId: toggler\n",
)


def test_a_flow_trigger_disabled_by_toggle_starts_nothing(cli: Cli, tmp_path: Path) -> None:
    off = TOGGLER.replace("flowId: scheduled", "flowId: listener").replace("every_minute", "after_toggler")
    deploy(cli, tmp_path, LISTENER, off)
    home = resolve_home(cli.home)
    store = open_store(home.db_path)
    scheduler = Scheduler(Runner(store, LocalStorage(home.storage_root)))
    disabled = cli.execute("qa", "toggler", "--input", "enabled=false")[1]
    assert scheduler.on_execution_end(store.load_execution(disabled["id"])) == []
    enabled = cli.execute("qa", "toggler", "--input", "enabled=true")[1]
    started = scheduler.on_execution_end(store.load_execution(enabled["id"]))
    assert [(e.namespace, e.flow_id) for e in started] == [("qa", "listener")]
