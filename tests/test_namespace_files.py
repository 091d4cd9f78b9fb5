"""Namespace files end to end: uploaded by the CLI, loaded by script tasks and WorkingDirectory through
`namespaceFiles`, read by `read()`, served by the REST API of a real server, synced from a folder, and
handled by the UploadFiles / DownloadFiles / DeleteFiles tasks."""

from __future__ import annotations

import io
import shutil
import threading
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, runs, state
from test_server import SEED, Running

from kestractl.config import Home
from kestractl.errors import ValidationError
from kestractl.namespace_files import IgnoreRules, NamespaceFiles, include_exclude, path_matcher
from kestractl.server.app import ServerOptions, StandaloneServer
from kestractl.storage import LocalStorage


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def project(tmp_path: Path) -> Path:
    """A folder as a user keeps it: scripts, SQL, and things `.kestraignore` keeps out."""
    return write(
        tmp_path / "project",
        {
            ".kestraignore": "# local only\n*.tmp\nbuild/\n!keep.tmp\n",
            "scripts/main.py": "from lib.util import greet\nprint(greet())\n",
            "scripts/lib/util.py": "def greet():\n    return 'hello from a namespace file'\n",
            "scripts/skip_me.py": "raise SystemExit(1)\n",
            "queries/orders.sql": "SELECT * FROM orders\n",
            "notes.tmp": "scratch",
            "keep.tmp": "kept",
            "build/out.txt": "artefact",
        },
    )


def run_flow(cli: Cli, tmp_path: Path, source: str) -> dict[str, Any]:
    flow = tmp_path / f"flow-{uuid.uuid4().hex[:6]}.yaml"
    flow.write_text(source)
    deployed = cli("flow", "deploy", str(flow))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    flow_id = source.split("id: ", 1)[1].split("\n", 1)[0]
    _, execution = cli.execute(source.split("namespace: ", 1)[1].split("\n", 1)[0], flow_id)
    return execution


def outputs(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    return dict(runs(execution, task_id)[0].get("outputs") or {})


# ---- the storage layer and Kestra's matching rules ------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "matched"),
    [
        (["main.py"], "/scripts/main.py", True),  # a bare name matches at any depth (`**/` prepended)
        (["scripts/*.py"], "/scripts/main.py", True),
        (["scripts/*.py"], "/scripts/lib/util.py", False),  # `*` stays in one folder
        (["scripts/**"], "/scripts/lib/util.py", True),
        (["*.py"], "/main.py", False),  # not a word character first: matched as given against `/main.py`
        (["**.py"], "/a/b.py", True),
        (["/queries/*.sql"], "/queries/orders.sql", True),
        (["regex:.*\\.sql"], "/queries/orders.sql", True),
        (["glob:/queries/{a,orders}.sql"], "/queries/orders.sql", True),
        (["**/[!s]*.py"], "/scripts/main.py", True),
        (["**/[!s]*.py"], "/scripts/skip_me.py", False),
    ],
)
def test_patterns_follow_kestras_path_matcher(patterns: list[str], path: str, matched: bool) -> None:
    assert path_matcher(patterns)(path) is matched


def test_include_and_exclude_combine_as_include_and_not_exclude() -> None:
    matches = include_exclude(["scripts/**"], ["**/skip_*"])
    assert [matches(p) for p in ("/scripts/main.py", "/scripts/skip_me.py", "/queries/a.sql")] == [True, False, False]
    assert include_exclude([], [])("/anything")


def test_kestraignore_follows_gitignore() -> None:
    rules = IgnoreRules("*.tmp\n!keep.tmp\nbuild/\n/top.txt\ndocs/*.md\n")
    assert rules.ignores("notes.tmp") and rules.ignores("deep/er/notes.tmp")
    assert not rules.ignores("keep.tmp")
    assert rules.ignores("build/out.txt") and rules.ignores("src/build/out.txt")
    assert rules.ignores("top.txt") and not rules.ignores("sub/top.txt")
    assert rules.ignores("docs/a.md") and not rules.ignores("docs/sub/a.md")


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b", "_flows/x.yml", "x" * 256, "a\x00b"])
def test_unsafe_or_reserved_paths_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValidationError):
        NamespaceFiles(LocalStorage(tmp_path), "dev").put(path, b"x")


