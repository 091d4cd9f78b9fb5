"""dbt (`io.kestra.plugin.dbt.cli.*`): `DbtCLI` runs dbt commands; `Build`, `Run`, `Test`, `Compile`, `Deps`,
`Freshness`, `List`, `Seed` and `Snapshot` run one dbt command built from their properties. dbt's JSON log lines
are logged as Kestra's dbt plugin logs them, and `target/manifest.json` and `target/run_results.json` become
output files."""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any, ClassVar, cast

from kestractl.plugin import Prop, RunContext, register
from kestractl.plugins.clitools.base import CommandsTool, ToolTask, container_image

LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARN", "warning": "WARN", "error": "ERROR"}
# The runs whose dbt logged a warning (output `warningDetected`); a task object serves concurrent runs.
_WARNED: weakref.WeakSet[RunContext] = weakref.WeakSet()
PYTHON_ENV = {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore"}


class DbtTask(ToolTask):
    """What every dbt task shares: `profiles`, `projectDir`, the JSON log reader and the result files."""

    properties = {
        "containerImage": container_image("ghcr.io/kestra-io/dbt"),
        "profiles": Prop("The `profiles.yml` content to write before dbt runs.", type="string"),
        "projectDir": Prop("The dbt project's folder, relative to the working directory.", type="string"),
        "parseRunResults": Prop("Store `target/run_results.json` as an output file.", type="boolean", default=True),
    }
    outputs = {
        **ToolTask.outputs,
        "outputFiles": "`outputFiles` matches, plus `manifest.json` and `run_results.json` when dbt wrote them.",
        "warningDetected": "Whether dbt logged a warning.",
    }
    tool = "dbt"
    install = "pip install dbt-core and an adapter (e.g. dbt-duckdb, dbt-postgres)"
    profiles_file: ClassVar[str] = "profiles.yml"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        wd = ctx.working_directory()
        profiles = ctx.prop("profiles")
        if profiles:
            target = wd / self.profiles_file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(profiles, encoding="utf-8")
        outputs = super().run(ctx)
        files = {**outputs.get("outputFiles", {}), **self._result_files(ctx, wd)}
        return {**outputs, "warningDetected": ctx in _WARNED, **({"outputFiles": files} if files else {})}

    def extra_env(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        return dict(PYTHON_ENV)

    def _result_files(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        target = wd / (ctx.prop("projectDir") or "") / "target"
        names = ["manifest.json"] + (["run_results.json"] if ctx.prop("parseRunResults") else [])
        return {name: ctx.put_file(target / name, name) for name in names if (target / name).is_file()}

    def log_line(self, ctx: RunContext, is_stderr: bool, line: str) -> None:
        """A dbt JSON log line as `[Date: …] [Thread: …] [Type: …] message` at its level; other lines as they are."""
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            super().log_line(ctx, is_stderr, line)
            return
        info: dict[str, Any] = entry["info"] if isinstance(entry.get("info"), dict) else entry
        level = LEVELS.get(str(info.get("level")), "INFO")
        if level == "WARN":
            _WARNED.add(ctx)
        kind, thread = info.get("name") or info.get("type"), info.get("thread") or info.get("thread_name")
        ctx.log(level, f"[Date: {info.get('ts')}] [Thread: {thread}] [Type: {kind}] {info.get('msg') or ''}".rstrip())
        for name, count in ((entry.get("data") or {}).get("stats") or {}).items():
            ctx.metric(name, "counter", float(count))


@register
class DbtCLI(DbtTask, CommandsTool):
    """Run dbt commands: each line starting with `dbt` gets `--project-dir` (with `projectDir`), `--log-format`
    (unless `logFormat` is NONE) and `--log-path logs`, as Kestra adds them."""

    type_name = "io.kestra.plugin.dbt.cli.DbtCLI"
    properties = {
        "logFormat": Prop(
            "dbt's `--log-format`: JSON (read into log lines), TEXT, DEBUG or NONE (not added).",
            type="string",
            default="JSON",
            values=("JSON", "TEXT", "DEBUG", "NONE"),
        ),
        "engine": Prop(
            "CORE or FUSION: only picks the container image Kestra would use.",
            type="string",
            default="CORE",
            values=("CORE", "FUSION"),
        ),
    }

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        project, log_format = ctx.prop("projectDir"), ctx.prop("logFormat")
        lines = []
        for command in super().commands(ctx, wd, variables):
            if command.startswith("dbt"):
                command += f" --project-dir {project}" if project and "--project-dir" not in command else ""
                add_format = log_format != "NONE" and "--log-format" not in command
                command += f" --log-format {log_format.lower()}" if add_format else ""
                command += " --log-path logs" if "--log-path" not in command else ""
            lines.append(command)
        return lines


class DbtCommand(DbtTask):
    """Kestra's `AbstractRun`: one `dbt <command>` built from properties (no `commands`)."""

    properties = {
        "dbtPath": Prop(
            "The dbt executable (Kestra's `./bin/dbt`; `dbt` on PATH when that is absent).",
            type="string",
            default="./bin/dbt",
        ),
        "failFast": Prop("Stop at the first failure (`--fail-fast`).", type="boolean", default=False),
        "warnError": Prop("Treat warnings as errors (`--warn-error`).", type="boolean", default=False),
        "debug": Prop("dbt's `--debug`.", type="boolean", default=False),
        "thread": Prop("dbt's `--threads`.", type="integer"),
        "fullRefresh": Prop("dbt's `--full-refresh`.", type="boolean", default=False),
        "target": Prop("dbt's `--target`.", type="string"),
        "selector": Prop("dbt's `--selector`.", type="string"),
        "select": Prop("dbt's `--select`: the nodes to include.", type="array"),
        "exclude": Prop("dbt's `--exclude`: the nodes to leave out.", type="array"),
    }
    dbt_command: ClassVar[str] = ""
    profiles_file = ".profile/profiles.yml"

    def tool_path(self, ctx: RunContext) -> str:
        path = ctx.prop("dbtPath")
        absent = path == "./bin/dbt" and not (ctx.working_directory() / path).is_file()
        return "dbt" if absent else str(path)

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        parts = [self.tool_path(ctx), "--log-format json"]
        flags = (("--debug", "debug"), ("--fail-fast", "failFast"), ("--warn-error", "warnError"))
        parts += [flag for flag, name in flags if ctx.prop(name)]
        parts.append(self.dbt_command)
        parts += [f"--profiles-dir {wd}/.profile"] if ctx.prop("profiles") else []
        parts += [f"--threads {ctx.prop('thread')}"] if ctx.prop("thread") is not None else []
        parts += ["--full-refresh"] if ctx.prop("fullRefresh") else []
        parts += [f"--{name} {ctx.prop(name)}" for name in ("target", "selector") if ctx.prop(name)]
        parts += [f"--{name} {' '.join(map(str, ctx.prop(name)))}" for name in ("select", "exclude") if ctx.prop(name)]
        return [" ".join([*parts, f"--project-dir {wd / (ctx.prop('projectDir') or '')}"])]


def _command(name: str, command: str) -> type[DbtCommand]:
    """One of Kestra's dbt command tasks (`io.kestra.plugin.dbt.cli.<name>` runs `dbt <command>`)."""
    cls = cast(
        type[DbtCommand],
        type(
            name,
            (DbtCommand,),
            {
                "type_name": f"io.kestra.plugin.dbt.cli.{name}",
                "dbt_command": command,
                "__doc__": f"Run `dbt {command}`.",
                "__module__": __name__,
            },
        ),
    )
    register(cls)
    return cls


COMMANDS = {
    name: _command(name, command)
    for name, command in (
        ("Build", "build"),
        ("Run", "run"),
        ("Test", "test"),
        ("Compile", "compile"),
        ("Deps", "deps"),
        ("Freshness", "source freshness"),
        ("List", "list"),
        ("Seed", "seed"),
        ("Snapshot", "snapshot"),
    )
}
