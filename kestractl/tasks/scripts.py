"""Script tasks (shell, Python and Node `Commands`/`Script`) run as local processes.

Follows Kestra's `AbstractExecScript` + `CommandsWrapper` + the `Process` task runner: one
`interpreter` call on `set -e`, `beforeCommands` and the commands joined by new lines; stdout
lines logged INFO, stderr lines ERROR (since Kestra 0.23 they no longer make the task WARNING);
`::{json}::` lines carry outputs, metrics and logs (what the `kestra` Python module prints). Kestra
defaults to Docker; there is none here, so every runner becomes a local process and the run says so
in one WARN line.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from kestractl.config import cache_root
from kestractl.errors import TaskError
from kestractl.model import new_id
from kestractl.tasks import environments
from kestractl.tasks._pythonpath import FOLDER as PYTHONPATH_FOLDER
from kestractl.tasks.base import Killed, RunContext, RunnableTask, is_true
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.workingdir import TaskFiles, files_under, inside, strings_problems
from kestractl.tasks.workingdir import string_list as _as_list
from kestractl.tasks.workingdir import text_value as _text

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
# Kestra's task runners (Process and Docker in its core, the others Enterprise plugins), and the names they had
# before 0.17. Any of them is accepted; all run here as a local process.
RUNNER_ALIASES = {
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner": PROCESS_RUNNER,
    "io.kestra.plugin.scripts.runner.docker.DockerTaskRunner": DOCKER_RUNNER,
    "io.kestra.plugin.ee.kubernetes.runner.KubernetesTaskRunner": "io.kestra.plugin.ee.kubernetes.runner.Kubernetes",
    "io.kestra.plugin.ee.aws.runner.AwsBatchTaskRunner": "io.kestra.plugin.ee.aws.runner.Batch",
    "io.kestra.plugin.ee.azure.runner.AzureBatchTaskRunner": "io.kestra.plugin.ee.azure.runner.Batch",
    "io.kestra.plugin.ee.gcp.runner.GcpBatchTaskRunner": "io.kestra.plugin.ee.gcp.runner.Batch",
    "io.kestra.plugin.ee.gcp.runner.GcpCloudRunTaskRunner": "io.kestra.plugin.ee.gcp.runner.CloudRun",
}
TASK_RUNNERS = frozenset(
    {
        *RUNNER_ALIASES.values(),
        "io.kestra.plugin.ee.aws.runner.Ec2",
        "io.kestra.plugin.ee.azure.runner.VirtualMachine",
        "io.kestra.plugin.ee.gcp.runner.ComputeEngine",
    }
)
TARGET_OS = ("AUTO", "LINUX", "WINDOWS")
OUTPUT_LINE = re.compile(r"::(\{.*\})::")
INTERNAL_URI = re.compile(r"(kestra://[-a-zA-Z0-9%._+~#=/]*)")
POLL_SECONDS = 0.05
KILL_GRACE_SECONDS = 1.0
DEFAULT_PYTHON_COMMANDS = ["./bin/python main.py"]
UV_ACCEPTED = "Accepted for Kestra compatibility: kestractl ships `uv`, nothing is downloaded."
PYTHON_ENV = {
    "PYTHONUNBUFFERED": "true",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def _task_runner_problems(runner: Any) -> list[str]:
    """Kestra refuses a runner type no plugin provides; a known one of any kind runs here as a process."""
    if not isinstance(runner, dict):  # absent, or not a map: the declaration says it
        return []
    kind = runner.get("type")
    if not kind:
        return ["taskRunner.type: required"]
    known = kind in TASK_RUNNERS or kind in RUNNER_ALIASES
    return [] if known else [f"taskRunner.type: unknown task runner `{kind}`"]


# Logs one line of a script's output that carries no `::{json}::` payload: (ctx, is_stderr, line).
LineLogger = Callable[[RunContext, bool, str], None]


def log_line(ctx: RunContext, is_stderr: bool, line: str) -> None:
    """Kestra's default: stdout lines INFO, stderr lines ERROR."""
    ctx.log("ERROR" if is_stderr else "INFO", line)


