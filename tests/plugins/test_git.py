"""The git plugin against a real bare repository in tmp_path, reached over file:// by the `git` command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestractl.ion import loads_lines
from tests.conftest import Cli, needs_tool, runs, state
from tests.services.git import GitHttpServer, Repository

pytestmark = needs_tool("git")

FLOW_A = "id: a\nnamespace: somewhere\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: a\n"
FLOW_B = FLOW_A.replace("id: a", "id: b")
FLOW_C = FLOW_A.replace("id: a", "id: c")


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "git")


def run_flow(cli: Cli, tmp_path: Path, text: str) -> dict[str, Any]:
    """Deploy one flow and execute it; the execution."""
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    deployed = cli("flow", "deploy", str(path))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    namespace = text.split("namespace: ")[1].split("\n")[0]
    flow_id = text.split("id: ")[1].split("\n")[0]
    return cli.execute(namespace, flow_id)[1]


def task(flow_id: str, body: str, namespace: str = "ops") -> str:
    """A flow of one task (`body`, indented under `tasks:`)."""
    return f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{body}"


def outputs(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    result: dict[str, Any] = runs(execution, task_id)[0]["outputs"]
    return result


def diff(cli: Cli, execution: dict[str, Any], uri: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = loads_lines(cli("executions", "file", execution["id"], uri).stdout)
    return rows


def flow_list(cli: Cli) -> list[str]:
    return [line.split()[0] + "." + line.split()[1] for line in cli("flow", "list").stdout.splitlines()[1:] if line]


def test_clone_checks_out_the_branch_shallow_into_the_working_directory(
    cli: Cli, tmp_path: Path, repo: Repository
) -> None:
    repo.commit({"README.md": "one"})
    repo.commit({"README.md": "two"})
    repo.commit({"dev.txt": "on dev"}, branch="dev")
    repo.commit({"dev.txt": "still on dev"}, branch="dev")
    body = f"""  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {repo.url}
        branch: dev
        directory: repo
      - id: look
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - c=$(git -C repo rev-list --count HEAD); t=$(cat repo/dev.txt); b=$(git -C repo branch --show-current)
          - echo "::{{\\"outputs\\":{{\\"count\\":\\"$c\\",\\"text\\":\\"$t\\",\\"branch\\":\\"$b\\"}}}}::"
