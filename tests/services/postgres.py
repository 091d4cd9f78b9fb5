"""A throwaway PostgreSQL cluster for tests: made with the machine's `initdb`/`pg_ctl` in a temporary folder,
listening on 127.0.0.1 and an OS-assigned port (its socket in that folder too), started once per test session.

Use the `postgres` fixture (import it into a test module or a conftest). Without PostgreSQL a test skips on a
developer's machine and FAILS in CI (`CI=true`), where `.ci/run` installs it. As root, the cluster's commands
run as the `postgres` user (PostgreSQL refuses to run as root), so the folder is given to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "kestra"
PASSWORD = "k3stra-pw"
DATABASE = "postgres"


@dataclass(frozen=True)
class Postgres:
    """Where the running cluster answers, and as whom."""

    host: str
    port: int
    user: str = USER
    password: str = PASSWORD
    database: str = DATABASE

    @property
    def jdbc_url(self) -> str:
        """Kestra's form: `jdbc:postgresql://127.0.0.1:PORT/postgres`."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        """A libpq URL with the credentials, for psycopg and for a `postgresql://` store."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


def binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major)
    return Path(folders[-1]) if folders and (Path(folders[-1]) / "initdb").exists() else None


def _major(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """initdb → pg_ctl start → … → pg_ctl stop, in a folder removed afterwards."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="kestractl-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}\n{tail}")

    def start(self) -> Postgres:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale",
            "--auth-host=scram-sha-256", "--auth-local=trust",
        )  # fmt: skip
        self.port = _free_port()
        self._start_server()
        return Postgres("127.0.0.1", self.port)

    def _start_server(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def restart(self, down_seconds: float = 0.0) -> None:
        """An administrator's restart: every session ended ("terminating connection due to administrator
        command"), the server away for `down_seconds`, then back on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        self._start_server()

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def own_cluster() -> Iterator[tuple[Cluster, Postgres]]:
    """A PostgreSQL server of the caller's own (one a test may restart), stopped afterwards; skips locally
    without PostgreSQL, fails in CI."""
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL (initdb, pg_ctl) is not installed: .ci/run installs the postgresql package")
        pytest.skip("needs PostgreSQL (initdb and pg_ctl)")
    cluster = Cluster(bindir)
    try:
        yield cluster, cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A running PostgreSQL server for the whole session (skips locally without PostgreSQL, fails in CI)."""
    with own_cluster() as (_, server):
        yield server