def test_files_live_under_the_namespace_prefix_and_delete_prunes_empty_folders(tmp_path: Path) -> None:
    files = NamespaceFiles(LocalStorage(tmp_path), "company.team")
    assert files.put("/a/b/c.txt", b"c") == "kestra:///company/team/_files/a/b/c.txt"
    assert (tmp_path / "company" / "team" / "_files" / "a" / "b" / "c.txt").read_bytes() == b"c"
    files.put("a/d.txt", b"d")
    assert files.delete("a/b/c.txt")
    assert not (tmp_path / "company/team/_files/a/b").exists() and files.paths() == ["a/d.txt"]
    for namespace in ("../etc", "a/b", "a..b", ""):
        with pytest.raises(ValidationError, match="Invalid namespace"):
            NamespaceFiles(LocalStorage(tmp_path), namespace)


# ---- the CLI ------------------------------------------------------------------------------------------


def test_cli_uploads_a_folder_recursively_honouring_kestraignore(cli: Cli, tmp_path: Path) -> None:
    result = cli("namespace", "files", "update", "dev", str(project(tmp_path)))
    assert result.exit_code == 0, result.stderr
    listed = cli("namespace", "files", "list", "dev").stdout.split()
    assert listed == [
        "/keep.tmp",
        "/queries/orders.sql",
        "/scripts/lib/util.py",
        "/scripts/main.py",
        "/scripts/skip_me.py",
    ]
    assert cli("namespace", "files", "get", "dev", "queries/orders.sql").stdout == "SELECT * FROM orders\n"
    assert (
        cli("namespace", "files", "update", "dev", str(tmp_path / "project" / "queries"), "sql", "--delete").exit_code
        == 0
    )
    assert "/sql/orders.sql" in cli("namespace", "files", "list", "dev").stdout
    assert cli("namespace", "files", "delete", "dev", "scripts").exit_code == 0
    assert "scripts" not in cli("namespace", "files", "list", "dev").stdout
    missing = cli("namespace", "files", "get", "dev", "nope.sql")
    assert missing.exit_code == 3 and "not found in namespace 'dev'" in missing.stderr


# ---- tasks: namespaceFiles, read(), inputFiles, outputFiles ------------------------------------------


def test_python_script_loads_namespace_files_with_include_exclude_and_read_reads_one(cli: Cli, tmp_path: Path) -> None:
    cli("namespace", "files", "update", "dev", str(project(tmp_path)))
    execution = run_flow(
        cli,
        tmp_path,
        """id: ns-files
namespace: dev
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    namespaceFiles:
      enabled: true
      include: [scripts/**]
      exclude: ["**/skip_*"]
    commands:
      - cd scripts && python main.py
      - find . -type f | sort
  - id: sql
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ read('queries/orders.sql') | trim }} / {{ fileExists('nope.sql') }}
      / {{ fileURI('queries/orders.sql') }}
""",
    )
    assert state(execution) == "SUCCESS"
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "Loaded 2 namespace files from 'dev'" in logs
    assert "hello from a namespace file" in logs
    assert "./lib/util.py" in logs and "./main.py" in logs and "skip_me" not in logs
    assert outputs(execution, "sql")["value"] == (
        "SELECT * FROM orders / false / kestra:///dev/_files/queries/orders.sql"
    )


