"""Script tasks run real subprocesses: logs, outputs, files, failure, kill."""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_tool

from kestractl.errors import TaskError
from kestractl.model import Execution, Flow, LogEntry, TaskRun
from kestractl.storage import LocalStorage
from kestractl.tasks import registry
from kestractl.tasks.base import Killed, RunContext, Task
from kestractl.tasks.scripts import (
    Bash,
    LegacyPython,
    NodeCommands,
    NodeScript,
    PythonCommands,
    PythonScript,
    ShellCommands,
    ShellScript,
)

SCRIPT_TASKS = (ShellCommands, ShellScript, PythonCommands, PythonScript, NodeCommands, NodeScript, Bash, LegacyPython)
TYPES = {cls.type_name: cls for cls in SCRIPT_TASKS}
SHELL = ShellCommands.type_name
PROCESS = {"type": "io.kestra.plugin.core.runner.Process"}
UNKNOWN_RUNNER = "taskRunner.type: unknown task runner `io.kestra.Nope`"


def render(value: Any, variables: dict[str, Any]) -> Any:
    """Just enough of `{{ a.b }}` to check which variables the tasks pass."""
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        found: Any = variables
        for part in match.group(1).split("."):
            found = found[part]
        return str(found)

    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lookup, value)


class Run:
    """One task run against a fresh RunContext, keeping its logs."""

    def __init__(self, tmp_path: Path, spec: dict[str, Any]) -> None:
        spec = {"id": "script", "taskRunner": PROCESS, **spec}
        self.task: Task = TYPES[spec["type"]](spec)
        self.logs: list[LogEntry] = []
        self.storage = LocalStorage(tmp_path / "storage")
        self.ctx = RunContext(
            flow=Flow(id="flow", namespace="company.team", tasks=[]),
            execution=Execution(id="exec1", namespace="company.team", flow_id="flow", flow_revision=1),
            task=self.task,
            task_run=TaskRun(id="tr1", execution_id="exec1", task_id="script"),
            variables={},
            renderer=render,
            storage=self.storage,
            log_sink=self.logs.append,
            working_dir=tmp_path / "wd",
        )
        (tmp_path / "wd").mkdir()

    def __call__(self) -> dict[str, Any]:
        result = self.task.run(self.ctx)  # type: ignore[attr-defined]
        assert isinstance(result, dict)
        return result

    def lines(self, level: str | None = None) -> list[str]:
        return [e.message for e in self.logs if level is None or e.level == level]


def shell(tmp_path: Path, commands: list[str], **props: Any) -> Run:
    return Run(tmp_path, {"type": SHELL, "commands": commands, **props})


def test_stdout_lines_become_info_logs_in_order(tmp_path: Path) -> None:
    run = shell(tmp_path, ["echo one", "echo two", "printf 'three\\nfour\\n'"])
    outputs = run()
    assert run.lines("INFO") == ["one", "two", "three", "four"]
    assert outputs == {"vars": {}, "exitCode": 0, "stdOutLineCount": 4, "stdErrLineCount": 0}
    assert not run.ctx.warning


def test_stderr_lines_are_error_logs_and_the_run_stays_a_success(tmp_path: Path) -> None:
    """Kestra 0.23+: stderr no longer makes a script task WARNING (only the exit code decides)."""
    run = shell(tmp_path, ["echo out", "echo oops >&2"])
    outputs = run()
    assert run.lines("ERROR") == ["oops"]
    assert outputs["stdErrLineCount"] == 1
    assert not run.ctx.warning


def test_deprecated_warning_on_stderr_is_accepted_and_ignored(tmp_path: Path) -> None:
    run = shell(tmp_path, ["echo oops >&2"], warningOnStdErr=True)
    run()
    assert run.lines("ERROR") == ["oops"]
    assert not run.ctx.warning


def test_output_lines_set_vars_and_are_not_logged(tmp_path: Path) -> None:
    first, second = '::{"outputs": {"a": 1}}::', '::{"outputs": {"b": [true]}}::'
    run = shell(tmp_path, [f"echo '{first}'", f"echo '{second}'"])
    outputs = run()
    assert outputs["vars"] == {"a": 1, "b": [True]}
    assert run.lines() == []


