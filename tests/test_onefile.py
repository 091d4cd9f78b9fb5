"""kestractl.pyz, the one-file build: built once per session by `python -m build_onefile` into a scratch folder,
then run as a user would, from a folder outside the clone, by a Python that has no kestractl of its own (an
empty venv): `--version`, deploy and execute the seed's flow, jq and a plugin in a child process and from the
Python's own path, and a real `server standalone` answering `/api/v1/flows`. In CI (`CI=true`) a build that
fails fails the test; on a developer's machine without PyPI it skips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kestractl import __version__

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin-hello" / "kestractl_hello.py"
FLOW = """\
id: outside
namespace: dev
inputs:
  - id: document
    type: STRING
    defaults: '{"who": "pyz"}'
tasks:
  - id: greet
    type: io.kestra.plugin.hello.Greet
    name: "{{ inputs.document | jq('.who') | first }}"
"""


@dataclass
class OneFile:
    """The built file, the Python that runs it and the outside folder it runs in."""

    pyz: Path
    python: Path
    folder: Path

    def env(self, **extra: str) -> dict[str, str]:
        home, cache = str(self.folder / "home"), str(self.folder / "unpacked")
        return {**os.environ, "KESTRACTL_HOME": home, "KESTRACTL_ONEFILE_CACHE": cache, **extra}

    def run(self, *args: str, pyz: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.python), str(pyz or self.pyz), *args]
        return subprocess.run(command, cwd=self.folder, env=self.env(**env), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> OneFile:
    folder = tmp_path_factory.mktemp("onefile")
    pyz = folder / "dist" / "kestractl.pyz"
    built = subprocess.run(
        [sys.executable, "-m", "build_onefile", "--output", str(pyz)], cwd=ROOT, capture_output=True, text=True
    )
    if built.returncode != 0:
        message = f"python -m build_onefile failed: {built.stderr[-2000:]}"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    venv.create(folder / "python", with_pip=False)
    python = folder / "python" / "bin" / "python"
    outside = folder / "outside"
    outside.mkdir()
    assert subprocess.run([python, "-c", "import kestractl"], cwd=outside, capture_output=True).returncode != 0
    return OneFile(pyz, python, outside)


def test_version_unpacks_once_into_the_cache(onefile: OneFile) -> None:
    first = onefile.run("--version")
    assert first.returncode == 0 and first.stdout == f"kestractl {__version__}\n", first.stderr
    (unpacked,) = (onefile.folder / "unpacked").iterdir()
    assert (unpacked / "kestractl" / "cli" / "__init__.py").is_file() and (unpacked / "duckdb").is_dir()
    path = f"{onefile.python.parent}{os.pathsep}{os.environ['PATH']}"  # `#!/usr/bin/env python3` finds this one
    again = subprocess.run([onefile.pyz, "--version"], env=onefile.env(PATH=path), capture_output=True, text=True)
    assert again.stdout == first.stdout and list((onefile.folder / "unpacked").iterdir()) == [unpacked]


def test_a_python_the_file_was_not_built_for_is_refused_in_one_line(onefile: OneFile) -> None:
    other = onefile.folder / "other.pyz"
    with zipfile.ZipFile(onefile.pyz) as built, zipfile.ZipFile(other, "w") as copy:
        for info in built.infolist():  # this Python's payload renamed to another version's
            name = re.sub(r"payload-cp\d+", "payload-cp399", info.filename)
            copy.writestr(name, built.read(info))
    refused = onefile.run("--version", pyz=other, KESTRACTL_ONEFILE_CACHE=str(onefile.folder / "other"))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == f"kestractl: {other} was built for another Python: run it with python3.99\n"


def test_a_damaged_file_is_refused_in_one_line_and_leaves_no_folder(onefile: OneFile) -> None:
    damaged, cache = onefile.folder / "damaged.pyz", onefile.folder / "damaged"
    data = bytearray(onefile.pyz.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)  # inside the payload's compressed tar
    damaged.write_bytes(data)
    refused = onefile.run("--version", pyz=damaged, KESTRACTL_ONEFILE_CACHE=str(cache))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(f"kestractl: {damaged} is damaged (") and list(cache.iterdir()) == []


def test_deploy_and_execute_the_seed_flow(onefile: OneFile) -> None:
    shutil.copy(ROOT / "sample_flows" / "hello-world.yaml", onefile.folder)
    deployed = onefile.run("flow", "deploy", "hello-world.yaml")
    assert deployed.returncode == 0, deployed.stderr
    executed = onefile.run("execute", "dev", "hello-world", "--json", NO_COLOR="1")
    assert executed.returncode == 0, executed.stderr
    assert json.loads(executed.stdout)["state"]["current"] == "SUCCESS"


def test_a_plugin_on_the_pythons_path_and_jq_in_its_child_process(onefile: OneFile) -> None:
    """A plugin is found through the entry points of the running Python's path (here PYTHONPATH); the jq
    filter runs in a child process that must find the unpacked `jq`."""
    plugins = onefile.folder / "plugins"
    info = plugins / "kestractl_plugin_hello-0.1.0.dist-info"
    info.mkdir(parents=True)
    shutil.copy(PLUGIN, plugins)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kestractl-plugin-hello\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[kestractl.plugins]\nhello = kestractl_hello\n")
    (onefile.folder / "outside.yaml").write_text(FLOW)
    assert onefile.run("flow", "deploy", "outside.yaml", PYTHONPATH=str(plugins)).returncode == 0
    executed = onefile.run("execute", "dev", "outside", "--json", PYTHONPATH=str(plugins))
    assert executed.returncode == 0, executed.stderr
    (greet,) = json.loads(executed.stdout)["taskRunList"]
    assert greet["outputs"]["greeting"] == "Hello, pyz!"


@pytest.fixture
def server(onefile: OneFile) -> Iterator[str]:
    flows = onefile.folder / "flows"
    flows.mkdir(exist_ok=True)
    shutil.copy(ROOT / "sample_flows" / "hello-world.yaml", flows)
    log = onefile.folder / "server.log"
    command = [str(onefile.python), str(onefile.pyz), "server", "standalone", "--port", "0", "--flow-path", str(flows)]
    env = onefile.env(NO_COLOR="1", KESTRACTL_HOME=str(onefile.folder / "server"))  # a home with no other flow
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=onefile.folder, env=env, stdout=out, stderr=out)
    try:
        yield _listening(log, process)
    finally:
        process.terminate()
        process.wait(30)


def _listening(log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while not (found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return found.group(1)


def _call(method: str, url: str) -> object:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_server_standalone_answers_the_flows_api_and_runs_a_flow(onefile: OneFile, server: str) -> None:
    deadline = time.monotonic() + 30
    while not (flows := _call("GET", f"{server}/api/v1/flows/dev")) and time.monotonic() < deadline:
        time.sleep(0.1)  # the flow folder is read just after the server starts listening
    assert isinstance(flows, list) and [f["id"] for f in flows] == ["hello-world"]
    execution = _call("POST", f"{server}/api/v1/executions/dev/hello-world?wait=true")
    assert isinstance(execution, dict) and execution["state"]["current"] == "SUCCESS"
