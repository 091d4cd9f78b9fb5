"""What every git task shares (Kestra's `AbstractGitTask` and `AbstractCloningTask`): the connection properties,
the `git` it runs, cloning the branch a sync or push task works on, and the commit URL a push reports."""

from __future__ import annotations

import re
from pathlib import Path

from kestractl.plugin import Prop, RunContext, RunnableTask, TaskError
from kestractl.plugins.git.command import Git

SSH_URL = re.compile(r"git@(?:ssh\.)?([^:]+):(?:v\d*/)?(.*)")
CONNECTION = ("username", "password", "privateKey", "trustedCaPemPath", "noProxy", "readTimeout")


class GitTask(RunnableTask):
    """A task that talks to a git repository with the `git` command line."""

    properties = {
        "url": Prop("The repository's URL: HTTP(S), SSH or `file://`.", type="string", required=True),
        "username": Prop(
            "The user for HTTP basic authentication (and the commit author's fallback name).", type="string"
        ),
        "password": Prop("The password or personal access token for HTTP basic authentication.", type="string"),
        "privateKey": Prop("A PEM private key for SSH (e.g. `{{ secret('SSH_KEY') }}`).", type="string"),
        "passphrase": Prop("The private key's passphrase: not supported here (use a key without one).", type="string"),
        "trustedCaPemPath": Prop("A PEM CA bundle to trust for HTTPS (git's `http.sslCAInfo`).", type="string"),
        "noProxy": Prop("Connect directly, ignoring the proxy settings.", type="boolean", default=False),
        "connectTimeout": Prop(
            "Accepted for Kestra compatibility (milliseconds); git has no such setting.", type="integer", default=10000
        ),
        "readTimeout": Prop(
            "Give up when the transfer stalls this long (milliseconds).", type="integer", default=60000
        ),
        "gitConfig": Prop("git configuration written into the clone, e.g. `core.fileMode: false`.", type="object"),
        "cloneSubmodules": Prop("Clone the repository's submodules too.", type="boolean", default=False),
        "kestraUrl": Prop(
            "Accepted for Kestra compatibility: flows and files are reached in-process here.", type="string"
        ),
        "auth": Prop("Accepted for Kestra compatibility: flows and files are reached in-process here.", type="object"),
    }

    def git(self, ctx: RunContext) -> Git:
        if ctx.prop("passphrase") is not None:
            raise TaskError("passphrase: keys protected by a passphrase are not supported; use a key without one")
        return Git(ctx, ctx.prop("url"), {name: ctx.prop(name) for name in CONNECTION})

    def apply_config(self, ctx: RunContext, git: Git, repository: Path) -> None:
        """`gitConfig`, written into the clone's own config as Kestra applies it after cloning."""
        for key, value in (ctx.prop("gitConfig") or {}).items():
            if "." not in str(key):
                ctx.log("WARN", f"invalid git config key format: {key}. Expected 'section.name'")
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            git.run("config", str(key), text, cwd=repository)

    def clone_branch(self, ctx: RunContext, git: Git, branch: str, target: Path) -> Path:
        """Kestra's `GitService.cloneBranch`: the branch (depth 1) when the remote has it, else the default branch
        with a new local branch of that name (an empty repository starts it)."""
        exists = git.branch_exists(branch)
        options = ["--depth", "1"] + (["--branch", branch] if exists else [])
        if ctx.prop("cloneSubmodules"):
            options.append("--recurse-submodules")
        git.run("clone", "--quiet", *options, "--", git.url, str(target))
        self.apply_config(ctx, git, target)
        if not exists:
            ctx.info(f"Branch {branch} does not exist, creating it")
            git.run("checkout", "--quiet", "-b", branch, cwd=target)
        return target


def http_url(url: str) -> str:
    """The repository's web address: an SSH URL as https, credentials dropped (Kestra's `getHttpUrl`)."""
    match = SSH_URL.fullmatch(url)
    if match:
        host_path = f"{match.group(1)}/{match.group(2)}"
        if "azure.com" in host_path:
            head, _, repo = host_path.rpartition("/")
            host_path = f"{head}/_git/{repo}"
        return "https://" + host_path
    return re.sub(r"//.*@", "//", url, count=1) if "@" in url else url


def commit_url(url: str, branch: str, commit_id: str) -> str:
    """Where a forge shows the commit (Kestra's `buildCommitUrl`)."""
    base = re.sub(r"\.git$", "", url)
    link = f"{base}/{'commits' if 'bitbucket.org' in base else 'commit'}/{commit_id}"
    return link + (f"?refName=refs%2Fheads%2F{branch}" if "azure.com" in base else "")
