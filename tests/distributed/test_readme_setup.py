"""README's "Beyond one machine" setup, run as written: its two `runnable cluster` blocks, in order, against the
throwaway PostgreSQL cluster and an S3 server (moto) on 127.0.0.1. Only the addresses, the password, the bucket
and the port are swapped for the test's; every command is README's."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.cluster import EXE, wait_for
from tests.services.postgres import Postgres, binaries, postgres  # noqa: F401  (the session fixture)
from tests.services.s3 import S3Server, free_port, s3_server  # noqa: F401  (the session fixture)
from tests.test_docs import ROOT, logical_lines, runnable_blocks

SERVICES = ("EXECUTOR", "WORKER", "WORKER", "SCHEDULER", "WEBSERVER")


def cluster_blocks() -> list[str]:
    """The blocks README marks `runnable cluster`: the setup, then the commands that use it."""
    return [b.code for b in runnable_blocks() if b.note.startswith("cluster")]


class Setup:
    """README's blocks made to point at this test's services, run by bash in a process group of their own."""

    def __init__(self, folder: Path, server: Postgres, s3: S3Server, bucket: str) -> None:
        self.folder, self.port = folder, free_port()
        self.swaps = {
            "db.example.com": server.host, "5432": str(server.port), ":secret@": f":{server.password}@",
            "http://minio.example.com:9000": s3.endpoint, "my-bucket": bucket, "--host 0.0.0.0": "--host 127.0.0.1",
            "8080": str(self.port),
        }  # fmt: skip
        bindir = binaries()
        self.env = {
            **os.environ, "KESTRACTL_HOME": str(folder / "home"), "NO_COLOR": "1", "PGPASSWORD": server.password,
            "PATH": os.pathsep.join([str(Path(EXE).parent), str(bindir), os.environ["PATH"]]),
        }  # fmt: skip
        self.groups: list[int] = []

    def script(self, code: str) -> str:
        for old, new in self.swaps.items():
            code = code.replace(old, new)
        steps = [f'{{ {text}\n}} || {{ echo "README step failed: {text}" >&2; exit 1; }}' for _, text in
                 logical_lines(code)]  # fmt: skip
        return "set -u\n" + "\n".join(steps)

    def run(self, code: str, name: str, seconds: float = 60) -> str:
        """Run a block (its `&` commands keep running in its process group); its output."""
        log = self.folder / f"{name}.log"
        with log.open("wb") as sink:
            bash = subprocess.Popen(
                ["bash", "-c", self.script(code)], cwd=self.folder, env=self.env, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.groups.append(bash.pid)
        assert bash.wait(seconds) == 0, log.read_text()
        return log.read_text()

    def listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to every process the blocks started, SIGKILL to those still there after 30 s."""
        for group in self.groups:
            _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(_signal_group(g, 0) for g in self.groups) and time.monotonic() < deadline:
            time.sleep(0.2)
        for group in self.groups:
            _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, signum: int) -> bool:
    try:
        os.killpg(group, signum)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def setup(tmp_path: Path, postgres: Postgres, s3_server: S3Server) -> Iterator[Setup]:  # noqa: F811
    (tmp_path / "flows").mkdir()
    shutil.copy(ROOT / "sample_flows" / "hello-world.yaml", tmp_path / "flows")
    started = Setup(tmp_path, postgres, s3_server, s3_server.new_bucket())
    try:
        yield started
    finally:
        started.stop()
        _drop_database(postgres)


def _drop_database(server: Postgres) -> None:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS kestra WITH (FORCE)")


def test_the_copy_paste_setup_runs_an_execution_through_every_component(setup: Setup) -> None:
    start, use = cluster_blocks()
    setup.run(start, "start")
    exports = "\n".join(text for _, text in logical_lines(start) if text.startswith("export "))
    listed = ""

    def all_running() -> bool:
        nonlocal listed
        listed = setup.run(exports + "\nkestractl server list", "list", 30)
        return setup.listening() and sorted(line.split()[1] for line in listed.splitlines()[1:] if "RUNNING" in line) \
            == sorted(SERVICES)  # fmt: skip

    wait_for(all_running, f"the five components RUNNING ({listed})", 30)
    used = setup.run(exports + "\n" + use, "use", 60)
    assert "hello, kestra team wishes you a great day!" in used, used  # `execute` followed the logs
    assert re.search(r"dev\.hello-world\s+rev 1\s+SUCCESS", used), used  # … and its end
    assert re.search(r"\tdev\.hello-world\t1\tSUCCESS\t", used), used  # `executions list` through the webserver
