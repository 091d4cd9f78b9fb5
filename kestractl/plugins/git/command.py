"""The `git` command line, run for one task.

Credentials never reach the command line, the URL, the repository's config or a log line: a credential helper
reads them from the child's environment, a private key sits in a private temporary file, and every message git
prints is scrubbed of them before it is logged or raised. A failure is one line naming the git command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kestractl.plugin import RunContext, TaskError

# Reads the credentials from the environment git gives it; the shell quoting is git's (`!` runs a shell snippet).
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; echo "username=${KESTRACTL_GIT_USERNAME}"; '
    'echo "password=${KESTRACTL_GIT_PASSWORD}"; }; f'
)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
MISSING = "git is not installed or not on PATH: install it (e.g. `apt-get install git`)"


class Git:
    """`git` with a task's connection settings (Kestra's `AbstractGitTask`: url, username, password, privateKey,
    trustedCaPemPath, noProxy, readTimeout)."""

    def __init__(self, ctx: RunContext, url: str, settings: dict[str, Any]) -> None:
        if shutil.which("git") is None:
            raise TaskError(MISSING)
        if url.startswith("-"):
            raise TaskError(f"url: '{url}' is not a repository URL")  # git would read it as an option
        self.ctx = ctx
        self.url = url
        self.secrets = [s for s in (settings.get("password"), settings.get("privateKey")) if s]
        self.options = self._options(settings)
        self.env = self._environment(settings)
        self._keys: tempfile.TemporaryDirectory[str] | None = None
        if settings.get("privateKey"):
            self._use_key(settings["privateKey"])

    def __enter__(self) -> Git:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._keys is not None:
            self._keys.cleanup()

    def _options(self, settings: dict[str, Any]) -> list[str]:
        options = ["-c", "core.quotePath=false"]
        if settings.get("username") is not None and settings.get("password") is not None:
            options += ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]
        if settings.get("trustedCaPemPath"):
            options += ["-c", f"http.sslCAInfo={settings['trustedCaPemPath']}"]
        if settings.get("noProxy"):
            options += ["-c", "http.proxy="]
        seconds = max(1, int(settings.get("readTimeout") or 60000) // 1000)
        return options + ["-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={seconds}"]

    def _environment(self, settings: dict[str, Any]) -> dict[str, str]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        env.setdefault("EMAIL", "kestractl@localhost")  # the author's fallback when no identity is configured
        if settings.get("noProxy"):
            for name in PROXY_VARIABLES:
                env.pop(name, None)
        if settings.get("username") is not None and settings.get("password") is not None:
            env["KESTRACTL_GIT_USERNAME"] = str(settings["username"])
            env["KESTRACTL_GIT_PASSWORD"] = str(settings["password"])
        return env

    def _use_key(self, key: str) -> None:
        self._keys = tempfile.TemporaryDirectory(prefix="kestractl-git-")
        path = Path(self._keys.name) / "id"
        path.touch(mode=0o600)
        path.write_text(key.strip() + "\n", encoding="utf-8")
        self.env["GIT_SSH_COMMAND"] = (
            f"ssh -i {path} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o BatchMode=yes"
        )

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run `git ARGS`; its stdout, or TaskError with git's own reason (scrubbed) on one line."""
        argv = ["git", *self.options, *args]
        try:
            done = subprocess.run(
                argv, cwd=cwd, env={**self.env, **(env or {})}, capture_output=True, text=True, check=False
            )
        except OSError as err:
            raise TaskError(f"git {args[0]}: {err.strerror}") from None
        if done.returncode != 0:
            raise TaskError(f"git {args[0]} failed: {self.reason(done.stderr or done.stdout)}")
        return done.stdout

    def reason(self, output: str) -> str:
        """git's most telling line (`fatal: …`), with secrets and URL passwords masked."""
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        return self.scrub((fatal or lines or ["no output"])[0])

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(str(secret), "******")
        return re.sub(r"(://[^/@:\s]+):[^/@\s]+@", r"\1:******@", text)

    def branch_exists(self, branch: str) -> bool:
        return bool(self.run("ls-remote", "--heads", self.url, f"refs/heads/{branch}").strip())