def test_output_files_of_one_task_feed_a_later_task(cli: Cli, tmp_path: Path) -> None:
    execution = run_flow(
        cli,
        tmp_path,
        """id: chain
namespace: dev
tasks:
  - id: produce
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - mkdir -p out && echo 42 > out/result.txt && echo noise > out/debug.log && touch empty.txt
    outputFiles: ["out/*.txt", "empty.txt"]
  - id: consume
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      in.txt: "{{ outputs.produce.outputFiles['out/result.txt'] }}"
      inline.txt: "written inline"
    commands:
      - echo "got $(cat in.txt) and $(cat inline.txt)"
  - id: check
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ isFileEmpty(outputs.produce.outputFiles['empty.txt']) }}
      {{ fileSize(outputs.produce.outputFiles['out/result.txt']) }}
""",
    )
    assert state(execution) == "SUCCESS"
    assert set(outputs(execution, "produce")["outputFiles"]) == {"out/result.txt", "empty.txt"}
    assert "got 42 and written inline" in cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "check")["value"] == "true 3"


def test_working_directory_lays_out_namespace_and_input_files_and_stores_output_files(cli: Cli, tmp_path: Path) -> None:
    cli("namespace", "files", "update", "dev", str(project(tmp_path)))
    cli("namespace", "files", "update", "shared", str(write(tmp_path / "shared", {"queries/orders.sql": "OTHER\n"})))
    execution = run_flow(
        cli,
        tmp_path,
        """id: wd
namespace: dev
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
      namespaces: [shared, dev]
      include: ["queries/*.sql"]
    inputFiles:
      data.csv: "a,b"
    outputFiles: ["result.txt"]
    tasks:
      - id: work
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - cat queries/orders.sql data.csv > result.txt
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.wd.outputFiles['result.txt']) }}"
""",
    )
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "after")["value"] == "SELECT * FROM orders\na,b"  # dev came last: it overrides shared


def test_namespace_file_tasks_upload_download_and_delete(cli: Cli, tmp_path: Path) -> None:
    execution = run_flow(
        cli,
        tmp_path,
        """id: ns-tasks
namespace: dev
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - mkdir -p sql && echo one > sql/one.sql && echo two > sql/two.sql && echo x > skip.txt
        outputFiles: ["skip.txt"]
      - id: upload
        type: io.kestra.plugin.core.namespace.UploadFiles
        namespace: team
        files: ["glob:**/*.sql"]
        destination: /up
      - id: upload_map
        type: io.kestra.plugin.core.namespace.UploadFiles
        namespace: team
        filesMap:
          other/copy.txt: "{{ outputs.make.outputFiles['skip.txt'] }}"
  - id: download
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: team
    files: /up/**
  - id: delete
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: team
    files: ["**/one.sql"]
""",
    )
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    downloaded = outputs(execution, "download")["files"]
    assert set(downloaded) == {"/up/sql/one.sql", "/up/sql/two.sql"}
    assert cli("executions", "file", execution["id"], downloaded["/up/sql/two.sql"]).stdout == "two\n"
    assert cli("namespace", "files", "list", "team").stdout.split() == ["/other/copy.txt", "/up/sql/two.sql"]
    assert outputs(execution, "delete") == {} and outputs(execution, "upload") == {}


def test_namespace_files_block_is_validated_at_deploy(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(
        "id: bad\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.scripts.shell.Commands\n"
        "    commands: [ls]\n    namespaceFiles:\n      enabled: true\n      includes: [a]\n      ifExists: MAYBE\n"
    )
    result = cli("flow", "validate", str(flow))
    assert result.exit_code == 2
    assert 'namespaceFiles.includes: Unrecognized field "includes"' in result.stderr
    assert "namespaceFiles.ifExists: must be one of OVERWRITE, FAIL, WARN, IGNORE" in result.stderr


# ---- the REST API and the synced folder of a real server ---------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    flows, synced = tmp_path / "flows", write(tmp_path / "nsfiles", {"dev/init/hello.txt": "hi"})
    flows.mkdir()
    shutil.copy(SEED, flows / "hello-world.yaml")
    options = ServerOptions(
        flow_path=flows, port=0, grace_seconds=2, watch_seconds=0.05, workers=2, namespace_files=synced
    )
    said: list[tuple[str, str]] = []
    instance = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda lvl, msg: said.append((lvl, msg)))
    thread = threading.Thread(target=instance.serve, daemon=True)
    thread.start()
    handle = Running(instance, flows, said)
    handle.wait_for(lambda: handle.has_flow("dev", "hello-world"))
    yield handle
    instance.stop_event.set()
    thread.join(15)