"""
    execution = run_flow(cli, tmp_path, task("clone", body))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "clone")["directory"].endswith("/repo")
    assert outputs(execution, "look")["vars"] == {"count": "1", "text": "still on dev", "branch": "dev"}


def test_clone_with_a_depth_keeps_that_much_history(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    for n in range(3):
        repo.commit({"n.txt": str(n)})
    body = f"""  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {repo.url}
        depth: 2
      - id: look
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - echo "::{{\\"outputs\\":{{\\"count\\":\\"$(git rev-list --count HEAD)\\"}}}}::"
"""
    execution = run_flow(cli, tmp_path, task("depth", body))
    assert outputs(execution, "look")["vars"] == {"count": "2"}


def test_a_bad_url_fails_the_task_with_one_line(cli: Cli, tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere.git").as_uri()
    body = f"  - id: clone\n    type: io.kestra.plugin.git.Clone\n    url: {missing}\n"
    execution = run_flow(cli, tmp_path, task("bad", body))
    assert state(execution) == "FAILED"
    errors = [line for line in cli("executions", "logs", execution["id"]).stdout.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "git clone failed: fatal:" in errors[0], errors
    assert "Traceback" not in errors[0]


def sync_flows(url: str, **extra: Any) -> str:
    shown = {key: str(value).lower() if isinstance(value, bool) else value for key, value in extra.items()}
    lines = "".join(f"    {key}: {value}\n" for key, value in shown.items())
    return task("sync", f"  - id: sync\n    type: io.kestra.plugin.git.SyncFlows\n    url: {url}\n{lines}")


def test_sync_flows_deploys_the_git_folder_into_the_target_namespace(
    cli: Cli, tmp_path: Path, repo: Repository
) -> None:
    repo.commit({"_flows/a.yml": FLOW_A, "_flows/b.yaml": FLOW_B, "_flows/team/c.yml": FLOW_C, "other/x.yml": "x"})
    execution = run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod", includeChildNamespaces=True))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert {"prod.a", "prod.b", "prod.team.c"} <= set(flow_list(cli))
    assert "namespace: prod.team\n" in cli("flow", "show", "prod.team", "c").stdout
    rows = diff(cli, execution, outputs(execution, "sync")["flows"])
    assert [(r["gitPath"], r["syncState"], r["namespace"], r["revision"]) for r in rows] == [
        ("_flows/a.yml", "ADDED", "prod", 1),
        ("_flows/b.yaml", "ADDED", "prod", 1),
        ("_flows/team/c.yml", "ADDED", "prod.team", 1),
    ]
    again = cli.execute("ops", "sync")[1]
    assert {r["syncState"] for r in diff(cli, again, outputs(again, "sync")["flows"])} == {"UNCHANGED"}


def test_sync_flows_deletes_what_git_lost_and_a_dry_run_changes_nothing(
    cli: Cli, tmp_path: Path, repo: Repository
) -> None:
    repo.commit({"_flows/a.yml": FLOW_A, "_flows/b.yml": FLOW_B})
    assert state(run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod"))) == "SUCCESS"
    repo.remove("_flows/b.yml")
    repo.commit({"_flows/a.yml": FLOW_A.replace("message: a", "message: changed")})
    dry = run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod", delete=True, dryRun=True))
    rows = diff(cli, dry, outputs(dry, "sync")["flows"])
    assert [(r.get("gitPath"), r["syncState"], r["flowId"], r["revision"]) for r in rows] == [
        (None, "DELETED", "b", 1),
        ("_flows/a.yml", "UPDATED", "a", 2),
    ]
    assert {"prod.a", "prod.b"} <= set(flow_list(cli))
    assert "message: a\n" in cli("flow", "show", "prod", "a").stdout
    real = run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod", delete=True))
    assert state(real) == "SUCCESS"
    assert "prod.b" not in flow_list(cli) and "prod.a" in flow_list(cli)
    assert "message: changed" in cli("flow", "show", "prod", "a").stdout


def test_sync_flows_refuses_an_invalid_flow_and_deploys_none(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    repo.commit({"_flows/a.yml": FLOW_A, "_flows/broken.yml": FLOW_B.replace("message: a", "mesage: a")})
    execution = run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod"))
    assert state(execution) == "FAILED"
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "Invalid flow imported from Git" in logs and "_flows/broken.yml" in logs
    assert "prod.a" not in flow_list(cli)
    skipping = run_flow(cli, tmp_path, sync_flows(repo.url, targetNamespace="prod", ignoreInvalidFlows=True))
    assert state(skipping) == "SUCCESS" and "prod.a" in flow_list(cli)


def push_flows(url: str, namespace: str = "dev", **extra: Any) -> str:
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return task("push", f"  - id: push\n    type: io.kestra.plugin.git.PushFlows\n    url: {url}\n{lines}", namespace)


def test_push_flows_commits_the_namespace_flows_with_the_author(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    repo.commit({"README.md": "hello", "_flows/gone.yml": FLOW_C})
    (tmp_path / "hello.yaml").write_text(FLOW_A.replace("somewhere", "dev").replace("id: a", "id: hello"))
    assert cli("flow", "deploy", str(tmp_path / "hello.yaml")).exit_code == 0
    flow = push_flows(repo.url, authorName="Ada", authorEmail="ada@example.com", commitMessage="sync from kestractl")
    execution = run_flow(cli, tmp_path, flow)
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    out = outputs(execution, "push")
    head = repo.log("main")[0].split("|")
    assert head == [out["commitId"], "Ada", "ada@example.com", "sync from kestractl"]
    assert out["commitURL"] == f"{repo.url.removesuffix('.git')}/commit/{out['commitId']}"  # as Kestra builds it
    assert sorted(repo.files("main")) == ["README.md", "_flows/hello.yml", "_flows/push.yml"]
    assert "id: hello" in repo.show("main", "_flows/hello.yml")
    rows = diff(cli, execution, out["flows"])
    assert [(r["file"], r["deletions"]) for r in rows][0] == ("_flows/gone.yml", "-6")
    assert {r["file"] for r in rows} == {"_flows/gone.yml", "_flows/hello.yml", "_flows/push.yml"}


def test_push_flows_creates_the_branch_and_a_dry_run_pushes_nothing(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    repo.commit({"README.md": "hello"})
    dry = run_flow(cli, tmp_path, push_flows(repo.url, branch="kestra", dryRun="true", targetNamespace="prod"))
    assert state(dry) == "SUCCESS" and "commitId" not in outputs(dry, "push")
    assert [r["file"] for r in diff(cli, dry, outputs(dry, "push")["flows"])] == ["_flows/push.yml"]
    assert repo.branches() == ["main"] and len(repo.log("main")) == 1
    real = run_flow(cli, tmp_path, push_flows(repo.url, branch="kestra", targetNamespace="prod"))
    assert state(real) == "SUCCESS"
    assert repo.log("kestra", "%s")[0] == "Add flows from dev namespace"
    assert "namespace: prod" in repo.show("kestra", "_flows/push.yml")
    assert repo.files("main") == ["README.md"]


def test_push_namespace_files_commits_the_files(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    folder = tmp_path / "files"
    (folder / "scripts").mkdir(parents=True)
    (folder / "scripts" / "etl.py").write_text("print('etl')\n")
    (folder / "queries.sql").write_text("select 1;\n")
    assert cli("namespace", "files", "update", "dev", str(folder)).exit_code == 0
    body = f"""  - id: push
    type: io.kestra.plugin.git.PushNamespaceFiles
    url: {repo.url}
    files: ["scripts/**"]
    authorName: Bot
    authorEmail: bot@example.com
