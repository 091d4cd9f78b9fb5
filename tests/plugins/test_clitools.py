"""CLI-tool tasks. Fake tools (small scripts put first on the flow's PATH) prove the command plumbing: commands,
env, inputFiles, outputFiles, the flags dbt tasks add and how dbt's JSON logs are read. They prove nothing about
the real tools: real Terraform, ansible-playbook (a test dependency) and dbt (installed by uv in CI) run below."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, needs_tool, runs, state

# The test interpreter's own scripts (ansible-playbook, dbt when installed) first, then the PATH.
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def fake_tool(folder: Path, name: str, body: str) -> Path:
    """An executable `name` in `folder` that prints its arguments, then runs `body` (sh)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} args: $*"\n{body}\n')
    path.chmod(0o755)
    return folder


def run_flow(cli: Cli, tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    deployed = cli("flow", "deploy", str(path))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    return cli.execute("dev", "tool")[1]


def logs(cli: Cli, execution: dict[str, Any]) -> str:
    text: str = cli("executions", "logs", execution["id"]).stdout
    return text


def outputs(execution: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = runs(execution, "t")[0]["outputs"]
    return result


def flow(task_type: str, body: str) -> str:
    return f"id: tool\nnamespace: dev\ntasks:\n  - id: t\n    type: {task_type}\n{body}"


def stored(cli: Cli, execution: dict[str, Any], uri: str) -> str:
    text: str = cli("executions", "file", execution["id"], uri).stdout
    return text


def test_terraform_cli_runs_commands_with_env_input_and_output_files(cli: Cli, tmp_path: Path) -> None:
    plan = 'if [ "$1" = plan ]; then cat main.tf > plan.out; echo "$TF_VAR_region" >> plan.out; fi'
    bin_dir = fake_tool(tmp_path / "bin", "terraform", plan)
    body = f"""    env:
      PATH: "{bin_dir}:{os.environ["PATH"]}"
      TF_VAR_region: "eu-{{{{ flow.id }}}}"
    inputFiles:
      main.tf: 'resource "null_resource" "x" {{}}'
    beforeCommands:
      - terraform init
    commands:
      - terraform plan -out plan.out
    outputFiles:
      - plan.out
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.terraform.cli.TerraformCLI", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    text = logs(cli, execution)
    assert "terraform args: init" in text and "terraform args: plan -out plan.out" in text
    assert "Task runner 'io.kestra.plugin.scripts.runner.docker.Docker' is not available" in text
    assert "'hashicorp/terraform'" in text
    out = outputs(execution)
    assert out["exitCode"] == 0
    assert stored(cli, execution, out["outputFiles"]["plan.out"]) == 'resource "null_resource" "x" {}eu-tool\n'


@pytest.mark.parametrize(
    ("task_type", "tool", "install"),
    [
        ("io.kestra.plugin.terraform.cli.TerraformCLI", "terraform", "install Terraform"),
        ("io.kestra.plugin.dbt.cli.DbtCLI", "dbt", "pip install dbt-core"),
        ("io.kestra.plugin.ansible.cli.AnsibleCLI", "ansible-playbook", "pip install ansible-core"),
    ],
)
def test_a_missing_tool_fails_with_one_line_naming_it(
    cli: Cli, tmp_path: Path, task_type: str, tool: str, install: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    body = f'    env:\n      PATH: "{empty}:/usr/bin:/bin"\n    commands:\n      - {tool} --version\n'
    execution = run_flow(cli, tmp_path, flow(task_type, body))
    assert state(execution) == "FAILED"
    errors = [line for line in logs(cli, execution).splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"{tool} is not installed or not on PATH: {install}" in errors[0], errors


def test_a_tool_still_missing_after_before_commands_is_named(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    body = f"""    env:
      PATH: "{empty}:/usr/bin:/bin"
    beforeCommands:
      - echo setting up
    commands:
      - terraform init
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.terraform.cli.TerraformCLI", body))
    assert state(execution) == "FAILED"
    assert "terraform is not installed or not on PATH" in logs(cli, execution).splitlines()[-1]


INFO_LINE = {"level": "info", "msg": "Running with dbt=1.9.0", "name": "MainReportVersion", "ts": "T1"}
WARN_LINE = {"level": "warn", "msg": "a deprecated config", "name": "Deprecation", "ts": "T2"}
DBT_BODY = f"""mkdir -p target
echo '{json.dumps({"info": {**INFO_LINE, "thread": "MainThread"}})}'
echo '{json.dumps({"info": {**WARN_LINE, "thread": "MainThread"}, "data": {"stats": {"pass": 2}}})}'
echo '{{"metadata": {{}}}}' > target/manifest.json
echo '{{"results": []}}' > target/run_results.json
cat profiles.yml .profile/profiles.yml 2>/dev/null || true"""


def test_dbt_cli_adds_kestras_flags_reads_json_logs_and_stores_results(cli: Cli, tmp_path: Path) -> None:
    bin_dir = fake_tool(tmp_path / "bin", "dbt", DBT_BODY)
    body = f"""    env:
      PATH: "{bin_dir}:{os.environ["PATH"]}"
    profiles: "jaffle: {{target: dev}}"
    commands:
      - dbt deps
      - dbt build --select orders
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.dbt.cli.DbtCLI", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    text = logs(cli, execution)
    assert "dbt args: build --select orders --log-format json --log-path logs" in text
    assert "INFO  t [Date: T1] [Thread: MainThread] [Type: MainReportVersion] Running with dbt=1.9.0" in text
    assert "WARN  t [Date: T2] [Thread: MainThread] [Type: Deprecation] a deprecated config" in text
    assert "jaffle: {target: dev}" in text
    out = outputs(execution)
    assert out["warningDetected"] is True
    assert json.loads(stored(cli, execution, out["outputFiles"]["run_results.json"])) == {"results": []}
    assert set(out["outputFiles"]) == {"manifest.json", "run_results.json"}


def test_dbt_build_builds_its_command_from_properties(cli: Cli, tmp_path: Path) -> None:
    bin_dir = fake_tool(tmp_path / "bin", "dbt", DBT_BODY)
    body = f"""    env:
      PATH: "{bin_dir}:{os.environ["PATH"]}"
    profiles: "jaffle: {{target: prod}}"
    projectDir: project
    thread: 4
    fullRefresh: true
    select: [orders, customers]
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.dbt.cli.Build", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    line = next(x for x in logs(cli, execution).splitlines() if "dbt args:" in x)
    args = line.split("dbt args: ")[1]
    assert args.startswith("--log-format json build --profiles-dir /") and "/.profile --threads 4" in args
    assert args.endswith("--full-refresh --select orders customers --project-dir " + args.split()[-1])
    assert args.split()[-1].endswith("/project")
    assert "jaffle: {target: prod}" in logs(cli, execution)


def test_ansible_cli_runs_in_bash_and_stores_its_log(cli: Cli, tmp_path: Path) -> None:
    bin_dir = fake_tool(tmp_path / "bin", "ansible-playbook", 'echo "ran $1" >> "$ANSIBLE_LOG_PATH"')
    body = f"""    env:
      PATH: "{bin_dir}:{os.environ["PATH"]}"
    inputFiles:
      site.yml: "- hosts: localhost"
    outputLogFile: true
    commands:
      - ansible-playbook site.yml
      - echo "shell=${{BASH_VERSION:+bash}}"
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.ansible.cli.AnsibleCLI", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    assert "ansible-playbook args: site.yml" in logs(cli, execution) and "shell=bash" in logs(cli, execution)
    assert stored(cli, execution, outputs(execution)["outputFiles"]["log"]) == "ran site.yml\n"


@needs_tool("terraform")
def test_real_terraform_applies_a_local_configuration(cli: Cli, tmp_path: Path) -> None:
    """The real `terraform` binary, offline: no provider, a variable from `env`, an output read back."""
    body = """    env:
      TF_VAR_name: kestra
      CHECKPOINT_DISABLE: "1"
      TF_IN_AUTOMATION: "1"
    inputFiles:
      main.tf: |
        variable "name" {}
        output "greeting" { value = "hello ${var.name}" }
    beforeCommands:
      - terraform init -input=false -no-color
    commands:
      - terraform apply -auto-approve -input=false -no-color
      - terraform output -raw greeting > greeting.txt
    outputFiles:
      - greeting.txt
      - terraform.tfstate
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.terraform.cli.TerraformCLI", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    out = outputs(execution)
    assert stored(cli, execution, out["outputFiles"]["greeting.txt"]) == "hello kestra"
    assert json.loads(stored(cli, execution, out["outputFiles"]["terraform.tfstate"]))["outputs"]["greeting"] == {
        "value": "hello kestra",
        "type": "string",
    }
    assert "Apply complete!" in logs(cli, execution)


@needs_tool("ansible-playbook", path=VENV_PATH)
def test_real_ansible_runs_a_playbook_on_localhost(cli: Cli, tmp_path: Path) -> None:
    """The real `ansible-playbook` (ansible-core, a test dependency): a local play writes a file, stored as output."""
    body = f"""    env:
      PATH: "{VENV_PATH}"
      LC_ALL: C.UTF-8
      ANSIBLE_NOCOLOR: "1"
    inputFiles:
      inventory.ini: "localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
      site.yml: |
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.copy:
                content: hello from ansible
                dest: "{{{{ workingDir }}}}/greeting.txt"
    outputLogFile: true
    commands:
      - ansible-playbook -i inventory.ini site.yml
    outputFiles:
      - greeting.txt
"""
    execution = run_flow(cli, tmp_path, flow("io.kestra.plugin.ansible.cli.AnsibleCLI", body))
    assert state(execution) == "SUCCESS", logs(cli, execution)
    out = outputs(execution)
    assert stored(cli, execution, out["outputFiles"]["greeting.txt"]) == "hello from ansible"
    assert "ok=1" in logs(cli, execution) and "changed=1" in logs(cli, execution)
    assert "PLAY RECAP" in stored(cli, execution, out["outputFiles"]["log"])


DBT_PROJECT = """    inputFiles:
      dbt_project.yml: |
        name: shop
        version: "1.0"
        profile: shop
      models/customers.sql: select 1 as id, 'ada' as name
    profiles: |
      shop:
        target: dev
        outputs:
          dev:
            type: duckdb
            path: shop.duckdb
"""


@pytest.fixture(scope="session")
def dbt_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with a real `dbt` (and dbt-duckdb): the installed one, else (in CI; skipped elsewhere) one that uv
    installs into a venv of its own. dbt is not a test dependency: dbt-core pins pathspec below 1.0, which mypy
    needs; 1.9 is the last dbt-core that installs from PyPI alone (1.10+ fetch a parser from GitHub)."""
    if shutil.which("dbt", path=VENV_PATH):
        return VENV_PATH
    if os.environ.get("CI") != "true":
        pytest.skip("dbt-core and dbt-duckdb are not installed")
    venv = tmp_path_factory.mktemp("dbt")
    uv = shutil.which("uv", path=VENV_PATH) or "uv"
    subprocess.run([uv, "venv", "-q", str(venv)], check=True)
    packages = ["dbt-core>=1.9,<1.10", "dbt-duckdb>=1.9,<1.10"]
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *packages], check=True)
    return f"{venv / 'bin'}{os.pathsep}{VENV_PATH}"


@pytest.mark.parametrize("task_type", ["io.kestra.plugin.dbt.cli.DbtCLI", "io.kestra.plugin.dbt.cli.Build"])
def test_real_dbt_builds_a_duckdb_project(cli: Cli, tmp_path: Path, task_type: str, dbt_path: str) -> None:
    commands = "    commands:\n      - dbt build\n" if task_type.endswith("DbtCLI") else ""
    env = f'    env:\n      PATH: "{dbt_path}"\n      DBT_SEND_ANONYMOUS_USAGE_STATS: "false"\n'
    execution = run_flow(cli, tmp_path, flow(task_type, env + DBT_PROJECT + commands))
    text = logs(cli, execution)
    assert state(execution) == "SUCCESS", text
    assert "[Type: MainReportVersion] Running with dbt=" in text and "Completed successfully" in text
    out = outputs(execution)
    results = json.loads(stored(cli, execution, out["outputFiles"]["run_results.json"]))
    assert [(r["unique_id"], r["status"]) for r in results["results"]] == [("model.shop.customers", "success")]
    assert out["warningDetected"] is False and "manifest.json" in out["outputFiles"]