def test_metric_and_log_lines_reach_the_context(tmp_path: Path) -> None:
    metric = '::{"metrics": [{"name": "rows", "type": "counter", "value": 3, "tags": {"t": "x"}}]}::'
    log = '::{"logs": [{"level": "WARN", "message": "careful"}]}::'
    run = shell(tmp_path, [f"echo '{metric}'", f"echo '{log}'"])
    run()
    assert run.ctx.metrics == [{"name": "rows", "type": "counter", "value": 3.0, "tags": {"t": "x"}}]
    assert [(e.level, e.message) for e in run.logs] == [("WARN", "careful")]


def test_malformed_output_line_is_a_warning_log(tmp_path: Path) -> None:
    run = shell(tmp_path, ["echo '::{not json}::'"])
    run()
    assert run.logs[0].level == "WARN" and run.logs[0].message.startswith("Invalid outputs")


def test_non_zero_exit_fails_with_kestras_message_after_logging(tmp_path: Path) -> None:
    run = shell(tmp_path, ["echo before", "exit 3"])
    with pytest.raises(TaskError, match="^Command failed with exit code 3$"):
        run()
    assert run.lines("INFO") == ["before"]


def test_env_before_commands_and_working_dir(tmp_path: Path) -> None:
    run = shell(
        tmp_path,
        ['echo "$GREETING $N $FLAG"', 'echo "$WORKING_DIR"', "echo {{ workingDir }}"],
        env={"GREETING": "hello", "N": 2, "FLAG": True},
        beforeCommands=["echo first"],
    )
    run()
    wd = str(tmp_path / "wd")
    assert run.lines("INFO") == ["first", "hello 2 true", wd, wd]


def test_fail_fast_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    run = shell(tmp_path, ["false", "echo after"])
    with pytest.raises(TaskError):
        run()
    assert run.lines() == []


def test_without_fail_fast_the_last_command_decides(tmp_path: Path) -> None:
    run = shell(tmp_path, ["false", "echo after"], failFast=False)
    assert run()["exitCode"] == 0
    assert run.lines() == ["after"]


def test_input_files_and_output_files_round_trip_through_storage(tmp_path: Path) -> None:
    uri = LocalStorage(tmp_path / "storage").put("/company/team/flow/executions/exec1/in.csv", b"a,b\n")
    run = shell(
        tmp_path,
        ["cat data.csv conf/note.txt > out.txt", "mkdir -p sub && echo x > sub/deep.txt"],
        inputFiles={"data.csv": uri, "conf/note.txt": "note\n"},
        outputFiles=["*.txt", "**/deep.txt"],
    )
    outputs = run()
    assert set(outputs["outputFiles"]) == {"out.txt", "sub/deep.txt"}
    assert run.storage.read_bytes(outputs["outputFiles"]["out.txt"]) == b"a,b\nnote\n"
    assert run.storage.read_bytes(outputs["outputFiles"]["sub/deep.txt"]) == b"x\n"


def test_internal_storage_uris_in_commands_become_local_files(tmp_path: Path) -> None:
    uri = LocalStorage(tmp_path / "storage").put("/company/team/flow/executions/exec1/in.txt", b"stored\n")
    run = shell(tmp_path, [f"cat {uri}"])
    run()
    assert run.lines("INFO") == ["stored"]


def test_input_file_outside_the_working_dir_is_refused(tmp_path: Path) -> None:
    run = shell(tmp_path, ["true"], inputFiles={"../escape.txt": "x"})
    with pytest.raises(TaskError, match="only relative path"):
        run()


def test_shell_script_runs_with_the_interpreter(tmp_path: Path) -> None:
    run = Run(tmp_path, {"type": ShellScript.type_name, "script": "for i in 1 2; do echo $i; done"})
    run()
    assert run.lines("INFO") == ["1", "2"]


def test_python_script_prints_with_this_interpreter(tmp_path: Path) -> None:
    script = "import sys\nprint('hi')\nprint(sys.executable)"
    run = Run(tmp_path, {"type": PythonScript.type_name, "script": script})
    run()
    assert run.lines("INFO")[0] == "hi"
    assert Path(run.lines("INFO")[1]).parent == Path(sys.executable).parent