def multipart(filename: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "kestractl-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="fileContent"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_rest_endpoints_read_write_move_search_and_delete(server: Running) -> None:
    base = "/api/v1/namespaces/dev/files"
    assert server.call("POST", f"{base}?path=/a/b.txt", *multipart("b.txt", b"bee")) == (200, "")
    assert server.call("GET", f"{base}?path=/a/b.txt") == (200, "bee")
    status, stats = server.call("GET", f"{base}/stats?path=/a/b.txt")
    assert (status, stats["type"], stats["size"], stats["fileName"]) == (200, "File", 3, "b.txt")
    assert server.call("GET", f"{base}/stats")[1]["type"] == "Directory"
    assert server.call("POST", f"{base}/directory?path=/empty")[0] == 200
    listing = server.call("GET", "/api/v1/main/namespaces/dev/files/directory")[1]
    assert {(e["fileName"], e["type"]) for e in listing} == {
        ("a", "Directory"),
        ("empty", "Directory"),
        ("init", "Directory"),
    }
    assert server.call("PUT", f"{base}?from=/a/b.txt&to=/c/d.txt")[0] == 200
    assert server.call("GET", f"{base}/search?q=d.t") == (200, ["/c/d.txt"])
    assert server.call("DELETE", f"{base}?path=/c/d.txt")[0] == 200
    assert server.call("GET", f"{base}?path=/c/d.txt")[0] == 404
    assert server.call("GET", f"{base}/directory?path=/c")[0] == 404  # the emptied folder went with it
    for bad in ("/_flows/x.yml", "/../../etc/passwd", "/" + "x" * 300):
        status, error = server.call("GET", f"{base}?path={bad}")
        assert status == 422 and error["message"]


def test_rest_export_and_zip_upload_round_trip_files_and_flows(server: Running) -> None:
    base = "/api/v1/namespaces/dev/files"
    server.call("POST", f"{base}?path=/q/a.sql", *multipart("a.sql", b"SELECT 1"))
    with urllib.request.urlopen(server.url + base + "/export") as response:
        assert response.headers["Content-Disposition"] == 'attachment; filename="dev_files.zip"'
        exported = response.read()
    names = set(zipfile.ZipFile(io.BytesIO(exported)).namelist())
    assert {"q/a.sql", "init/hello.txt", "_flows/hello-world.yml"} <= names
    assert server.call("POST", "/api/v1/namespaces/copy/files", *multipart("dev_files.zip", exported))[0] == 200
    assert server.call("GET", "/api/v1/namespaces/copy/files?path=q/a.sql") == (200, "SELECT 1")
    assert server.has_flow("copy", "hello-world")  # its `namespace:` line rewritten to the target namespace


def test_namespace_files_folder_is_kept_in_sync(server: Running, tmp_path: Path) -> None:
    base = "/api/v1/namespaces/dev/files"
    assert server.call("GET", f"{base}?path=init/hello.txt") == (200, "hi")
    write(tmp_path / "nsfiles", {"dev/new/added.py": "print(1)", "team.a/x.sql": "X"})
    assert server.wait_for(lambda: server.call("GET", f"{base}?path=new/added.py") == (200, "print(1)"))
    assert server.wait_for(lambda: server.call("GET", "/api/v1/namespaces/team.a/files?path=x.sql")[0] == 200)
    (tmp_path / "nsfiles" / "dev" / "init" / "hello.txt").unlink()
    assert server.wait_for(lambda: server.call("GET", f"{base}?path=init/hello.txt")[0] == 404)


def test_server_refuses_a_namespace_files_folder_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    result = cli("server", "standalone", "--port", "0", "--namespace-files", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "--namespace-files" in result.stderr and "missing" in result.stderr