class _LineConsumer:
    """Kestra's `DefaultLogConsumer`: logs each line or applies its `::{json}::` payload; counts lines."""

    def __init__(self, ctx: RunContext, log: LineLogger = log_line) -> None:
        self.ctx = ctx
        self.log = log
        self.vars: dict[str, Any] = {}
        self.stdout_count = 0
        self.stderr_count = 0

    def accept(self, is_stderr: bool, line: str) -> None:
        if is_stderr:
            self.stderr_count += 1
        else:
            self.stdout_count += 1
        match = OUTPUT_LINE.fullmatch(line)
        if match is None:
            self.log(self.ctx, is_stderr, line)
            return
        try:
            self._apply(json.loads(match.group(1)))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self.ctx.log("WARN", f"Invalid outputs '{err}'")

    def _apply(self, payload: dict[str, Any]) -> None:
        self.vars.update(payload.get("outputs") or {})
        for metric in payload.get("metrics") or []:
            kind = metric.get("type", "counter")
            self.ctx.metric(metric["name"], kind, float(metric["value"]), metric.get("tags"))
        for entry in payload.get("logs") or []:
            self.ctx.log(str(entry.get("level", "INFO")), _text(entry.get("message", "")))


def _read_lines(stream: IO[bytes], is_stderr: bool, lines: queue.Queue[tuple[bool, str] | None]) -> None:
    """Reader thread: hands lines to the task's thread, which alone talks to the RunContext."""
    with stream:
        for raw in iter(stream.readline, b""):
            lines.put((is_stderr, raw.decode("utf-8", "replace").rstrip("\r\n")))
    lines.put(None)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (children too), then SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_SECONDS)


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        raise TaskError(f'Cannot run program "{argv[0]}": {err.strerror}') from err


def run_process(
    ctx: RunContext, argv: list[str], cwd: Path, env: dict[str, str], log: LineLogger = log_line
) -> tuple[int, _LineConsumer]:
    """Run until the process and its output end; kill its group and raise `Killed` when asked to stop."""
    proc = _start(argv, cwd, env)
    lines: queue.Queue[tuple[bool, str] | None] = queue.Queue()
    for stream, is_stderr in ((proc.stdout, False), (proc.stderr, True)):
        threading.Thread(target=_read_lines, args=(stream, is_stderr, lines), daemon=True).start()
    consumer, open_streams = _LineConsumer(ctx, log), 2
    while open_streams:
        _kill_when_asked(ctx, proc)
        try:
            item = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if item is None:
            open_streams -= 1
        else:
            consumer.accept(*item)
    code = _reap(ctx, proc)
    return (128 - code if code < 0 else code), consumer  # killed by signal N: 128+N, as Java reports it


def _reap(ctx: RunContext, proc: subprocess.Popen[bytes]) -> int:
    """The exit code as soon as the process ends (not a poll period later: that was +50 ms a task), or a kill."""
    while True:
        try:
            return proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_when_asked(ctx, proc)


def _kill_when_asked(ctx: RunContext, proc: subprocess.Popen[bytes]) -> None:
    if ctx.stop.is_set():
        ctx.log("WARN", f"Killing process {proc.pid}")
        _kill_group(proc)
        raise Killed()


