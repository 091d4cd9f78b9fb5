"""A git server for tests: a bare repository in a temporary folder, seeded through a working clone and reached
over `file://` (and, with `serve_http`, over HTTP with basic auth on 127.0.0.1 through `git http-backend`)."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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

    def tag(self, name: str) -> None:
        git("tag", name, cwd=self.work)
        git("push", "--quiet", "origin", name, cwd=self.work)


class _GitHttpHandler(BaseHTTPRequestHandler):
    """Smart HTTP through `git http-backend` (CGI), behind HTTP basic auth."""

    server: GitHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        expected = "Basic " + base64.b64encode(self.server.credentials.encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        done = subprocess.run(["git", "http-backend"], input=body, env=self._cgi_env(len(body)), capture_output=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
        status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _cgi_env(self, length: int) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_USER": self.server.credentials.split(":")[0],
            "REMOTE_ADDR": "127.0.0.1",
        }
        env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in self.headers.items()})
        return env


class GitHttpServer(ThreadingHTTPServer):
    """Serves the repositories under `root` on 127.0.0.1 (an OS-assigned port) to `user:password` only."""

    def __init__(self, root: Path, credentials: str) -> None:
        super().__init__(("127.0.0.1", 0), _GitHttpHandler)
        self.root = root
        self.credentials = credentials
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()
