"""Execution ownership in the runner, on both stores: an owning runner drives only what it claims, and a runner
whose execution was taken over (it was judged dead while only slow) persists no decision about it any more."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pytest

from kestractl.engine.ownership import CLAIM_SECONDS
from kestractl.engine.runner import Runner
from kestractl.errors import ConflictError
from kestractl.model import State
from kestractl.server.liveness import ServiceLiveness
from kestractl.storage import LocalStorage
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServerConfig, ServiceType
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

FLOW = """id: two
namespace: owned
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: two
"""


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    opened = open_store(store_url)
    opened.save_flow("owned", "two", FLOW)
    yield opened
    opened.close()


def _owning_runner(store: Store, tmp_path: Path) -> Runner:
    liveness = ServiceLiveness(store, ServerConfig(), lambda level, message: None, services=(ServiceType.EXECUTOR,))
    liveness.register()
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    runner.own(liveness.ids[0], worker_queue=False)
    return runner


def _set_owner(store: Store, execution_id: str, owner: str) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE executions SET owner=? WHERE id=?", (owner, execution_id))


def test_an_owning_runner_drives_only_what_it_owns(store: Store, tmp_path: Path) -> None:
    runner, other = _owning_runner(store, tmp_path), _owning_runner(store, tmp_path)
    flow = runner.flows.get("owned", "two")
    mine, theirs = runner.create_execution(flow), runner.create_execution(flow)
    _set_owner(store, theirs.id, str(other.owner))
    assert runner.run(mine.id).state.current == State.SUCCESS
    with pytest.raises(ConflictError, match="driven by another executor"):
        runner.run(theirs.id)
    assert store.execution_state(theirs.id) == State.CREATED
    runner.close()
    other.close()


def test_a_runner_whose_execution_was_taken_over_persists_nothing_more(store: Store, tmp_path: Path) -> None:
    runner = _owning_runner(store, tmp_path)
    execution = runner.create_execution(runner.flows.get("owned", "two"))
    runner._activate(execution.id)  # driven here …
    _set_owner(store, execution.id, "successor")  # … until another executor took it over
    runner._loop()
    assert store.execution_state(execution.id) == State.CREATED and store.load_execution(execution.id).task_runs == []
    assert execution.id not in runner._active
    runner.close()


def test_an_owning_loop_waits_no_longer_than_its_next_claim(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executions whose runs only compute end within the decisions that claimed them, so nothing else wakes the
    loop: while unclaimed executions wait, it waits for its next claim, not POLL_SECONDS (a burst of 2,000 webhook
    calls on PostgreSQL ended at 320/s instead of 780/s)."""
    runner = _owning_runner(store, tmp_path)
    flow = runner.flows.get("owned", "two")
    created = [runner.creator.create_execution(flow) for _ in range(250)]  # rows only, as a webserver writes them
    waits: list[tuple[float, bool]] = []
    take = runner._inbox.take

    def taken(timeout: float, dirty: Collection[str]) -> Iterator[Callable[[], None]]:
        waits.append((timeout, bool(store.find_execution_ids(states=[State.CREATED.value], limit=1))))
        return take(timeout, dirty)

    monkeypatch.setattr(runner._inbox, "take", taken)
    stop = threading.Event()
    serving = threading.Thread(target=runner.serve, args=(stop,))
    serving.start()
    deadline = time.monotonic() + 30
    while store.count_executions(states=[State.SUCCESS.value]) < len(created) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    serving.join(10)
    runner.close()
    assert store.count_executions(states=[State.SUCCESS.value]) == len(created)
    assert [t for t, waiting in waits if waiting and t > CLAIM_SECONDS[0]] == []