def test_python_commands_find_python(tmp_path: Path) -> None:
    run = Run(
        tmp_path,
        {
            "type": "io.kestra.plugin.scripts.python.Commands",
            "commands": ["python main.py"],
            "inputFiles": {"main.py": "print(6 * 7)"},
        },
    )
    run()
    assert run.lines("INFO") == ["42"]


def test_python_script_outputs_with_the_kestra_module(tmp_path: Path) -> None:
    script = "from kestra import Kestra\nKestra.outputs({'x': 1})\nKestra.counter('n', 5, {'k': 'v'})"
    run = Run(tmp_path, {"type": PythonScript.type_name, "script": script})
    outputs = run()
    assert outputs["vars"] == {"x": 1}
    assert run.ctx.metrics[0]["name"] == "n" and run.ctx.metrics[0]["value"] == 5.0


def test_docker_runner_falls_back_to_a_process_with_one_warning(tmp_path: Path) -> None:
    run = Run(tmp_path, {"type": SHELL, "commands": ["echo ok"], "taskRunner": None})
    run()
    warnings = run.lines("WARN")
    assert len(warnings) == 1 and "local process" in warnings[0] and "ubuntu" in warnings[0]
    assert run.lines("INFO") == ["ok"]


def test_legacy_bash_output_files_are_temp_files_named_by_key(tmp_path: Path) -> None:
    run = Run(
        tmp_path,
        {
            "type": "io.kestra.core.tasks.scripts.Bash",
            "taskRunner": None,
            "outputFiles": ["first"],
            "commands": ["echo 1 >> {{ outputFiles.first }}"],
        },
    )
    outputs = run()
    assert run.storage.read_bytes(outputs["outputFiles"]["first"]) == b"1\n"
    assert outputs["files"] == outputs["outputFiles"]
    assert run.lines("WARN") == []


def test_legacy_python_runs_main_py(tmp_path: Path) -> None:
    run = Run(
        tmp_path,
        {
            "type": "io.kestra.core.tasks.scripts.Python",
            "virtualEnv": False,
            "commands": ["python main.py"],
            "args": ["a", "b"],
            "inputFiles": {"main.py": "import sys; print(sys.argv[1:])"},
        },
    )
    run()
    assert run.lines("INFO") == ["['a', 'b']"]


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its new parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_stop_kills_the_process_group_and_raises_killed(tmp_path: Path) -> None:
    run = shell(tmp_path, ["sh -c 'sleep 30 & echo $!; wait'"])
    caught: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as err:  # noqa: B036 - the test reports what the thread raised
            caught.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 5
    while not run.lines("INFO") and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(run.lines("INFO")[0])
    started = time.monotonic()
    run.ctx.stop.set()
    thread.join(timeout=3)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert caught and isinstance(caught[0], Killed)
    time.sleep(0.1)
    assert not _alive(child)


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"type": SHELL}, ["commands: required"]),
        ({"type": SHELL, "commands": []}, ["commands: must not be empty"]),
        ({"type": SHELL, "commands": ["ok", {"echo a": "b"}]}, ["commands[1]: must be a string"]),
        ({"type": SHELL, "commands": "echo one"}, []),
        ({"type": ShellScript.type_name}, ["script: required"]),
        ({"type": PythonScript.type_name, "script": "  "}, ["script: must not be empty"]),
        (
            {"type": SHELL, "commands": ["x"], "env": ["A=1"], "failFast": "yes", "runner": "K8S"},
            [
                "env: expected a map, not `['A=1']`",
                "failFast: expected a boolean (true or false), not `yes`",
                "runner: must be one of PROCESS, DOCKER, not `K8S`",
            ],
        ),
        ({"type": SHELL, "commands": ["x"], "taskRunner": {"type": "io.kestra.Nope"}}, [UNKNOWN_RUNNER]),
        ({"type": SHELL, "commands": ["x"], "taskRunner": {"cpu": 1}}, ["taskRunner.type: required"]),
        (
            {"type": SHELL, "commands": ["x"], "targetOS": "MAC"},
            ["targetOS: must be one of AUTO, LINUX, WINDOWS, not `MAC`"],
        ),
        (
            {"type": PythonScript.type_name, "script": "x", "dependencies": [{"a": 1}], "packageManager": "CONDA"},
            ["packageManager: must be one of UV, PIP, not `CONDA`", "dependencies[0]: must be a string"],
        ),
        ({"type": NodeScript.type_name}, ["script: required"]),
        ({"type": NodeCommands.type_name, "commands": "node -v"}, []),
    ],
)
def test_validate_names_each_problem(spec: dict[str, Any], problems: list[str]) -> None:
    assert TYPES[spec["type"]].validate({"id": "t", **spec}) == problems


