"""The runner's parts stand alone: a process that only creates executions (a webserver, a scheduler) or
only runs task attempts (a worker) loads neither the executor loop nor the runner."""

from __future__ import annotations

import subprocess
import sys

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
