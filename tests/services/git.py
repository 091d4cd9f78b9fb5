"""A git server for tests: a bare repository in a temporary folder, seeded through a working clone and reached
over `file://` (and, with `serve_http`, over HTTP with basic auth on 127.0.0.1 through `git http-backend`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Seeder",
    "GIT_AUTHOR_EMAIL": "seeder@example.com",
    "GIT_COMMITTER_NAME": "Seeder",
    "GIT_COMMITTER_EMAIL": "seeder@example.com",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """`git ARGS` with a fixed identity and no user configuration; its stdout."""
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


class Repository:
    """A bare repository and a working clone that commits into it."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.bare = root / "remote.git"
        self.work = root / "seed"
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(self.bare))
        git("clone", "--quiet", str(self.bare), str(self.work))
        git("checkout", "--quiet", "-B", branch, cwd=self.work)

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()

    def commit(self, files: dict[str, str], message: str = "seed", branch: str | None = None) -> str:
        """Write the files (a `None`-free map of path → text), commit them and push; returns the commit id."""
        if branch is not None:
            git("checkout", "--quiet", "-B", branch, cwd=self.work)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", "HEAD", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).strip()

    def remove(self, *names: str, message: str = "remove") -> None:
        git("rm", "--quiet", *names, cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", "HEAD", cwd=self.work)

    def show(self, ref: str, path: str) -> str:
        return git("--git-dir", str(self.bare), "show", f"{ref}:{path}")

    def log(self, ref: str, fmt: str = "%H|%an|%ae|%s") -> list[str]:
        return git("--git-dir", str(self.bare), "log", f"--format={fmt}", ref).splitlines()

    def files(self, ref: str) -> list[str]:
        return git("--git-dir", str(self.bare), "ls-tree", "-r", "--name-only", ref).splitlines()

    def branches(self) -> list[str]:
        return git("--git-dir", str(self.bare), "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
