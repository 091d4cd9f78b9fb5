"""A script task that runs one command-line tool: Kestra's commands, beforeCommands, env, inputFiles, outputFiles,
namespaceFiles, containerImage and taskRunner (every runner runs here as a local process), plus a one-line failure
naming the tool and how to install it when the tool is not on PATH."""

from __future__ import annotations

import os
import shutil
from typing import Any, ClassVar

from kestractl.plugin import ExecScript, Prop, RunContext, TaskError

EXIT_NOT_FOUND = 127  # the shell's "command not found"


def container_image(image: str) -> Prop:
    """`containerImage` with the tool's Kestra default (no container runs here)."""
    return Prop("The container image, only used if the task runner is container-based.", "string", default=image)


class ToolTask(ExecScript):
    """Runs `tool`; when it is not on PATH, fails with `<tool> is not installed: <install>`."""

    outputs = {
        "exitCode": "The exit code of the commands.",
        "vars": 'Values printed as `::{"outputs": {...}}::`.',
        "outputFiles": "The files matching `outputFiles`, name → kestra:// URI.",
        "stdOutLineCount": "Lines printed on stdout.",
        "stdErrLineCount": "Lines printed on stderr.",
    }
    tool: ClassVar[str] = ""
    install: ClassVar[str] = ""

    def missing(self) -> str:
        return f"{self.tool} is not installed or not on PATH: {self.install}"

    def on_path(self, ctx: RunContext, path: str | None = None) -> bool:
        """Whether the tool is found on PATH (the flow's `env` PATH when it sets one) or in the working directory."""
        search = path or str((self.props.get("env") or {}).get("PATH") or os.environ.get("PATH", ""))
        search = os.pathsep.join([str(ctx.working_directory()), search])
        return shutil.which(self.tool_path(ctx), path=ctx.render(search)) is not None

    def tool_path(self, ctx: RunContext) -> str:
        return self.tool

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Checked up front unless `beforeCommands` may install it; then a "command not found" exit names it."""
        if not self.props.get("beforeCommands") and not self.on_path(ctx):
            raise TaskError(self.missing())
        return super().run(ctx)

    def failure(self, ctx: RunContext, exit_code: int, env: dict[str, str]) -> TaskError:
        if exit_code == EXIT_NOT_FOUND and not self.on_path(ctx, env.get("PATH")):
            return TaskError(self.missing())
        return super().failure(ctx, exit_code, env)


class CommandsTool(ToolTask):
    """A tool task driven by `commands` (Kestra's `TerraformCLI`, `AnsibleCLI`, `DbtCLI`)."""

    properties = {"commands": Prop("The commands to run, one after the other, in `/bin/sh -c`.", required=True)}

    @classmethod
    def own_problems(cls, spec: dict[str, Any]) -> list[str]:
        commands = spec.get("commands")
        return ["commands: must not be empty"] if commands is not None and not commands else []