"""
    execution = run_flow(cli, tmp_path, task("push-files", body, "dev"))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert repo.files("main") == ["_files/scripts/etl.py"]
    assert repo.log("main")[0].split("|")[1:] == ["Bot", "bot@example.com", "Add files from dev namespace"]
    assert repo.show("main", "_files/scripts/etl.py") == "print('etl')\n"
    rows = diff(cli, execution, outputs(execution, "push")["files"])
    assert rows == [{"file": "_files/scripts/etl.py", "additions": "+1", "deletions": "-0", "changes": "0"}]


def test_sync_namespace_files_writes_git_files_into_the_namespace(cli: Cli, tmp_path: Path, repo: Repository) -> None:
    repo.commit({"_files/scripts/etl.py": "print('v1')\n", "_files/readme.md": "hi\n"})
    flow = task(
        "sync-files",
        f"  - id: sync\n    type: io.kestra.plugin.git.SyncNamespaceFiles\n    url: {repo.url}\n    delete: true\n",
        "dev",
    )
    execution = run_flow(cli, tmp_path, flow)
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert cli("namespace", "files", "get", "dev", "scripts/etl.py").stdout == "print('v1')\n"
    repo.commit({"_files/scripts/etl.py": "print('v2')\n"})
    repo.remove("_files/readme.md")
    again = cli.execute("dev", "sync-files")[1]
    rows = diff(cli, again, outputs(again, "sync")["files"])
    assert [(r.get("gitPath"), r["syncState"], r["kestraPath"]) for r in rows] == [
        (None, "DELETED", "/readme.md"),
        ("_files/scripts/etl.py", "OVERWRITTEN", "/scripts/etl.py"),
    ]
    assert cli("namespace", "files", "list", "dev").stdout.split() == ["/scripts/etl.py"]


PASSWORD = "s3cr3t-Pa55"


@pytest.fixture
def http_repo(repo: Repository) -> Iterator[tuple[Repository, str]]:
    """The bare repository over HTTP with basic auth (`kestra` / PASSWORD), through `git http-backend`."""
    server = GitHttpServer(repo.bare.parent, f"kestra:{PASSWORD}")
    yield repo, server.url(repo.bare.name)
    server.close()


def test_clone_authenticates_over_http_without_leaking_the_password(
    cli: Cli, tmp_path: Path, http_repo: tuple[Repository, str]
) -> None:
    repo, url = http_repo
    repo.commit({"README.md": "private"})
    body = f"""  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {url}
        username: kestra
        password: "{{{{ inputs.password }}}}"
      - id: look
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - cat README.md .git/config
"""
    flow = task("private", body).replace("tasks:\n", "inputs:\n  - id: password\n    type: STRING\ntasks:\n", 1)
    (tmp_path / "flow.yaml").write_text(flow)
    assert cli("flow", "deploy", str(tmp_path / "flow.yaml")).exit_code == 0
    ok = cli.execute("ops", "private", "--input", f"password={PASSWORD}")[1]
    text = cli("executions", "logs", ok["id"]).stdout
    assert state(ok) == "SUCCESS", text
    assert "private" in text and f"url = {url}" in text and PASSWORD not in text
    refused = cli.execute("ops", "private", "--input", "password=wrong-password")[1]
    errors = [line for line in cli("executions", "logs", refused["id"]).stdout.splitlines() if "ERROR" in line]
    assert state(refused) == "FAILED" and len(errors) == 1 and "git clone failed" in errors[0]
    assert "wrong-password" not in errors[0]


def test_push_flows_authenticates_over_http(cli: Cli, tmp_path: Path, http_repo: tuple[Repository, str]) -> None:
    repo, url = http_repo
    repo.commit({"README.md": "hello"})
    flow = push_flows(url, username="kestra", password=PASSWORD, authorEmail="kestra@example.com")
    execution = run_flow(cli, tmp_path, flow)
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert repo.log("main")[0].split("|")[1:3] == ["kestra", "kestra@example.com"]  # the author's name: username
    assert "_flows/push.yml" in repo.files("main")
    assert outputs(execution, "push")["commitURL"].startswith(url.removesuffix(".git") + "/commit/")


def test_sync_namespace_files_does_not_follow_a_link_out_of_the_repository(
    cli: Cli, tmp_path: Path, repo: Repository
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    (repo.work / "_files").mkdir()
    (repo.work / "_files" / "leak.txt").symlink_to(secret)
    repo.commit({"_files/ok.txt": "fine"})
    body = f"  - id: sync\n    type: io.kestra.plugin.git.SyncNamespaceFiles\n    url: {repo.url}\n"
    execution = run_flow(cli, tmp_path, task("links", body, "dev"))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert cli("namespace", "files", "list", "dev").stdout.split() == ["/ok.txt"]


LOOK = """      - id: look
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - v=$(cat version.txt); k=$(cat keep.txt 2>/dev/null || echo none); b=$(git branch --show-current)
          - printf '::{"outputs":{"version":"%s","keep":"%s","branch":"%s"}}::\\n' "$v" "$k" "$b"
"""


@pytest.mark.parametrize("pin", ["commit", "tag"])
def test_clone_checks_out_a_commit_or_a_tag(cli: Cli, tmp_path: Path, repo: Repository, pin: str) -> None:
    first = repo.commit({"version.txt": "v1"})
    repo.tag("v1.0")
    repo.commit({"version.txt": "v2"})
    target = first if pin == "commit" else "v1.0"
    body = f"""  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {repo.url}
        {pin}: {target}
{LOOK}"""
    execution = run_flow(cli, tmp_path, task("pinned", body))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "look")["vars"] == {"version": "v1", "keep": "none", "branch": ""}


def test_clone_into_a_directory_holding_files_fetches_and_checks_out(
    cli: Cli, tmp_path: Path, repo: Repository
) -> None:
    repo.commit({"version.txt": "v1"})
    body = f"""  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      keep.txt: kept
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {repo.url}
{LOOK}"""
    execution = run_flow(cli, tmp_path, task("nonempty", body))
    assert state(execution) == "SUCCESS", cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "look")["vars"] == {"version": "v1", "keep": "kept", "branch": "main"}
