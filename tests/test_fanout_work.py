"""What one ForEachItem child costs the engine, counted as work (calls, rows, encodings), not timed: 10,000 children
pay each of these 10,000 times, and the count holds on a busy machine."""

from __future__ import annotations

import gc
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from uuid import RFC_4122, UUID

import pytest

import kestractl.model
import kestractl.tasks.flowable as flowable
from kestractl.engine.executor import Executor
from kestractl.model import Execution, RecentTexts, State, StateInfo, TaskRun, instant_text, iso, new_id
from kestractl.parser import parse_flow
from kestractl.store import open_store
from kestractl.store.codec import state_data
from kestractl.store.repository import _RENUMBER_TASK_RUNS, _SAVE_TASK_RUNS
from tests.conftest import Cli, runs

ITEM = """id: item
namespace: bench.fanout
inputs:
  - id: items
    type: STRING
tasks:
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
"""


def test_a_one_task_child_looks_its_lists_up_seven_times_in_its_two_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting the task, then ending the execution once it succeeded: a flow without `errors` never looks up the
    runs of its (empty) errors list, and a list with no new child is not sliced again."""
    looked: list[str] = []
    list_runs = flowable.RunIndex.list_runs
    monkeypatch.setattr(flowable.RunIndex, "list_runs", lambda self, *a: looked.append("list") or list_runs(self, *a))
    execution = Execution(id="e", namespace="bench.fanout", flow_id="item", flow_revision=1)
    executor = Executor(parse_flow(ITEM, "item"), lambda task, run: pytest.fail("no context needed"))
    run = executor.step(execution, None).dispatch[0]
    run.attempts[-1].state.moved(State.SUCCESS)
    run.state.moved(State.SUCCESS)
    executor.step(execution, [run])
    assert execution.state.current == State.SUCCESS
    assert len(looked) == 7


def _one_digit_at_a_time(n: int) -> str:
    digits = []
    while n:
        n, r = divmod(n, 62)
        digits.append(kestractl.model._BASE62[r])
    return "".join(reversed(digits)) or "0"


@pytest.mark.parametrize("raw", [bytes(10), b"\xff" * 10, bytes(range(10)), os.urandom(10), b"\x00" * 9 + b"\x01"])
def test_an_id_is_its_uuid_in_base_62_two_digits_per_division(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the divisions of one digit at a time (two ids per child), and the same id: a version-7 UUID, its
    first 48 bits the time in milliseconds."""
    monkeypatch.setattr(kestractl.model.os, "urandom", lambda size: raw)
    monkeypatch.setattr(kestractl.model.time, "time_ns", lambda: 1_764_000_000_123_456_789)
    uuid = UUID(
        int=1_764_000_000_123 << 80 | int.from_bytes(raw) & kestractl.model._RANDOM_V7 | kestractl.model._UUID_V7
    )
    assert (uuid.version, uuid.variant) == (7, RFC_4122)
    assert new_id() == _one_digit_at_a_time(uuid.int)


def test_ids_made_later_sort_after_earlier_ones() -> None:
    """Rows created together are neighbours in an index on their ids (executions, task runs)."""
    first = new_id()
    time.sleep(0.002)
    later = [new_id() for _ in range(100)]
    assert all(len(i) == len(first) and i > first for i in later)


ERRORS = "errors:\n  - id: e1\n    type: io.kestra.plugin.core.log.Log\n    message: x\ntasks:"


def test_a_child_state_is_unchanged_by_the_lookups_it_no_longer_makes() -> None:
    """The same decisions as before: a failing task still switches a list to its errors."""
    flow = parse_flow(ITEM.replace("tasks:", ERRORS), "item")
    execution = Execution(id="e", namespace="bench.fanout", flow_id="item", flow_revision=1, state=StateInfo.new())
    executor = Executor(flow, lambda task, run: pytest.fail("no context needed"))
    run = executor.step(execution, None).dispatch[0]
    run.attempts[-1].state.moved(State.FAILED)
    run.state.moved(State.FAILED)
    step = executor.step(execution, [run])
    assert [r.task_id for r in step.dispatch] == ["e1"]


class CountedDate(datetime):
    """A date that counts how often it is formatted."""

    formatted: ClassVar[int] = 0

    def isoformat(self, *args: Any, **kwargs: Any) -> str:
        CountedDate.formatted += 1
        return super().isoformat(*args, **kwargs)


def test_a_state_saved_again_formats_none_of_its_dates_again() -> None:
    """A child's execution row is written three times and its task run twice, each with the whole history: a date
    is formatted once, whichever object holds it (a row read back holds equal dates, not the same ones), and
    Kestra's shorter text of it (columns, contexts, logs) is cut from that one text."""
    created, running = (CountedDate(2026, 12, 2, 3, 4, second, 123456, tzinfo=UTC) for second in (5, 6))
    state = StateInfo.new(State.CREATED, created)
    CountedDate.formatted = 0
    first = state_data(state)
    state.moved(State.RUNNING, running)
    second = state_data(state)
    again = state_data(StateInfo.from_api(second))
    assert (
        second
        == again
        == {
            "current": "RUNNING",
            "histories": [
                {"state": "CREATED", "date": "2026-12-02T03:04:05.123456+00:00"},
                {"state": "RUNNING", "date": "2026-12-02T03:04:06.123456+00:00"},
            ],
        }
    )
    assert first["histories"] == second["histories"][:1]
    assert CountedDate.formatted == 2
    assert [iso(created), iso(created), iso(created.replace(tzinfo=None).replace(tzinfo=UTC))] == [
        "2026-12-02T03:04:05.123Z"
    ] * 3
    assert CountedDate.formatted == 2


