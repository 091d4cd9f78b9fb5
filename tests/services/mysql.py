"""A throwaway MariaDB (or MySQL) server for tests: `mariadb-install-db` and `mariadbd` from the machine, in a
temporary folder, listening on 127.0.0.1 and an OS-assigned port, started once per test session; user `root`
without a password. Use the `mysql` fixture. Without the server a test skips on a developer's machine and
FAILS in CI (`CI=true`), where `.ci/run` installs mariadb-server-core and mariadb-client-core.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


@dataclass(frozen=True)
class MySql:
    host: str
    port: int
    user: str = "root"
    database: str = "mysql"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:mysql://{self.host}:{self.port}/{self.database}"


def binaries() -> tuple[str, str] | None:
    """The server and the data-folder initialiser, when both are installed."""
    server = shutil.which("mariadbd", path=SEARCH) or shutil.which("mysqld", path=SEARCH)
    install = shutil.which("mariadb-install-db", path=SEARCH) or shutil.which("mysql_install_db", path=SEARCH)
    return (server, install) if server and install else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the MariaDB server ended: {log.read_text()[-2000:] if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the MariaDB server did not listen within 60 s")


class Server:
    """install-db → mariadbd → … → SIGTERM, in a folder removed afterwards."""

    def __init__(self, server: str, install: str) -> None:
        self.server, self.install = server, install
        self.root = Path(tempfile.mkdtemp(prefix="kestractl-mysql-"))
        # As root, mariadbd runs as root only when told so (it would otherwise look for a `mysql` user).
        self.user = ["--user=root"] if os.geteuid() == 0 else []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MySql:
        data = self.root / "data"
        subprocess.run(
            [self.install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *self.user],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port = _free_port()
        log = self.root / "error.log"
        self.process = subprocess.Popen(
            [self.server, "--no-defaults", f"--datadir={data}", "--bind-address=127.0.0.1", f"--port={port}",
             f"--socket={self.root / 'sock'}", f"--log-error={log}", "--skip-log-bin",
             "--innodb-buffer-pool-size=16M", *self.user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_until_listening(port, self.process, log)
        return MySql("127.0.0.1", port)

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(30)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def mysql() -> Iterator[MySql]:
    """A running MariaDB server for the whole session (skips locally without one, fails in CI)."""
    found = binaries()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("MariaDB (mariadbd, mariadb-install-db) is not installed: .ci/run installs it")
        pytest.skip("needs MariaDB (mariadbd and mariadb-install-db)")
    server = Server(*found)
    try:
        yield server.start()
    finally:
        server.stop()