def test_each_kestra_name_is_registered() -> None:
    names = {
        "io.kestra.plugin.scripts.shell.Commands",
        "io.kestra.plugin.scripts.shell.Script",
        "io.kestra.plugin.scripts.python.Commands",
        "io.kestra.plugin.scripts.python.Script",
        "io.kestra.plugin.scripts.node.Commands",
        "io.kestra.plugin.scripts.node.Script",
        "io.kestra.core.tasks.scripts.Bash",
        "io.kestra.core.tasks.scripts.Python",
    }
    assert set(TYPES) == names
    # The registry's own table: `resolve` would also import every other task module.
    assert all(registry._TYPES[name] is cls for name, cls in TYPES.items())


# Kestra's own runner types, current and from before 0.17: accepted at deploy, run here as a local process.
KESTRA_RUNNERS = [
    "io.kestra.plugin.core.runner.Process",
    "io.kestra.plugin.scripts.runner.docker.Docker",
    "io.kestra.plugin.ee.kubernetes.runner.Kubernetes",
    "io.kestra.plugin.ee.aws.runner.Batch",
    "io.kestra.plugin.ee.azure.runner.Batch",
    "io.kestra.plugin.ee.gcp.runner.Batch",
    "io.kestra.plugin.ee.gcp.runner.CloudRun",
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",
]


@pytest.mark.parametrize("runner", KESTRA_RUNNERS)
def test_kestras_task_runner_types_are_accepted(runner: str) -> None:
    assert ShellCommands.validate({"id": "t", "type": SHELL, "commands": ["x"], "taskRunner": {"type": runner}}) == []


def test_a_remote_runner_runs_locally_with_one_warning(tmp_path: Path) -> None:
    kubernetes = {"type": "io.kestra.plugin.ee.kubernetes.runner.Kubernetes", "namespace": "jobs"}
    run = Run(tmp_path, {"type": SHELL, "commands": ["echo ok"], "taskRunner": kubernetes})
    run()
    assert run.lines("WARN") == [
        "Task runner 'io.kestra.plugin.ee.kubernetes.runner.Kubernetes' is not available in kestractl: "
        "running as a local process"
    ]
    assert run.lines("INFO") == ["ok"]


def test_an_unknown_task_runner_is_refused_at_deploy_with_one_line(cli: Any, tmp_path: Path) -> None:
    flow = tmp_path / "flow.yml"
    flow.write_text(
        "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.scripts.shell.Commands\n"
        "    taskRunner:\n      type: io.kestra.Nope\n    commands: [echo]\n"
    )
    result = cli("flow", "validate", str(flow))
    assert result.exit_code != 0
    assert [line for line in result.stderr.splitlines() if "taskRunner" in line] == [
        f"Error: {flow}:6: tasks[0].{UNKNOWN_RUNNER}"
    ]


def python(tmp_path: Path, script: str, **props: Any) -> Run:
    return Run(tmp_path, {"type": PythonScript.type_name, "script": script, **props})


def test_python_before_commands_env_and_output_files(tmp_path: Path) -> None:
    script = "import os\nprint(os.environ['GREETING'])\nopen('out/result.txt', 'w').write('42')"
    run = python(
        tmp_path, script, beforeCommands=["echo setup", "mkdir out"], env={"GREETING": "hi"}, outputFiles=["out/*"]
    )
    outputs = run()
    assert run.lines("INFO") == ["setup", "hi"]
    assert run.storage.read_bytes(outputs["outputFiles"]["out/result.txt"]) == b"42"


def test_python_interpreter_runs_the_commands(tmp_path: Path) -> None:
    run = python(tmp_path, "print('py')", interpreter=["/bin/bash", "-c"], beforeCommands=["echo ${BASH_VERSION:0:1}"])
    run()
    assert run.lines("INFO")[1] == "py" and run.lines("INFO")[0].isdigit()