class ExecScript(TaskFiles, RunnableTask):
    """Kestra's `AbstractExecScript`: what every script task shares; subclasses give the commands."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "taskRunner": Prop(
            "The task runner (`type` and its own settings); every runner runs here as a local process.",
            type="object",
            dynamic=False,
        ),
        "containerImage": Prop(
            "The task runner container image, only used if the task runner is container-based.",
            type="string",
            default="ubuntu",
        ),
        "beforeCommands": Prop(
            "Commands run before `commands`, to set up the environment (e.g. `pip install …`): a list or one string."
        ),
        "env": Prop("Additional environment variables for the process.", type="object"),
        "interpreter": Prop(
            "The interpreter and its options the commands are passed to (a list).", default=["/bin/sh", "-c"]
        ),
        "failFast": Prop(
            "Fail the task on the first command with a non-zero status (`set -e`).", "boolean", default=True
        ),
        "targetOS": Prop("The operating system the script runs on.", type="string", default="AUTO", values=TARGET_OS),
        "warningOnStdErr": Prop(
            "Deprecated since Kestra 0.23 and ignored: stderr output no longer makes the task WARNING.", "boolean"
        ),
        "outputDirectory": Prop(
            "Deprecated (use `outputFiles`): files written to `{{ outputDir }}` are stored (on by default with the "
            "legacy `runner`).",
            type="boolean",
            dynamic=False,
        ),
        "runner": Prop("Deprecated (use `taskRunner`).", type="string", dynamic=False, values=("PROCESS", "DOCKER")),
        "docker": Prop("Deprecated (use `taskRunner`): Docker options of the DOCKER runner.", "object", dynamic=False),
    }
    outputs: ClassVar[Mapping[str, str]] = {
        "vars": 'The outputs the script printed as `::{"outputs": {...}}::` lines.',
        "exitCode": "The exit code of the process.",
        "stdOutLineCount": "The number of lines written to standard output.",
        "stdErrLineCount": "The number of lines written to standard error.",
        "outputFiles": "The stored `outputFiles`: name → `kestra://` URI.",
    }
    default_runner: ClassVar[str] = DOCKER_RUNNER
    fail_fast_key: ClassVar[tuple[str, str]] = ("failFast", "set -e")

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The declarations' and the files' checks, then each list's items and the task runner's type."""
        problems = super().validate(spec) + cls.own_problems(spec)
        problems += strings_problems(spec, "beforeCommands") + strings_problems(spec, "interpreter")
        return problems + _task_runner_problems(spec.get("taskRunner"))

    @classmethod
    def own_problems(cls, spec: dict[str, Any]) -> list[str]:
        """Problems with the properties that say what runs (`commands` or `script`)."""
        return []

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        """The task's own command lines (rendered later with the whole command)."""
        return _as_list(self.props.get("commands"))

    def extra_env(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        """Variables the task's language needs (over the worker's, under the flow's `env`)."""
        return {}

    def failure(self, ctx: RunContext, exit_code: int, env: dict[str, str]) -> TaskError:
        """The error a non-zero exit fails the task with (a tool's task names the tool when it is missing)."""
        return TaskError(f"Command failed with exit code {exit_code}")

    def log_line(self, ctx: RunContext, is_stderr: bool, line: str) -> None:
        """How an output line is logged (a tool's own JSON logs, e.g. dbt's, are read here)."""
        log_line(ctx, is_stderr, line)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._warn_when_not_process(ctx)
        wd = ctx.working_directory()
        variables = self._prepare(ctx, wd)
        argv, env = self._argv(ctx, wd, variables), self._env(ctx, variables)
        exit_code, consumer = run_process(ctx, argv, wd, env, self.log_line)
        if exit_code != 0:
            raise self.failure(ctx, exit_code, env)
        outputs: dict[str, Any] = {
            "vars": consumer.vars,
            "exitCode": exit_code,
            "stdOutLineCount": consumer.stdout_count,
            "stdErrLineCount": consumer.stderr_count,
        }
        files = self.collect_outputs(ctx, wd, variables)
        if "outputDir" in variables:
            files.update({n: ctx.put_file(p, n) for n, p in files_under(Path(variables["outputDir"]))})
        return {**outputs, **self.files_outputs(files)} if files else outputs

    def _prepare(self, ctx: RunContext, wd: Path) -> dict[str, Any]:
        """Lay out the working directory; returns the extra variables commands are rendered with."""
        variables: dict[str, Any] = {"workingDir": str(wd)}
        self._make_output_dir(wd, variables)
        self.prepare_files(ctx, wd, variables)
        variables.update(self.prepare_outputs(wd))
        return variables

    def _requested_runner(self) -> str:
        runner, task_runner = self.props.get("runner"), self.props.get("taskRunner")
        if runner is not None:
            return PROCESS_RUNNER if str(runner).upper() == "PROCESS" else DOCKER_RUNNER
        if isinstance(task_runner, dict) and task_runner.get("type"):
            return RUNNER_ALIASES.get(str(task_runner["type"]), str(task_runner["type"]))
        return self.default_runner

    def _warn_when_not_process(self, ctx: RunContext) -> None:
        """Kestra would start a container (its default) or a remote job; here it is always a process."""
        runner = self._requested_runner()
        if runner == PROCESS_RUNNER:
            return
        message = f"Task runner '{runner}' is not available in kestractl: running as a local process"
        if runner == DOCKER_RUNNER:
            docker = self.props.get("docker")
            docker_image = docker.get("image") if isinstance(docker, dict) else None
            image = ctx.render(docker_image) if docker_image else ctx.prop("containerImage")
            message += f" instead of in a container of image '{image}'"
        ctx.log("WARN", message)

    def _make_output_dir(self, wd: Path, variables: dict[str, Any]) -> None:
        """Kestra's deprecated `{{ outputDir }}`: on with `outputDirectory: true` or the legacy `runner`."""
        enabled = self.props.get("outputDirectory")
        if is_true(enabled, False) or (enabled is None and self.props.get("runner") is not None):
            path = wd / new_id()
            path.mkdir()
            variables["outputDir"] = str(path)

    def _argv(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        """Kestra's `ScriptService.scriptCommands`, rendered, `kestra://` URIs swapped for local copies."""
        key, errexit = self.fail_fast_key
        lines = [errexit] if ctx.prop(key) else []
        lines += _as_list(self.props.get("beforeCommands")) + self.commands(ctx, wd, variables)
        argv = [*self.interpreter(), "\n".join(lines)]
        return [localize_uris(ctx, wd, _text(ctx.render(part, variables))) for part in argv]

    def interpreter(self) -> list[str]:
        """The interpreter as written (rendered with the command); legacy Bash gives `interpreterArgs` apart."""
        value = self.props.get("interpreter", self.all_properties()["interpreter"].default)
        if isinstance(value, str):  # legacy Bash: `interpreter` + `interpreterArgs`
            return [value, *_as_list(self.props.get("interpreterArgs", ["-c"]))]  # Bash's declared default
        return _as_list(value)

    def _env(self, ctx: RunContext, variables: dict[str, Any]) -> dict[str, str]:
        env = {**os.environ, **self.extra_env(ctx, Path(variables["workingDir"]))}
        for key, value in (self.props.get("env") or {}).items():
            env[_text(ctx.render(key, variables))] = _text(ctx.render(value, variables))
        env["WORKING_DIR"] = variables["workingDir"]
        if "outputDir" in variables:
            env["OUTPUT_DIR"] = variables["outputDir"]
        return env

    def prepare_outputs(self, wd: Path) -> dict[str, Any]:
        """Variables the commands may use for their output files (legacy tasks only)."""
        return {}

    def files_outputs(self, files: dict[str, str]) -> dict[str, Any]:
        return {"outputFiles": files}


def localize_uris(ctx: RunContext, wd: Path, text: str) -> str:
    """Kestra's `replaceInternalStorage`: each `kestra://` URI becomes a local copy's path."""

    def fetch(match: re.Match[str]) -> str:
        fd, name = tempfile.mkstemp(dir=wd)
        os.close(fd)
        source = ctx.storage.local_copy(match.group(1))
        if not source.is_file():
            raise TaskError(f"file not found in internal storage: {match.group(1)}")
        shutil.copyfile(source, name)  # streamed: a big input never sits in memory
        return name

    return INTERNAL_URI.sub(fetch, text)


def python_command() -> str:
    """`python` as Kestra writes it, when `python_env`'s PATH makes it ours; else our full path."""
    here = Path(sys.executable).parent
    return "python" if (here / "python").exists() else shlex.quote(sys.executable)


def python_env() -> dict[str, str]:
    """Kestra's Python variables; the interpreter running kestractl first on PATH; our `kestra` module last on
    PYTHONPATH. So `python main.py` and `pip` mean this interpreter unless the flow changes PATH (or a venv)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), PYTHONPATH_FOLDER]))
    return {**PYTHON_ENV, "PATH": path, "PYTHONPATH": pythonpath}


def commands_prop(description: str) -> dict[str, Prop]:
    """`commands`: a list of strings, or one string."""
    return {"commands": Prop(description + " A list, or one string.", required=True)}


class _CommandsTask(ExecScript):
    properties: ClassVar[Mapping[str, Prop | str]] = commands_prop(
        "The commands to run, one after the other in one interpreter call."
    )

    @classmethod
    def own_problems(cls, spec: dict[str, Any]) -> list[str]:
        return strings_problems(spec, "commands", non_empty=True)


class _ScriptTask(ExecScript):
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "script": Prop("The inline script, passed to the interpreter.", type="string", required=True)
    }

    @classmethod
    def own_problems(cls, spec: dict[str, Any]) -> list[str]:
        script = spec.get("script")
        return ["script: must not be empty"] if isinstance(script, str) and not script.strip() else []

    def script_file(self, ctx: RunContext, wd: Path, variables: dict[str, Any], suffix: str, prelude: str = "") -> str:
        """The rendered script in a new file of the working directory, its path quoted for the shell."""
        source = prelude + localize_uris(ctx, wd, _text(ctx.render(self.props["script"], variables)))
        fd, name = tempfile.mkstemp(suffix=suffix, dir=wd)
        with os.fdopen(fd, "wb") as out:
            out.write(source.encode("utf-8"))
        return shlex.quote(name)


class _PythonEnv(ExecScript):
    """Kestra's `AbstractPythonExecScript`: `dependencies` installed into a cached virtual environment."""

    properties: ClassVar[Mapping[str, Prop | str]] = {
        "containerImage": Prop(
            "The container image, only used if the task runner is container-based.",
            "string",
            default="python:3.13-slim",
        ),
        "dependencies": Prop(
            "Python packages (pip specifiers) installed into a cached virtual environment first: a list or one string."
        ),
        "pythonVersion": Prop("The Python version to run (e.g. `3.12`); it must be installed here.", type="string"),
        "dependencyCacheEnabled": Prop("Keep the `dependencies` environment for later runs.", "boolean", default=True),
        "packageManager": Prop("What installs `dependencies`.", type="string", default="UV", values=("UV", "PIP")),
        "uvAutoInstallEnabled": Prop(UV_ACCEPTED, type="boolean"),
        "uvInstallerVersion": Prop(UV_ACCEPTED, type="string"),
        "uvInstallerSha256": Prop(UV_ACCEPTED, type="string"),
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + strings_problems(spec, "dependencies")

    def extra_env(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        env = python_env()
        venv = self._environment(ctx, wd)
        if venv is not None:
            env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])
            env["VIRTUAL_ENV"] = str(venv)
        return env

    def _environment(self, ctx: RunContext, wd: Path) -> Path | None:
        """The environment for `dependencies` and `pythonVersion`; None runs kestractl's own interpreter."""
        requirements = environments.normalise(_as_list(ctx.prop("dependencies")))
        version = ctx.prop("pythonVersion")
        if not requirements and not version:
            return None
        python = environments.find_python(version or None)
        root = cache_root() / "python" if ctx.prop("dependencyCacheEnabled") else wd / ".kestra_python_env"
        path = environments.environment_path(root, python, requirements)
        return environments.prepare(ctx, path, python, requirements, ctx.prop("packageManager"))


class _NodeEnv(ExecScript):
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "containerImage": Prop(
            "The container image, only used if the task runner is container-based.", "string", default="node"
        ),
    }

    def _env(self, ctx: RunContext, variables: dict[str, Any]) -> dict[str, str]:
        env = super()._env(ctx, variables)
        if shutil.which("node", path=env.get("PATH")) is None:
            raise TaskError("Cannot run a Node.js task: `node` is not installed or not on PATH")
        return env


@register
class ShellCommands(_CommandsTask):
    type_name = "io.kestra.plugin.scripts.shell.Commands"
    properties = commands_prop("The commands to run, one after another.")


@register
class ShellScript(_ScriptTask):
    """The script text is the interpreter's argument, as in Kestra's shell `Script`."""

    type_name = "io.kestra.plugin.scripts.shell.Script"

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        return [_text(self.props["script"])]


@register
class PythonCommands(_CommandsTask, _PythonEnv):
    type_name = "io.kestra.plugin.scripts.python.Commands"
    properties = commands_prop("The commands to run, one after another.")


@register
class PythonScript(_ScriptTask, _PythonEnv):
    """The script goes to a `.py` file run with `python`: an activated virtualenv's (`beforeCommands`, or the
    one of `dependencies`) when there is one, as Kestra 1.x does. Pebble's `true`/`false`/`null` are defined."""

    type_name = "io.kestra.plugin.scripts.python.Script"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "script": Prop("The inline Python script, written to a `.py` file and run with `python`.", "string", True),
    }
    prelude: ClassVar[str] = "true = True\nfalse = False\nnull = None\n"

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        name = self.script_file(ctx, wd, variables, ".py", self.prelude)
        return [f'if [ -n "$VIRTUAL_ENV" ]; then "$VIRTUAL_ENV/bin/python" {name}; else {python_command()} {name}; fi']


