"""Documentation that cannot drift: the task reference in docs/flows.md is what the registry declares, README's
marked examples run against a live server, and docs/ links nowhere outside the repository."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kestractl.tasks import reference, registry
from tests.services.kestractl_server import standalone


def test_task_reference_matches_the_declarations() -> None:
    page = reference.PAGE.read_text()
    assert reference.render() in page, "docs/flows.md is stale: run `python -m kestractl.tasks.reference`"


def test_every_registered_type_and_property_is_documented() -> None:
    page = reference.PAGE.read_text()
    for name, cls in registry.all_types().items():
        if "$" in name:  # ForEachItem's hidden children
            continue
        assert f"`{name}`" in page, name
        section = page.split(f"### `{cls.type_name}`", 1)[1].split("\n### ", 1)[0]
        for prop in cls.all_properties():
            assert f"| `{prop}` |" in section, f"{cls.type_name}.{prop}"


# ---------------------------------------------------------------- README's examples, run as a new user would

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXE = str(Path(sys.executable).parent / "kestractl")
# A fenced block right under `<!-- runnable … -->` is run; every other block is prose (placeholders, other machines).
RUNNABLE = re.compile(r"^<!-- runnable(?P<note>[^>]*)-->\n```(?P<lang>\w+)\n(?P<code>.*?)^```", re.M | re.S)
# The files README's session names, in the folder the blocks run in (beside flows/, a copy of sample_flows/).
MY_FLOW = (
    "id: my-flow\nnamespace: dev\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
)
PAUSING_FLOW = (
    "id: wait-for-me\nnamespace: docs.readme\ntasks:\n  - id: approve\n    type: io.kestra.plugin.core.flow.Pause\n"
    "  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: resumed\n"
)
ENDED = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


@dataclass
class Block:
    line: int  # README line of the opening fence
    lang: str
    code: str
    note: str


def runnable_blocks() -> list[Block]:
    text = README.read_text()
    return [
        Block(text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["code"], m["note"].strip())
        for m in RUNNABLE.finditer(text)
    ]


def logical_lines(code: str) -> list[tuple[int, str]]:
    """(offset, command) per command of a shell block: `\\` continuations joined, comments and blanks left out."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for offset, line in enumerate(code.splitlines(), 1):
        start, text = pending or (offset, "")
        text += line.rstrip("\\") if line.endswith("\\") else line
        pending = (start, text) if line.endswith("\\") else None
        if pending is None and text.strip() and not text.lstrip().startswith("#"):
            out.append((start, text))
    return out


@dataclass
class Session:
    """A live `server standalone` and the folder README's blocks run in; the executions they talk about."""

    url: str
    home: Path
    folder: Path
    done: str = ""
    paused: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, body: str = "") -> Any:
        headers = {"Content-Type": "application/x-yaml"} if body else {}
        request = urllib.request.Request(self.url + path, body.encode() or None, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def state(self, execution_id: str) -> str:
        return str(self.api("GET", f"/api/v1/executions/{execution_id}")["state"]["current"])

    def wait_for(self, execution_id: str, states: set[str]) -> None:
        deadline = time.monotonic() + 60
        while self.state(execution_id) not in states:
            assert time.monotonic() < deadline, f"{execution_id} is {self.state(execution_id)}, not {states}"
            time.sleep(0.05)

    def fill(self, line: str) -> str:
        """This server's URL for README's; curl that fails on an error status; the execution a call needs."""
        line = re.sub(r"https?://[\w.-]+(:\d+)?", self.url, line)  # localhost:8080, build-box, kestra.example.com
        line = re.sub(r"^curl ", "curl -sS --fail-with-body --max-time 60 ", line)
        wanted = self.paused[0] if "/resume" in line else self.paused[1] if "/kill" in line else self.done
        return line.replace("EXECUTION_ID", wanted)

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KESTRACTL_HOME=str(self.home), NO_COLOR="1")
        env["PATH"] = f"{Path(EXE).parent}{os.pathsep}{env['PATH']}"
        if block.lang == "python":
            command = [sys.executable, "-c", self.fill(block.code)]
        else:  # each command on its own, so a failure names its README line (`a && b` escapes `set -e`)
            steps = [
                f'{{ {self.fill(text)}\n}} || {{ echo "README.md:{block.line + offset} failed" >&2; exit 1; }}'
                for offset, text in logical_lines(block.code)
            ]
            command = ["bash", "-c", "set -uo pipefail\n" + "\n".join(steps)]
        return subprocess.run(command, cwd=self.folder, env=env, capture_output=True, text=True, timeout=300)


