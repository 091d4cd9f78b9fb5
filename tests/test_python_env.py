"""Python script tasks as Kestra 1.x users write them: `dependencies` in a cached environment, `kestra` module.

These install a small pure-Python package (`tabulate`) from the package index into a cache under tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, runs, state

from kestractl.tasks import environments
from kestractl.tasks._pythonpath import FOLDER

PACKAGE = "tabulate"
FLOW = """
id: deps
namespace: dev
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    dependencies: {dependencies}
    script: |
      import kestra, tabulate
      from kestra import Kestra
      Kestra.outputs({{"table": tabulate.tabulate([[1, 2]], tablefmt="plain"), "where": tabulate.__file__,
                       "kestra": kestra.__file__, "flag": true}})
"""


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KESTRACTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def deploy(cli: Cli, tmp_path: Path, source: str) -> None:
    (tmp_path / "flow.yml").write_text(source)
    result = cli("flow", "deploy", str(tmp_path / "flow.yml"))
    assert result.exit_code == 0, result.stdout + result.stderr


def environment_lines(text: str) -> list[str]:
    return [line.split(" py ", 1)[1] for line in text.splitlines() if "Python environment" in line]


def in_another_process(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kestractl", "--home", str(cli.home), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_dependencies_install_once_and_a_later_process_reuses_the_environment(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, FLOW.format(dependencies=f"[' {PACKAGE.upper()} ']"))
    first = cli("execute", "dev", "deps", "--json")
    created = environment_lines(first.stderr)
    assert first.exit_code == 0, first.stderr
    assert len(created) == 1 and created[0].startswith(f"Python environment ({PACKAGE}) created: ")
    env = Path(created[0].rsplit(": ", 1)[1])
    outputs = runs(json.loads(first.stdout), "py")[0]["outputs"]["vars"]
    assert outputs["table"] == "1  2" and outputs["flag"] is True
    assert Path(outputs["where"]).is_relative_to(env) and env.is_relative_to(tmp_path / "cache")
    (env / "sentinel").touch()  # a rebuild would remove it

    second = in_another_process(cli, "execute", "dev", "deps")
    assert second.returncode == 0, second.stderr
    assert environment_lines(second.stdout + second.stderr) == [f"Python environment ({PACKAGE}) reused: {env}"]
    assert (env / "sentinel").exists()


def test_the_kestra_module_is_there_inside_a_dependencies_environment(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, FLOW.format(dependencies=f"[{PACKAGE}]"))
    code, execution = cli.execute("dev", "deps")
    assert code == 0
    assert runs(execution, "py")[0]["outputs"]["vars"]["kestra"] == str(Path(FOLDER) / "kestra.py")


def test_two_processes_asking_for_the_same_environment_at_once_build_it_once(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, FLOW.format(dependencies=f"[{PACKAGE}]"))
    argv = [sys.executable, "-m", "kestractl", "--home", str(cli.home), "execute", "dev", "deps"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    words = sorted(environment_lines(out)[0].split(") ")[1].split(":")[0] for out in outputs)
    assert words == ["created", "reused"]


def test_a_package_that_does_not_exist_fails_the_task_with_one_line_naming_it(cli: Cli, tmp_path: Path) -> None:
    deploy(cli, tmp_path, FLOW.format(dependencies="[kestractl-no-such-package-4711]"))
    code, execution = cli.execute("dev", "deps")
    assert code == 1 and state(execution) == "FAILED"
    logs = cli("executions", "logs", execution["id"]).stdout
    errors = [line for line in logs.splitlines() if "Failed to install" in line]
    assert len(errors) == 1 and "kestractl-no-such-package-4711" in errors[0]
    assert "Traceback" not in logs
    assert not any((Path(os.environ["KESTRACTL_CACHE_DIR"]) / "python").glob("*/bin"))  # no half-built env left


def test_without_the_cache_the_environment_lives_in_the_working_directory(cli: Cli, tmp_path: Path) -> None:
    uncached = "    dependencyCacheEnabled: false\n    dependencies:"
    flow = FLOW.format(dependencies=f"[{PACKAGE}]").replace("    dependencies:", uncached)
    deploy(cli, tmp_path, flow)
    code, execution = cli.execute("dev", "deps")
    assert code == 0
    where = Path(runs(execution, "py")[0]["outputs"]["vars"]["where"])
    assert ".kestra_python_env" in where.parts
    assert not (Path(os.environ["KESTRACTL_CACHE_DIR"]) / "python").exists()


def run_stand_in(source: str) -> subprocess.CompletedProcess[str]:
    """Python without site-packages (`-S`): the stand-in module is the only `kestra` to find."""
    env = {**os.environ, "PYTHONPATH": FOLDER}
    return subprocess.run([sys.executable, "-S", "-c", source], capture_output=True, text=True, env=env, check=True)


def payloads(text: str) -> list[Any]:
    return [json.loads(line[2:-2]) for line in text.splitlines()]


def test_the_stand_in_kestra_module_prints_what_the_task_parses() -> None:
    done = run_stand_in(
        "import kestra\nfrom kestra import Kestra\nprint(kestra.__file__)\n"
        "Kestra.outputs({'a': [1]})\nKestra.counter('rows', 3, {'t': 'x'})\nKestra.timer('took', lambda: None)\n"
        "Kestra.logger().info('hello')\nKestra.logger().error('bad')"
    )
    where, *lines = done.stdout.splitlines()
    assert where == str(Path(FOLDER) / "kestra.py")
    outputs, counter, timer, info = payloads("\n".join(lines))
    assert outputs == {"outputs": {"a": [1]}}
    assert counter == {"metrics": [{"name": "rows", "type": "counter", "value": 3, "tags": {"t": "x"}}]}
    assert timer["metrics"][0]["type"] == "timer" and 0 <= timer["metrics"][0]["value"] < 1
    assert info["logs"][0]["level"] == "INFO" and info["logs"][0]["message"].endswith("Z - hello")
    assert payloads(done.stderr)[0]["logs"][0]["level"] == "ERROR"


def test_the_stand_in_steps_aside_for_an_installed_kestra_package() -> None:
    official = pytest.importorskip("kestra")  # the test extras install it
    env = {**os.environ, "PYTHONPATH": FOLDER}
    source = "import kestra; print(kestra.__file__, hasattr(kestra, 'Flow'))"
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == [official.__file__, "True"]


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ([" Foo_Bar >= 1 ", "foo-bar>=1", "", "Requests"], ["foo-bar>=1", "requests"]),
        (['pkg ; python_version < "4" and os_name == "posix"'], ['pkg;python_version<"4" and os_name=="posix"']),
    ],
)
def test_requirements_are_normalised_into_one_key(given: list[str], key: list[str]) -> None:
    assert environments.normalise(given) == key


def test_a_python_version_that_is_not_installed_is_one_clear_line() -> None:
    with pytest.raises(Exception, match=r"^pythonVersion: Python 2\.1 is not installed on this machine$"):
        environments.find_python("2.1")
    assert environments.find_python(".".join(map(str, sys.version_info[:2]))) == sys.executable


def test_python_commands_find_the_dependencies_on_path(cli: Cli, tmp_path: Path) -> None:
    deploy(
        cli,
        tmp_path,
        "id: deps\nnamespace: dev\ntasks:\n  - id: py\n    type: io.kestra.plugin.scripts.python.Commands\n"
        f"    taskRunner: {{type: io.kestra.plugin.core.runner.Process}}\n    dependencies: [{PACKAGE}]\n"
        "    commands:\n      - python -c 'import tabulate, sys; print(sys.prefix)'\n",
    )
    code, execution = cli.execute("dev", "deps")
    assert code == 0
    logs = cli("executions", "logs", execution["id"]).stdout
    assert str(Path(os.environ["KESTRACTL_CACHE_DIR"]) / "python") in logs.splitlines()[-1]


def test_a_python_version_alone_runs_in_an_environment_of_that_interpreter(cli: Cli, tmp_path: Path) -> None:
    version = ".".join(map(str, sys.version_info[:2]))
    deploy(
        cli,
        tmp_path,
        "id: deps\nnamespace: dev\ntasks:\n  - id: py\n    type: io.kestra.plugin.scripts.python.Script\n"
        f"    taskRunner: {{type: io.kestra.plugin.core.runner.Process}}\n    pythonVersion: '{version}'\n"
        "    script: import sys; print(sys.prefix)\n",
    )
    result = cli("execute", "dev", "deps", "--json")
    assert result.exit_code == 0, result.stderr
    created, prefix = [line.split(" py ", 1)[1] for line in result.stderr.splitlines() if " py " in line]
    assert created == f"Python environment (no packages) created: {prefix}"


def test_pip_as_package_manager_builds_the_same_environment(cli: Cli, tmp_path: Path) -> None:
    with_pip = "    packageManager: PIP\n    dependencies:"
    deploy(cli, tmp_path, FLOW.format(dependencies=f"[{PACKAGE}]").replace("    dependencies:", with_pip))
    code, execution = cli.execute("dev", "deps")
    assert code == 0
    where = Path(runs(execution, "py")[0]["outputs"]["vars"]["where"])
    env = next(parent for parent in where.parents if (parent / "pyvenv.cfg").exists())
    assert env.parent == Path(os.environ["KESTRACTL_CACHE_DIR"]) / "python"
    assert "uv" not in (env / "pyvenv.cfg").read_text()  # `uv venv` writes its version there