def test_python_script_runs_in_a_virtualenv_activated_by_before_commands(tmp_path: Path) -> None:
    """Kestra 1.x: the script uses `$VIRTUAL_ENV/bin/python` when beforeCommands activate one."""
    before = ["python -m venv --without-pip .venv", ". .venv/bin/activate"]
    run = python(tmp_path, "import sys\nprint(sys.prefix)", beforeCommands=before)
    run()
    assert run.lines("INFO") == [str(tmp_path / "wd" / ".venv")]


def test_python_script_knows_pebbles_true_false_and_null(tmp_path: Path) -> None:
    run = python(tmp_path, "print([true, false, null])")
    run()
    assert run.lines("INFO") == ["[True, False, None]"]


needs_node = needs_tool("node")


@needs_node
def test_node_script_logs_outputs_and_errors(tmp_path: Path) -> None:
    outputs_line = 'console.log("::" + JSON.stringify({outputs: {n: 6 * 7}}) + "::")'
    script = f'console.log("hello");\n{outputs_line};\nconsole.error("oops")'
    run = Run(tmp_path, {"type": NodeScript.type_name, "script": script})
    outputs = run()
    assert run.lines("INFO") == ["hello"] and run.lines("ERROR") == ["oops"]
    assert outputs["vars"] == {"n": 42} and not run.ctx.warning


@needs_node
def test_node_commands_run_files_and_fail_on_a_non_zero_exit(tmp_path: Path) -> None:
    files = {"main.js": "console.log(process.argv[2]); process.exit(Number(process.argv[3]))"}
    run = Run(tmp_path, {"type": NodeCommands.type_name, "commands": ["node main.js hi 0"], "inputFiles": files})
    run()
    assert run.lines("INFO") == ["hi"]
    (tmp_path / "again").mkdir()
    spec = {"type": NodeCommands.type_name, "commands": ["node main.js x 3"], "inputFiles": files}
    failing = Run(tmp_path / "again", spec)
    with pytest.raises(TaskError, match="exit code 3"):
        failing()


def test_node_missing_from_path_is_one_line_naming_node(tmp_path: Path) -> None:
    run = Run(tmp_path, {"type": NodeScript.type_name, "script": "1", "env": {"PATH": str(tmp_path)}})
    with pytest.raises(TaskError, match=r"^Cannot run a Node.js task: `node` is not installed or not on PATH$"):
        run()


# Each class's Kestra 1.x properties (plugin-scripts' AbstractExecScript and language classes); `namespaceFiles`
# is declared with the namespace files support.
EXEC_SCRIPT = {
    "taskRunner",
    "containerImage",
    "beforeCommands",
    "env",
    "interpreter",
    "failFast",
    "inputFiles",
    "outputFiles",
    "targetOS",
    "warningOnStdErr",
    "outputDirectory",
    "runner",
    "docker",
}
PYTHON = {
    "dependencies",
    "pythonVersion",
    "dependencyCacheEnabled",
    "packageManager",
    "uvAutoInstallEnabled",
    "uvInstallerVersion",
    "uvInstallerSha256",
}
DECLARED = [
    (ShellCommands, EXEC_SCRIPT | {"commands"}),
    (ShellScript, EXEC_SCRIPT | {"script"}),
    (PythonCommands, EXEC_SCRIPT | PYTHON | {"commands"}),
    (PythonScript, EXEC_SCRIPT | PYTHON | {"script"}),
    (NodeCommands, EXEC_SCRIPT | {"commands"}),
    (NodeScript, EXEC_SCRIPT | {"script"}),
]


@pytest.mark.parametrize(("cls", "names"), DECLARED, ids=[cls.type_name for cls, _ in DECLARED])
def test_every_kestra_property_is_declared_with_a_description(cls: type[Task], names: set[str]) -> None:
    declared = cls.all_properties()
    assert set(declared) - {"namespaceFiles"} == names
    assert all(len(prop.description) > 20 for prop in declared.values())


def test_a_kill_stops_the_dependencies_install_and_leaves_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTRACTL_CACHE_DIR", str(tmp_path / "cache"))
    run = python(tmp_path, "print(1)", dependencies=["tabulate"])
    run.ctx.stop.set()
    with pytest.raises(Killed):
        run()
    assert [p.name for p in (tmp_path / "cache" / "python").iterdir() if p.is_dir()] == []
    assert run.lines() == []