def test_a_date_in_another_zone_is_formatted_in_its_own() -> None:
    """The same instant written with another offset keeps its offset in a history, and is the same instant in
    Kestra's `Z` text."""
    utc = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert instant_text(utc) == "2026-12-02T03:04:05+00:00"
    assert instant_text(paris) == "2026-12-02T04:04:05+01:00"
    assert iso(paris) == iso(utc) == "2026-12-02T03:04:05.000Z"
    # Kestra's text is cut from the full one: milliseconds truncated, as `isoformat(timespec="milliseconds")` does.
    assert [iso(utc.replace(microsecond=m)) for m in (999, 123999, 1000)] == [
        "2026-12-02T03:04:05.000Z",
        "2026-12-02T03:04:05.123Z",
        "2026-12-02T03:04:05.001Z",
    ]


PARENT = """id: each
namespace: bench.fanout
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 1
    namespace: bench.fanout
    flowId: item
    inputs:
      items: "{{ taskrun.items }}"
"""


def test_execute_lets_the_garbage_collector_look_at_its_children_rarely(cli: Cli, tmp_path: Path) -> None:
    """300 children: the cyclic collector looked at the young objects (the children being driven) 50 times with
    Python's default of every 700 allocations; a few times now. The process's setting is back afterwards."""
    for name, text in (("item.yaml", ITEM), ("each.yaml", PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    items = tmp_path / "items.txt"
    items.write_text("".join(f"line {i}\n" for i in range(300)))
    collections: list[int] = []
    before = gc.get_threshold()

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(counted)
    try:
        code, execution = cli.execute("bench.fanout", "each", "--input", f"file={items}")
    finally:
        gc.callbacks.remove(counted)
    assert code == 0 and runs(execution, "each_items")[0]["outputs"]["iterations"]["SUCCESS"] == 300
    assert len(collections) <= 10, collections
    assert gc.get_threshold() == before


def test_recent_texts_keep_what_is_asked_for_again_and_drop_the_rest() -> None:
    """1,000 children are driven at once, each writing its dates again a little later: a date in use stays while
    the cache turns over, so a child's dates are formatted once, not once per save."""
    made: list[str] = []
    texts = RecentTexts(2, lambda key: made.append(key) or key.upper())
    assert (texts["a"], texts["b"], texts["c"]) == ("A", "B", "C")  # the new generation was full at c: a, b old
    assert texts["a"] == "A"  # asked for again: back in the new one, beside c
    texts["d"]  # full again: c and a are the old one, b is gone
    assert (texts["a"], texts["c"], texts["b"]) == ("A", "C", "B")
    assert made == ["a", "b", "c", "d", "b"]  # only b was made twice


SAVES = (_SAVE_TASK_RUNS, _RENUMBER_TASK_RUNS)


def test_a_task_run_written_again_keeps_its_position_and_index_entry(tmp_path: Path) -> None:
    """A child's run is written twice (RUNNING, then its end): the second write changes its data only, so SQLite's
    plan for it deletes no index entry; a restart, which renumbers the runs, still moves them."""
    store = open_store(tmp_path / "k.db")
    execution = Execution(id="e", namespace="bench.fanout", flow_id="item", flow_revision=1, state=StateInfo.new())
    first, second = (TaskRun(id=i, execution_id="e", task_id=i, state=StateInfo.new()) for i in ("r1", "r2"))
    plans = {sql: [row[1] for row in store.conn.execute("EXPLAIN " + sql, ("r", "e", 0, "{}"))] for sql in SAVES}
    assert [plan.count("IdxDelete") for plan in plans.values()] == [0, 1]
    with store.transaction():
        store.save_execution(execution)
        store.save_task_runs("e", [(0, first), (1, second)])
    first.state.moved(State.RUNNING)
    with store.transaction():
        store.save_task_runs("e", [(5, first)])  # a position that differs is not written: the run keeps its own
    assert [(r.id, r.state.current) for r in store.load_execution("e").task_runs] == [
        ("r1", State.RUNNING),
        ("r2", State.CREATED),
    ]
    with store.transaction():
        store.save_task_runs("e", [(0, second), (1, first)], renumbered=True)
    assert [r.id for r in store.load_execution("e").task_runs] == ["r2", "r1"]


def test_a_start_reads_the_static_settings_of_foreachitem_once_not_once_per_child(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inheritLabels` is the same for every batch and `wait` matters only once every child ended: 200 children
    read them once each, where each child read both (a static property is converted at every read)."""
    import kestractl.tasks.foreachitem as foreachitem

    for name, text in (("item.yaml", ITEM), ("each.yaml", PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    items = tmp_path / "items.txt"
    items.write_text("".join(f"line {i}\n" for i in range(200)))
    read: list[str] = []
    static = foreachitem.static
    monkeypatch.setattr(foreachitem, "static", lambda task, name: read.append(name) or static(task, name))
    code, execution = cli.execute("bench.fanout", "each", "--input", f"file={items}")
    assert code == 0 and runs(execution, "each_items")[0]["outputs"]["iterations"]["SUCCESS"] == 200
    assert read.count("inheritLabels") == 1
    assert read.count("wait") == 2  # when the children started, and when the last one ended
