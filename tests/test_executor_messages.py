"""Messages between executors, on both stores: a child's end reaches its parent's owner when a takeover split them;
a flow's queued execution is started by whichever executor frees a slot; a subflow run left RUNNING without its
children (the database went away in between) creates them once on recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kestractl.engine.runner import Runner
from kestractl.errors import StoreError
from kestractl.model import State, utcnow
from kestractl.server.liveness import ServiceLiveness
from kestractl.storage import LocalStorage
from kestractl.store import Store, open_store
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

CHILD = """id: child
namespace: msg
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "child {{ execution.id }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.hello.value }}"
"""
PARENT = """id: parent
namespace: msg
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: msg
    flowId: child
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.call.outputs.said }}"
"""
LIMITED = """id: limited
namespace: msg
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
"""


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    opened = open_store(store_url)
    for flow_id, source in (("child", CHILD), ("parent", PARENT), ("limited", LIMITED)):
        opened.save_flow("msg", flow_id, source)
    yield opened
    opened.close()


def _executor(store: Store, tmp_path: Path) -> tuple[Runner, ServiceLiveness]:
    """An owning runner with a registered EXECUTOR service instance (heartbeats are not needed in these tests)."""
    liveness = ServiceLiveness(store, ServerConfig(), lambda level, message: None, services=(ServiceType.EXECUTOR,))
    liveness.register()
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    runner.own(liveness.ids[0], worker_queue=False)
    return runner, liveness


def _owner(store: Store, execution_id: str) -> str | None:
    row = store.conn.execute("SELECT owner FROM executions WHERE id=?", (execution_id,)).fetchone()  # type: ignore[attr-defined]
    return None if row is None else row[0]


def _subflow_ends(store: Store) -> list[tuple[str, str]]:
    rows = store.conn.execute("SELECT parent_id, child_id FROM subflow_ends")  # type: ignore[attr-defined]
    return [(r[0], r[1]) for r in rows]


def _serve_until(runner: Runner, check: Callable[[], bool], seconds: float = 30) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=runner.serve, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    try:
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)


def test_a_childs_end_reaches_its_parent_owned_by_another_executor(store: Store, tmp_path: Path) -> None:
    first, first_liveness = _executor(store, tmp_path)
    parent = first.create_execution(first.flows.get("msg", "parent"))
    first._activate(parent.id)
    first._iterate(idle_wait=False)  # the parent waits for its child, both owned by `first` …
    [child_id] = store.child_execution_ids(parent.id)
    assert _owner(store, child_id) == first.owner == _owner(store, parent.id)
    store.set_services_state(first_liveness.ids, ServiceState.NOT_RUNNING, utcnow())  # … until it died
    second, _ = _executor(store, tmp_path)
    with store.transaction() as conn:  # a takeover split them: the child is another executor's
        conn.execute("UPDATE executions SET owner=? WHERE id=?", (second.owner, child_id))
    assert second.run(child_id).state.current == State.SUCCESS
    assert _subflow_ends(store) == [(parent.id, child_id)]  # the end waits for the parent's owner, whoever it is
    third, _ = _executor(store, tmp_path)  # claims the dead executor's parent, then takes the child's end
    _serve_until(third, lambda: store.execution_state(parent.id).is_terminated())
    ended = store.load_execution(parent.id)
    assert ended.state.current == State.SUCCESS and _owner(store, parent.id) == third.owner
    assert ended.task_runs[-1].outputs == {"value": f"child {child_id}"}
    assert store.child_execution_ids(parent.id) == [child_id] and _subflow_ends(store) == []
    for runner in (first, second, third):
        runner.close()


def test_a_queued_execution_starts_when_another_executor_frees_the_slot(store: Store, tmp_path: Path) -> None:
    first, _ = _executor(store, tmp_path)
    second, second_liveness = _executor(store, tmp_path)
    flow = first.flows.get("msg", "limited")
    one, two = first.create_execution(flow), second.create_execution(flow)
    assert first.run(one.id).state.current == State.PAUSED  # occupies the only slot
    assert second.run(two.id).state.current == State.QUEUED  # counted across executors: queued by `second` …
    assert _owner(store, two.id) == second.owner
    store.set_services_state(second_liveness.ids, ServiceState.NOT_RUNNING, utcnow())  # … which then died
    assert first.resume(one.id).state.current == State.SUCCESS
    assert store.execution_state(two.id) == State.PAUSED and _owner(store, two.id) == first.owner
    three = first.create_execution(flow)
    assert first.run(three.id).state.current == State.QUEUED
    assert first.resume(two.id).state.current == State.SUCCESS
    assert first.resume(three.id).state.current == State.SUCCESS
    for runner in (first, second):
        runner.close()


def test_a_subflow_run_left_without_children_creates_them_once(store: Store, tmp_path: Path) -> None:
    runner = Runner(store, LocalStorage(tmp_path / "storage"))
    parent = runner.create_execution(runner.flows.get("msg", "parent"))

    def away(*args: object, **kwargs: object) -> list[str]:
        raise StoreError("the database went away")

    runner.creator.create_children = away  # type: ignore[method-assign]  (between the decision and the children)
    with pytest.raises(StoreError):
        runner.run(parent.id)
    runner.close()
    stored = store.load_execution(parent.id)
    assert [(r.task_id, r.state.current) for r in stored.task_runs] == [("call", State.RUNNING)]
    assert store.child_execution_ids(parent.id) == []
    for _ in range(2):  # a restart recovers it; a second one creates no second child
        again = Runner(store, LocalStorage(tmp_path / "storage"))
        again._load_from_store()
        again._loop()
        again.close()
    assert store.execution_state(parent.id) == State.SUCCESS
    assert len(store.child_execution_ids(parent.id)) == 1
