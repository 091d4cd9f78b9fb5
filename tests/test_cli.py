"""The CLI end to end: deploy, validate, list, show, export, execute, executions …, and user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FLOWS, Cli, runs, state

SEED = Path(__file__).parent.parent / "sample_flows" / "hello-world.yaml"


def test_hello_world_prints_the_greeting_given(cli: Cli) -> None:
    assert cli("flow", "deploy", str(SEED)).exit_code == 0
    result = cli("execute", "dev", "hello-world", "--input", "greeting=hey")
    assert result.exit_code == 0
    assert "hey, kestra team wishes you a great day!" in result.stdout


def test_hello_world_uses_the_default_greeting(cli: Cli) -> None:
    cli("flow", "deploy", str(SEED))
    result = cli("execute", "dev", "hello-world")
    assert result.exit_code == 0
    assert "hello, kestra team wishes you a great day!" in result.stdout


def test_deploy_reports_created_unchanged_and_updated_revisions(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text((FLOWS / "hello.yaml").read_text())
    assert "tests.hello  revision 1  (created)" in cli("flow", "deploy", str(flow)).stdout
    assert "tests.hello  revision 1  (unchanged)" in cli("flow", "deploy", str(flow)).stdout
    flow.write_text(flow.read_text().replace("defaults: hello", "defaults: hi"))
    assert "tests.hello  revision 2  (updated)" in cli("flow", "deploy", str(flow)).stdout
    assert "defaults: hello" in cli("flow", "show", "tests", "hello", "--revision", "1").stdout
    assert "defaults: hi" in cli("flow", "show", "tests", "hello").stdout
    listed = json.loads(cli("flow", "list", "--json").stdout)
    assert listed == [{"namespace": "tests", "id": "hello", "revision": 2}]


def test_deploy_of_a_directory_stores_nothing_when_one_file_is_invalid(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "good.yaml").write_text((FLOWS / "hello.yaml").read_text())
    (tmp_path / "flows" / "bad.yml").write_text("id: bad\nnamespace: tests\ntasks:\n  - id: x\n    type: nope.Nope\n")
    result = cli("flow", "deploy", str(tmp_path / "flows"))
    assert result.exit_code == 2
    assert "bad.yml:5: tasks[0].type: unknown task type `nope.Nope`" in result.stderr
    assert json.loads(cli("flow", "list", "--json").stdout) == []


def test_each_user_mistake_gets_one_clear_line_and_no_traceback(cli: Cli, tmp_path: Path) -> None:
    cases = {
        "broken.yaml": ("id: x\nnamespace: tests\ntasks: [\n", "broken.yaml:4"),
        "tab.yaml": ("id: x\nnamespace: tests\ntasks:\n\t- id: a\n", "tab character"),
        "noid.yaml": (
            "namespace: tests\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: m\n",
            "noid.yaml:1: id: required",
        ),
        "dup.yaml": (
            "id: d\nnamespace: tests\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
            "    message: m\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: m\n",
            "dup.yaml:7: tasks[1].id: duplicate task id `a`",
        ),
        "nomsg.yaml": (
            "id: m\nnamespace: tests\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n",
            "tasks[0].message: required",
        ),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = cli("flow", "validate", str(path))
        assert result.exit_code == 2, name
        assert expected in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout


def test_validate_accepts_valid_flows_and_stores_nothing(cli: Cli) -> None:
    result = cli("flow", "validate", str(FLOWS))
    assert result.exit_code == 0, result.stderr
    assert "tests.hello  valid" in result.stdout
    assert json.loads(cli("flow", "list", "--json").stdout) == []


def test_execute_refuses_an_unknown_flow_with_exit_2(cli: Cli) -> None:
    result = cli("execute", "tests", "nope")
    assert result.exit_code == 2
    assert "flow not found: tests.nope" in result.stderr


def test_execute_refuses_a_wrong_input_type_with_exit_2(cli: Cli) -> None:
    cli.deploy("child.yaml")
    result = cli("execute", "tests", "child", "--input", "n=abc")
    assert result.exit_code == 2
    assert "Invalid input for `n`" in result.stderr
    assert cli("executions", "list", "--json").stdout.strip() == "[]"


def test_unknown_cli_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("flow", "list", "--bogus")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_execute_json_prints_one_execution_document(cli: Cli) -> None:
    cli.deploy("outputs.yaml")
    code, execution = cli.execute("tests", "outputs")
    assert code == 0
    assert state(execution) == "SUCCESS"
    assert execution["outputs"] == {"final": "ret-outputsret-outputs"}
    assert runs(execution, "values")[0]["outputs"]["values"]["nested"] == {"n": 3}
    assert {"id", "namespace", "flowId", "flowRevision", "labels", "taskRunList"} <= execution.keys()
    assert set(execution["state"]) >= {"current", "histories", "startDate", "endDate", "duration"}


def test_failed_execution_exits_1_and_logs_can_be_read_back(cli: Cli) -> None:
    cli.deploy("retry.yaml")
    code, execution = cli.execute("tests", "retry")
    assert code == 1
    logs = cli("executions", "logs", execution["id"], "--level", "ERROR")
    assert "Task failure" in logs.stdout
    info = cli("executions", "logs", execution["id"], "--task", "handler")
    assert "handled" in info.stdout


def test_executions_list_and_show(cli: Cli) -> None:
    cli.deploy("flowables.yaml")
    _, execution = cli.execute("tests", "flowables")
    listed = json.loads(cli("executions", "list", "--flow", "flowables", "--json").stdout)
    assert [e["id"] for e in listed] == [execution["id"]]
    tree = cli("executions", "show", execution["id"]).stdout
    assert "loop" in tree and "[x]" in tree and "SUCCESS" in tree
    assert cli("executions", "list", "--state", "FAILED", "--json").stdout.strip() == "[]"


def test_restart_gives_the_failed_task_a_new_attempt(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    flow = tmp_path / "restart.yaml"
    flow.write_text(
        "id: restart\nnamespace: tests\ntasks:\n"
        "  - id: first\n    type: io.kestra.plugin.core.debug.Return\n    format: one\n"
        "  - id: check\n    type: io.kestra.plugin.scripts.shell.Commands\n    runner: PROCESS\n"
        f"    commands:\n      - test -f {marker}\n"
    )
    cli("flow", "deploy", str(flow))
    code, failed = cli.execute("tests", "restart")
    assert code == 1 and state(failed) == "FAILED"
    marker.write_text("now it exists")
    result = cli("executions", "restart", failed["id"], "--json")
    restarted = json.loads(result.stdout)
    assert result.exit_code == 0
    assert restarted["id"] == failed["id"]
    assert state(restarted) == "SUCCESS"
    assert len(runs(restarted, "check")[0]["attempts"]) == 2
    assert len(runs(restarted, "first")[0]["attempts"]) == 1


def test_paused_execution_returns_then_resumes(cli: Cli) -> None:
    cli.deploy("pause.yaml")
    code, paused = cli.execute("tests", "pause")
    assert code == 0 and state(paused) == "PAUSED"
    resumed = json.loads(cli("executions", "resume", paused["id"], "--json").stdout)
    assert state(resumed) == "SUCCESS"
    assert runs(resumed, "after")[0]["outputs"] == {"value": "resumed"}


def test_kill_of_a_paused_execution(cli: Cli) -> None:
    cli.deploy("pause.yaml")
    _, paused = cli.execute("tests", "pause")
    result = cli("executions", "kill", paused["id"], "--json")
    assert result.exit_code == 0
    killed = json.loads(result.stdout)
    assert state(killed) == "KILLED"
    assert cli("executions", "kill", paused["id"]).exit_code != 0


def test_export_writes_namespace_folders(cli: Cli, tmp_path: Path) -> None:
    cli.deploy("hello.yaml", "child.yaml")
    assert cli("flow", "export", str(tmp_path / "out")).exit_code == 0
    assert (tmp_path / "out" / "tests" / "hello.yaml").read_text() == (FLOWS / "hello.yaml").read_text()
    assert (tmp_path / "out" / "tests" / "child.yaml").exists()


def test_delete_then_show_is_not_found(cli: Cli) -> None:
    cli.deploy("hello.yaml")
    assert cli("flow", "delete", "tests", "hello").exit_code == 0
    result = cli("flow", "show", "tests", "hello")
    assert result.exit_code != 0 and "flow not found" in result.stderr


def test_file_input_is_copied_into_internal_storage(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "file.yaml"
    flow.write_text(
        "id: file\nnamespace: tests\ninputs:\n  - id: data\n    type: FILE\ntasks:\n"
        '  - id: content\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{ read(inputs.data) }}"\n'
    )
    data = tmp_path / "data.txt"
    data.write_text("some content")
    cli("flow", "deploy", str(flow))
    code, execution = cli.execute("tests", "file", "--input", f"data={data}")
    assert code == 0
    assert execution["inputs"]["data"].startswith("kestra:///tests/file/executions/")
    assert runs(execution, "content")[0]["outputs"]["value"] == "some content"


def test_real_subprocess_entry_points_work(tmp_path: Path) -> None:
    env = dict(os.environ, KESTRACTL_HOME=str(tmp_path / "home"))
    exe = Path(sys.executable).parent / "kestractl"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("kestractl ")
    module = subprocess.run(
        [sys.executable, "-m", "kestractl", "flow", "deploy", str(SEED)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert module.returncode == 0, module.stderr
    run = subprocess.run(
        [str(exe), "execute", "dev", "hello-world", "-i", "greeting=hi"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0
    assert "hi, kestra team wishes you a great day!" in run.stdout
    assert "\x1b[" not in run.stdout  # piped: plain text


def test_every_command_has_help_with_an_example_and_a_line_in_the_docs(cli: Cli) -> None:
    import typer.main

    from kestractl.cli.app import app

    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    commands = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            commands += [[name, sub] for sub in command.commands]
        else:
            commands.append([name])
    assert len(commands) >= 17
    for command in commands:
        result = cli(*command, "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command
        assert " ".join(command) in docs, f"docs/cli.md does not mention {' '.join(command)}"


def test_batch_progress_imports_rich_only_when_a_run_reports_batches() -> None:
    """On a terminal `execute` keeps a BatchProgress; a flow without ForEachItem batches must not load rich."""
    code = (
        "import sys; from kestractl.cli.output import BatchProgress; from kestractl.model import Execution, TaskRun\n"
        "progress, execution = BatchProgress(), Execution('e', 'dev', 'f', 1)\n"
        "progress.update(execution, [TaskRun('r', 'e', 'log', outputs={'value': 1})])\n"
        "print('rich' in sys.modules)\n"
        "batches = {'numberOfBatches': 2, 'iterations': {'SUCCESS': 1}}\n"
        "progress.update(execution, [TaskRun('s', 'e', 'each', outputs=batches)])\n"
        "progress.close()\n"
        "print('rich' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
