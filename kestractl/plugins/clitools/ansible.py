"""`io.kestra.plugin.ansible.cli.AnsibleCLI`: `ansible-playbook` and friends in the task's working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kestractl.plugin import Prop, RunContext, register
from kestractl.plugins.clitools.base import CommandsTool, container_image

PYTHON_REQUIREMENTS = "[ ! -f requirements.txt ] || pip install --no-cache-dir -r requirements.txt"
GALAXY_REQUIREMENTS = "[ ! -f requirements.yml ] || ansible-galaxy install -r requirements.yml"


@register
class AnsibleCLI(CommandsTool):
    """Run Ansible commands in bash; `requirements.txt` and `requirements.yml` of the working directory are
    installed first, as Kestra does. Kestra's callback plugin (per-host results as outputs) is not shipped."""

    type_name = "io.kestra.plugin.ansible.cli.AnsibleCLI"
    properties = {
        "containerImage": container_image("cytopia/ansible:latest-tools"),
        "ansibleConfig": Prop(
            "The `ansible.cfg` written into the working directory (rendered; `{{ workingDir }}`).", type="string"
        ),
        "outputsMode": Prop(
            "Accepted for Kestra compatibility: per-host results are not captured here.",
            type="string",
            default="ALL",
            values=("ALL", "EXPLICIT"),
        ),
        "outputLogFile": Prop("Store Ansible's log file as output file `log`.", type="boolean", default=False),
        "autoInstallPythonRequirements": Prop(
            "Install `requirements.txt` with pip first when present.", type="boolean", default=True
        ),
        "autoInstallGalaxyRequirements": Prop(
            "Install `requirements.yml` with ansible-galaxy first when present.", type="boolean", default=True
        ),
    }
    tool = "ansible-playbook"
    install = "pip install ansible-core"

    def interpreter(self) -> list[str]:
        return ["/bin/bash", "-c"]

    def commands(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> list[str]:
        config = self.props.get("ansibleConfig")  # rendered with the script's variables (`workingDir`)
        if config:
            (wd / "ansible.cfg").write_text(str(ctx.render(config, variables)), encoding="utf-8")
        automatic = [PYTHON_REQUIREMENTS] if ctx.prop("autoInstallPythonRequirements") else []
        automatic += [GALAXY_REQUIREMENTS] if ctx.prop("autoInstallGalaxyRequirements") else []
        return automatic + super().commands(ctx, wd, variables)

    def extra_env(self, ctx: RunContext, wd: Path) -> dict[str, str]:
        return {"ANSIBLE_LOG_PATH": str(wd / "log")} if ctx.prop("outputLogFile") else {}

    def collect_outputs(self, ctx: RunContext, wd: Path, variables: dict[str, Any]) -> dict[str, str]:
        files = super().collect_outputs(ctx, wd, variables)
        log = wd / "log"
        if ctx.prop("outputLogFile") and log.is_file():
            files["log"] = ctx.put_file(log, "log")
        return files
