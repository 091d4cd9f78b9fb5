"""Server components as real processes over one database, for the multi-process tests: start them, kill them,
stop them, and create executions as CREATED rows (as `server scheduler` or a webserver leaves them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kestractl.config import Home
from kestractl.engine.creation import ExecutionCreator
from kestractl.engine.flows import FlowRepository
from kestractl.storage import open_storage
from kestractl.store import Store

EXE = str(Path(sys.executable).parent / "kestractl")
# Short liveness settings: a killed worker is declared dead (timeout) and its jobs re-emitted (grace) in seconds.
LIVENESS = ["--heartbeat-interval", "0.3", "--heartbeat-timeout", "1.5", "--grace", "1"]


class Cluster:
    """Component processes sharing `url` and a home folder; their output goes to files under `home`."""

    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KESTRACTL_HOME": str(self.home), "KESTRACTL_DATABASE_URL": self.url}
        with open(self.home / f"{name}.log", "wb") as log:
            process = subprocess.Popen([EXE, "server", *command], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def name_of(self, store: Store, service_id: str) -> str:
        """The name of the process that registered the service instance `service_id`."""
        pids = {process.pid: name for name, process in self.processes.items()}
        instance = store.service_instance(service_id)
        assert instance is not None, service_id
        return pids[instance.pid]

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(10)

    def stop_all(self) -> None:
        """SIGTERM to each process still running, then wait for it (SIGKILL after a while)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def create_executions(store: Store, home: Path, namespace: str, flow_id: str, count: int) -> list[str]:
    """`count` CREATED executions of the deployed flow, nobody driving them."""
    flow = FlowRepository(store).get(namespace, flow_id)
    creator = ExecutionCreator(store, open_storage(Home(home)))
    return [creator.create_execution(flow).id for _ in range(count)]


def wait_for(check: Callable[[], bool], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