@register
class NodeCommands(_CommandsTask, _NodeEnv):
    type_name = "io.kestra.plugin.scripts.node.Commands"


@register
class NodeScript(_ScriptTask, _NodeEnv):
    type_name = "io.kestra.plugin.scripts.node.Script"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "script": Prop("The inline Node.js script, written to a `.js` file and run with `node`.", "string", True),
    }

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        return [f"node {self.script_file(ctx, wd, variables, '.js')}"]


@register
class Bash(_CommandsTask):
    """Legacy `io.kestra.core.tasks.scripts.Bash`: runs as a process; `outputFiles` names temp files.

    `echo 1 >> {{ outputFiles.first }}` writes a file the task stores as output `outputFiles.first`.
    """

    type_name = "io.kestra.core.tasks.scripts.Bash"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "interpreter": Prop("The interpreter: one program (or a list with its options).", default="/bin/sh"),
        "interpreterArgs": Prop("Arguments of a one-program `interpreter`, before the commands.", default=["-c"]),
        "exitOnFailed": Prop("Exit on the first command that fails (`set -o errexit`).", "boolean", default=True),
        "outputFiles": Prop("Names of temp files, `{{ outputFiles.<name> }}`, stored after the run.", dynamic=False),
        "files": Prop("Deprecated (use `outputFiles`): names of temp files to store.", dynamic=False),
        "outputsFiles": Prop("Deprecated (use `outputFiles`): names of temp files to store.", dynamic=False),
        "dockerOptions": Prop(
            "Docker options of the DOCKER runner (it runs as a local process here).", "object", dynamic=False
        ),
    }
    outputs: ClassVar[Mapping[str, str]] = {
        **ExecScript.outputs,
        "outputFiles": "The stored temp files: name → `kestra://` URI.",
        "files": "Deprecated: the same as `outputFiles`.",
    }
    default_runner = PROCESS_RUNNER
    fail_fast_key = ("exitOnFailed", "set -o errexit")

    def prepare_outputs(self, wd: Path) -> dict[str, Any]:
        names = [
            *_as_list(self.props.get("outputFiles")),
            *_as_list(self.props.get("outputsFiles")),
            *_as_list(self.props.get("files")),
        ]
        temp = {}
        for name in names:
            inside(wd, name)
            fd, path = tempfile.mkstemp(prefix=f"{name}_".rjust(3, "_"), suffix=".tmp", dir=wd)
            os.close(fd)
            temp[name] = path
        return {"outputFiles": temp, "temp": temp} if temp else {}

    def collect_outputs(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> dict[str, str]:
        temp: dict[str, str] = variables.get("outputFiles", {})
        return {name: ctx.put_file(Path(path)) for name, path in temp.items()}

    def files_outputs(self, files: dict[str, str]) -> dict[str, Any]:
        return {"outputFiles": files, "files": files}


@register
class LegacyPython(Bash):
    """Legacy `io.kestra.core.tasks.scripts.Python`: `main.py` from `inputFiles`, in a virtualenv."""

    type_name = "io.kestra.core.tasks.scripts.Python"
    properties: ClassVar[Mapping[str, Prop | str]] = {
        "commands": Prop("The commands to run, one after another.", default=DEFAULT_PYTHON_COMMANDS),
        "requirements": Prop("Python packages installed with pip into the task's virtualenv.", dynamic=False),
        "pythonPath": Prop(
            "The Python interpreter that creates the virtualenv (kestractl's own by default).", "string", dynamic=False
        ),
        "virtualEnv": Prop("Create a virtualenv in the working directory first.", type="boolean", default=True),
        "args": Prop("Arguments added to each command.", dynamic=False),
        "packageManager": Prop("Accepted for Kestra compatibility: `requirements` are installed with pip.", "string"),
    }

    @classmethod
    def own_problems(cls, spec: dict[str, Any]) -> list[str]:
        return strings_problems(spec, "commands") + strings_problems(spec, "requirements")

    def extra_env(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        return python_env()

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        commands = _as_list(self.props.get("commands")) or DEFAULT_PYTHON_COMMANDS
        if commands == DEFAULT_PYTHON_COMMANDS and not (wd / "main.py").exists():
            raise TaskError(
                "Invalid input files structure, expecting inputFiles property to contain "
                "at least a main.py key with python code value."
            )
        args = " ".join(_as_list(self.props.get("args")))
        return self._venv_commands(ctx) + [f"{command} {args}".rstrip() for command in commands]

    def _venv_commands(self, ctx: RunContext) -> list[str]:
        if not ctx.prop("virtualEnv"):
            return []
        python = self.props.get("pythonPath") or python_command()
        lines = [f"{python} -m venv --system-site-packages . > /dev/null"]
        requirements = _as_list(self.props.get("requirements"))
        if requirements:
            lines += [
                "./bin/pip install pip --upgrade > /dev/null",
                f"./bin/pip install {' '.join(requirements)} > /dev/null",
            ]
        return lines
