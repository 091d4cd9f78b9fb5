"""The runner's parts stand alone: a process that only creates executions (a webserver, a scheduler) or
only runs task attempts (a worker) loads neither the executor loop nor the runner."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from conftest import Cli

from kestractl.config import resolve_home
from kestractl.engine.creation import ExecutionCreator
from kestractl.engine.flows import FlowRepository
from kestractl.engine.runner import Runner
from kestractl.model import State
from kestractl.storage import LocalStorage
from kestractl.store import open_store


def test_creation_and_dispatch_import_without_the_loop() -> None:
    code = (
        "import sys, kestractl.engine.creation, kestractl.engine.dispatch\n"
        "print(sorted(m for m in sys.modules if m in ('kestractl.engine.loop', 'kestractl.engine.runner')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_execution_created_without_a_loop_is_a_row_that_a_runner_drives_later(cli: Cli) -> None:
    cli.deploy("hello.yaml")
    home = resolve_home(cli.home)
    store, storage = open_store(home.db_path), LocalStorage(home.storage_root)
    creator = ExecutionCreator(store, storage)
    flow = FlowRepository(store).get("tests", "hello")
    created = creator.create_execution(flow, {"greeting": "hi"}, labels=[("team", "a"), ("team", "b")])
    stored = store.load_execution(created.id)
    assert stored.state.current == State.CREATED and stored.task_runs == []
    assert stored.labels == [("team", "b"), ("system.correlationId", created.id)]
    runner = Runner(store, storage)
    try:
        ended = runner.run(created.id)
    finally:
        runner.close()
    assert ended.state.current == State.SUCCESS
    assert [m.message for m in store.logs(ended, "INFO")] == ["hi, from tests.hello"]


NAP = """id: nap
namespace: parts
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def test_closing_the_workers_stops_what_still_runs(tmp_path: Path) -> None:
    """A server stops its runs (drain) before it closes its workers; what still runs then (a run the loop no longer
    waits for) is stopped too, or the worker thread it holds keeps the process from exiting for the rest of it."""
    store = open_store(tmp_path / "k.db")
    store.save_flow("parts", "nap", NAP)
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    execution = runner.create_execution(runner.flows.get("parts", "nap"))
    runner._activate(execution.id)
    runner._advance_group()  # decided, committed, handed to a worker thread
    ((_, stop),) = runner._inflight.items()
    runner._inflight.clear()
    assert stop is not None and not stop.is_set()
    runner.close()
    assert stop.is_set()
    for thread in [t for t in threading.enumerate() if t.name.startswith("worker")]:
        thread.join(5)
        assert not thread.is_alive()