def server_command(blocks: list[Block]) -> list[str]:
    """The first command of the block marked `runnable server`, run as this environment's kestractl."""
    block = next(b for b in blocks if b.note.startswith("server"))
    words = shlex.split(logical_lines(block.code)[0][1], comments=True)
    assert words[:3] == ["kestractl", "server", "standalone"], words
    return [EXE, *words[1:], "--grace", "2"]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "sample_flows", folder / "flows", ignore=shutil.ignore_patterns("data"))
    for name in ("sample_flows", "sample_tests"):
        (folder / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "sample_flows" / "data" / "orders.csv", folder / "orders.csv")
    (folder / "flow.yaml").write_text(MY_FLOW)
    (folder / "all-dev-flows.yaml").write_text(
        (ROOT / "sample_flows" / "hello-world.yaml").read_text() + "---\n" + MY_FLOW
    )
    home = folder / "home"
    with standalone(server_command(runnable_blocks()), home, folder, folder / "server.log") as url:
        yield Session(url, home, folder)


def test_readme_marks_its_examples_runnable() -> None:
    """The server, the curl session (webhook included), the Python client and the CLI examples are all marked."""
    blocks = runnable_blocks()
    marked = "\n".join(b.code for b in blocks)
    for example in ("server standalone", "webhook/dev/hello-world/secretWebhookKey42", "from kestra import Flow"):
        assert example in marked, example
    for command in ("KESTRACTL_SERVER", "each_parent_offline", "server list", "kestractl test", "flow schema"):
        assert command in marked, command


def test_readme_examples_run_against_sample_flows_and_a_live_server(session: Session) -> None:
    """Every runnable block of README.md, in order, against `server standalone -f flows/` (sample_flows/):
    a command that fails (an error status for curl) fails the test with its README line."""
    done = session.api("POST", "/api/v1/executions/dev/hello-world?wait=true")
    assert done["url"].startswith(f"{session.url}/ui/executions/"), done["url"]  # the bound port, not `--port 0`
    session.done = done["id"]
    session.api("POST", "/api/v1/flows", PAUSING_FLOW)
    session.paused = [session.api("POST", "/api/v1/executions/docs.readme/wait-for-me")["id"] for _ in range(2)]
    for execution_id in session.paused:
        session.wait_for(execution_id, {"PAUSED"})
    for block in runnable_blocks():
        if block.note.startswith(("server", "cluster")):
            continue  # the session's own server; the multi-process setup (tests/distributed/test_readme_setup.py)
        session.wait_for(session.done, ENDED)  # a restart in one block must not race the next block's
        result = session.run(block)
        assert result.returncode == 0, f"README.md:{block.line}\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}"


# ---------------------------------------------------------------- docs/ and README stand on their own

PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_docs_and_readme_link_nowhere_outside_the_repository() -> None:
    """Every relative link resolves to a file of this repository, and no page sends readers to the steering
    folder (`../shared`, `/work/…`), which a clone does not have."""
    wrong = []
    for page in PAGES:
        text = page.read_text()
        wrong += [f"{page.name}: mentions {p}" for p in ("../shared", "/work/", "DESIGN.md") if p in text]
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))  # code is no link
        for match in LINK.finditer(prose):
            target = match["target"].split("#", 1)[0]
            if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):  # an anchor, or a web address
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                wrong.append(f"{page.relative_to(ROOT)}: {target}")
    assert wrong == []
