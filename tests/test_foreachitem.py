"""ForEachItem end to end (our own parent and child flows) and the splitter on its own."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from conftest import Cli, runs, state

import kestractl.engine.runner as runner_module
from kestractl.config import Home, resolve_home
from kestractl.engine.runner import Runner
from kestractl.model import Execution, State, TaskRun
from kestractl.storage import LocalStorage
from kestractl.store import open_store
from kestractl.tasks.splitter import parse_size, split


def _lines(tmp_path: Path, count: int, ending: str = "\n") -> Path:
    path = tmp_path / "items.txt"
    path.write_text("".join(f"line {i}{ending}" for i in range(1, count + 1)))
    return path


def test_each_batch_becomes_a_child_execution_and_outputs_merge_in_order(cli: Cli, tmp_path: Path) -> None:
    cli.deploy("batches/batch-child.yaml", "batches/batch-parent.yaml")
    code, execution = cli.execute("tests.batches", "batch-parent", "--input", f"file={_lines(tmp_path, 10)}")
    assert code == 0, execution
    assert [r["taskId"] for r in execution["taskRunList"]] == [
        "each",
        "each_split",
        "each_items",
        "each_merge",
        "merged",
    ]
    items = runs(execution, "each_items")[0]
    assert items["outputs"]["numberOfBatches"] == 4
    assert items["outputs"]["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 4}
    merged = runs(execution, "merged")[0]["outputs"]["value"].splitlines()
    assert merged == ['{first:"line 1"}', '{first:"line 4"}', '{first:"line 7"}', '{first:"line 10"}']
    children = json.loads(cli("executions", "list", "--flow", "batch-child", "--json").stdout)
    assert len(children) == 4 and {state(c) for c in children} == {"SUCCESS"}
    for child in children:
        labels = {label["key"]: label["value"] for label in child["labels"]}
        assert labels["system.correlationId"] == execution["id"] and labels["batch"] == "yes"
        assert "/tasks/each-split/" in child["inputs"]["items"]


def test_a_failing_batch_fails_the_parent_unless_transmit_failed_is_off(cli: Cli, tmp_path: Path) -> None:
    cli.deploy("batches/batch-child.yaml", "batches/batch-parent.yaml", "batches/batch-lenient.yaml")
    file = _lines(tmp_path, 9)
    code, failed = cli.execute("tests.batches", "batch-parent", "--input", f"file={file}", "--input", "fail_on=2")
    assert code == 1 and state(failed) == "FAILED"
    assert runs(failed, "each_items")[0]["outputs"]["iterations"] == {
        "CREATED": 0,
        "RUNNING": 0,
        "SUCCESS": 2,
        "FAILED": 1,
    }
    assert not runs(failed, "each_merge")
    code, lenient = cli.execute("tests.batches", "batch-lenient", "--input", f"file={file}", "--input", "fail_on=2")
    assert code == 0 and state(lenient) == "SUCCESS"


def test_an_empty_file_succeeds_without_children(cli: Cli, tmp_path: Path) -> None:
    cli.deploy("batches/batch-child.yaml", "batches/batch-parent.yaml")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, execution = cli.execute("tests.batches", "batch-parent", "--input", f"file={empty}")
    assert code == 0 and state(execution) == "SUCCESS"
    assert runs(execution, "each_items")[0]["outputs"] is None


def test_items_must_be_an_internal_storage_uri(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "bad-items.yaml"
    flow.write_text(
        "id: bad-items\nnamespace: tests\ntasks:\n  - id: each\n"
        "    type: io.kestra.core.tasks.flows.ForEachItem\n    items: /etc/passwd\n"
        "    namespace: tests\n    flowId: x\n"
    )
    cli("flow", "deploy", str(flow))
    code, execution = cli.execute("tests", "bad-items")
    assert code == 1
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "Unable to split the items from /etc/passwd, this is not an internal storage URI!" in logs


class _Sink:
    def __init__(self) -> None:
        self.files: list[BytesIO] = []

    def __call__(self, index: int) -> BinaryIO:
        buffer = _Kept()
        self.files.append(buffer)
        return buffer


class _Kept(BytesIO):
    def close(self) -> None:  # keep the bytes readable after `with`
        self.flush()


def test_splitter_by_rows_bytes_and_partitions(tmp_path: Path) -> None:
    source = _lines(tmp_path, 10, "\r\n")
    rows = _Sink()
    assert split(source, rows, rows=4) == 3
    assert [f.getvalue().count(b"\n") for f in rows.files] == [4, 4, 2]
    assert b"\r" not in b"".join(f.getvalue() for f in rows.files)
    sized = _Sink()
    split(source, sized, size=20)
    assert all(f.getvalue().count(b"\n") == 3 for f in sized.files[:-1])
    spread = _Sink()
    assert split(source, spread, partitions=3) == 3
    assert spread.files[0].getvalue().startswith(b"line 1\nline 4\n")
    custom = _Sink()
    split(source, custom, rows=5, separator=";")
    assert custom.files[0].getvalue() == b"line 1;line 2;line 3;line 4;line 5;"
    assert parse_size("10MB") == 10 * 1024 * 1024 and parse_size(512) == 512


SAMPLES = Path(__file__).parent.parent / "sample_flows"


def test_the_offline_seed_sample_runs_every_batch(cli: Cli) -> None:
    assert cli("flow", "deploy", str(SAMPLES)).exit_code == 0
    code, execution = cli.execute("qa", "each_parent_offline", "--input", f"orders={SAMPLES / 'data' / 'orders.csv'}")
    assert code == 0 and state(execution) == "SUCCESS", execution
    assert runs(execution, "extract")[0]["outputs"]["size"] == 1000
    items = runs(execution, "each_items")[0]["outputs"]
    assert items["numberOfBatches"] == 100 and items["iterations"]["SUCCESS"] == 100
    children = json.loads(cli("executions", "list", "--flow", "subflow", "--limit", "200", "--json").stdout)
    assert len(children) == 100 and {state(c) for c in children} == {"SUCCESS"}
    child = children[0]
    batch = cli("executions", "file", execution["id"], child["inputs"]["items"]).stdout
    assert len(batch.splitlines()) == 10 and batch.startswith("{order_id:")
    logged = cli("executions", "logs", child["id"], "--task", "read").stdout
    assert all(line in logged for line in batch.splitlines())


def test_the_online_seed_fails_fast_with_one_line_offline(cli: Cli) -> None:
    cli("flow", "deploy", str(SAMPLES))
    code, execution = cli.execute("qa", "each_parent")
    assert code == 1 and state(runs(execution, "extract")[0]) == "FAILED"
    errors = cli("executions", "logs", execution["id"], "--level", "ERROR").stdout.strip().splitlines()
    assert len(errors) == 1 and "httpfs" in errors[0]


WINDOW_CHILD = "id: window-child\nnamespace: tests.window\ninputs:\n  - id: items\n    type: STRING\ntasks:\n"
WINDOW_CHILD += "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.02S\n"
WINDOW_PARENT = """id: window-parent
namespace: tests.window
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 1
    namespace: tests.window
    flowId: window-child
    inputs:
      items: "{{ taskrun.items }}"
"""


def test_children_beyond_the_window_wait_as_rows_and_all_run(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 children must not be 100,000 executions in memory: at most ACTIVE_WINDOW are driven at once."""
    for name, text in (("child.yaml", WINDOW_CHILD), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    monkeypatch.setattr(runner_module, "ACTIVE_WINDOW", 4)
    home = resolve_home(cli.home)
    running: set[str] = set()
    peak = [0]

    def seen(execution: Execution, _: list[TaskRun]) -> None:
        if execution.parent_id is not None:
            if execution.state.current.is_terminated():
                running.discard(execution.id)
            else:
                running.add(execution.id)
            peak[0] = max(peak[0], len(running))

    runner = Runner(open_store(home.db_path), LocalStorage(home.storage_root), on_change=seen)
    flow = runner.flows.get("tests.window", "window-parent")
    parent = runner.create_execution(flow, {"file": str(_lines(tmp_path, 12))})
    assert runner.run(parent.id).state.current == State.SUCCESS
    children = json.loads(cli("executions", "list", "--flow", "window-child", "--json").stdout)
    assert len(children) == 12 and {state(c) for c in children} == {"SUCCESS"}
    assert peak[0] == 3  # the window holds the parent and three children


def test_killing_the_parent_ends_the_children_still_waiting_for_the_window(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, parent, driving, listed = _driving(cli, tmp_path, monkeypatch, "PT30S", window=4, children=9, running=3)
    Runner(open_store(home.db_path), LocalStorage(home.storage_root)).kill(parent.id)
    driving.join(15)
    assert not driving.is_alive()
    children = listed()
    assert len(children) == 9 and {state(c) for c in children} == {"KILLED"}, [state(c) for c in children]


def _driving(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nap: str, window: int, children: int, running: int
) -> tuple[Home, Execution, threading.Thread, Callable[[], list[dict[str, Any]]]]:
    """The window parent driven on a thread, its children napping `nap`, once `running` of them run: the home, the
    parent, the thread, and what lists the children."""
    for name, text in (("child.yaml", WINDOW_CHILD.replace("PT0.02S", nap)), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    monkeypatch.setattr(runner_module, "ACTIVE_WINDOW", window)
    home = resolve_home(cli.home)
    runner = Runner(open_store(home.db_path), LocalStorage(home.storage_root))
    parent = runner.create_execution(
        runner.flows.get("tests.window", "window-parent"), {"file": str(_lines(tmp_path, children))}
    )
    driving = threading.Thread(target=runner.run, args=(parent.id,), daemon=True)
    driving.start()
    listed = lambda: json.loads(cli("executions", "list", "--flow", "window-child", "--json").stdout)  # noqa: E731
    deadline = time.monotonic() + 10
    while sum(state(c) == "RUNNING" for c in listed()) < running and time.monotonic() < deadline:
        time.sleep(0.02)
    return home, parent, driving, listed


def test_a_child_costs_no_flow_lookup_nor_run_context_for_its_end(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What does not depend on the child is done once per start (the latest child flow is read once), and a
    child's end, counted on its parent, makes neither the parent's run context nor the child's own."""
    for name, text in (("child.yaml", WINDOW_CHILD), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    home = resolve_home(cli.home)
    store = open_store(home.db_path)
    runner = Runner(store, LocalStorage(home.storage_root))
    flow = runner.flows.get("tests.window", "window-parent")
    parent = runner.create_execution(flow, {"file": str(_lines(tmp_path, 12))})
    lookups: list[str] = []
    contexts: list[tuple[str, str | None]] = []
    revision, make = store.flow_revision, runner.contexts.make

    def flow_revision(namespace: str, flow_id: str, number: int | None = None) -> Any:
        lookups.append(flow_id)
        return revision(namespace, flow_id, number)

    def made(flow: Any, execution: Execution, tasks: Any, task: Any, run: TaskRun | None) -> Any:
        contexts.append((execution.flow_id, run.task_id if run else None))
        return make(flow, execution, tasks, task, run)

    monkeypatch.setattr(store, "flow_revision", flow_revision)
    monkeypatch.setattr(runner.contexts, "make", made)
    assert runner.run(parent.id).state.current == State.SUCCESS
    assert lookups.count("window-child") == 1
    assert ("window-child", None) not in contexts and ("window-parent", "each_items") in contexts
    assert contexts.count(("window-parent", "each_items")) == 1  # only to start the children


def test_children_are_written_and_read_a_window_at_a_time(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating the children is one statement per chunk of them; the first WAITING_KEPT are kept as created, and
    those beyond are read with one statement when they start: no execution row written or read per child."""
    for name, text in (("child.yaml", WINDOW_CHILD), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    monkeypatch.setattr(runner_module, "WAITING_KEPT", 5)
    home = resolve_home(cli.home)
    store = open_store(home.db_path)
    runner = Runner(store, LocalStorage(home.storage_root))
    parent = runner.create_execution(
        runner.flows.get("tests.window", "window-parent"), {"file": str(_lines(tmp_path, 12))}
    )
    written: list[int] = []
    read: list[int] = []
    save_executions, load_executions = store.save_executions, store.load_executions
    created = lambda executions: [e for e in executions if e.parent_id and e.state.current == State.CREATED]  # noqa: E731

    def save(executions: list[Execution]) -> None:
        written.append(len(created(executions)))
        save_executions(executions)

    def load(ids: list[str]) -> list[Execution]:
        found = load_executions(ids)
        read.append(len(created(found)))
        return found

    store.save_executions, store.load_executions = save, load  # type: ignore[method-assign]
    assert runner.run(parent.id).state.current == State.SUCCESS
    assert [n for n in written if n] == [12] and [n for n in read if n] == [7]


def test_a_child_killed_while_it_waits_is_not_run_from_what_was_kept(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child kept as created but killed by another process while it waits for the window is read again when its
    turn comes: it stays KILLED and runs nothing."""
    home, _, driving, listed = _driving(cli, tmp_path, monkeypatch, "PT0.5S", window=2, children=3, running=1)
    waiting = [c["id"] for c in listed() if state(c) == "CREATED"]
    assert len(waiting) == 2
    Runner(open_store(home.db_path), LocalStorage(home.storage_root)).kill(waiting[-1])
    driving.join(15)
    assert not driving.is_alive()
    children = {c["id"]: c for c in listed()}
    assert state(children[waiting[-1]]) == "KILLED" and not children[waiting[-1]].get("taskRunList")
    assert sorted(state(c) for c in children.values()) == ["KILLED", "SUCCESS", "SUCCESS"]


READING_CHILD = WINDOW_CHILD.split("  - id: nap")[0] + "  - id: value\n    type: io.kestra.plugin.core.debug.Return\n"
READING_CHILD += '    format: "{{ read(inputs.items) | trim }}"\n'


def test_a_child_reads_its_item_without_building_paths_for_the_allowed_folders(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`read()` checks a file against the execution's folders as text: no Path built per folder and per read."""
    for name, text in (("child.yaml", READING_CHILD), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    home = resolve_home(cli.home)
    store = open_store(home.db_path)
    runner = Runner(store, LocalStorage(home.storage_root))
    parent = runner.create_execution(
        runner.flows.get("tests.window", "window-parent"), {"file": str(_lines(tmp_path, 12))}
    )
    folders: list[str] = []
    folder = LocalStorage.folder
    monkeypatch.setattr(LocalStorage, "folder", lambda self, prefix: folders.append(prefix) or folder(self, prefix))
    assert runner.run(parent.id).state.current == State.SUCCESS
    children = [store.load_execution(i) for i in store.find_execution_ids(flow_id="window-child")]
    assert sorted(c.task_runs[0].outputs["value"] for c in children) == sorted(f"line {i}" for i in range(1, 13))
    assert folders == []


def test_the_split_and_the_streamed_logs_cost_nothing_per_batch_beyond_the_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The split writes each batch through a path string (no Path per batch), and `execute` asks once whether its
    log stream is a terminal, not once per streamed line (10,000 children log 10,000 lines)."""
    import pathlib

    import kestractl.cli.output as output

    for name, text in (("child.yaml", READING_CHILD), ("parent.yaml", WINDOW_PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    opened: list[str] = []
    asked: list[object] = []
    path_open, fancy = pathlib.Path.open, output.fancy

    def counted_open(self: pathlib.Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            opened.append(self.name)
        return path_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", counted_open)
    monkeypatch.setattr(output, "fancy", lambda stream=None: asked.append(stream) or fancy(stream))
    code, execution = cli.execute("tests.window", "window-parent", "--input", f"file={_lines(tmp_path, 12)}")
    assert code == 0 and runs(execution, "each_items")[0]["outputs"]["iterations"]["SUCCESS"] == 12
    assert [name for name in opened if name.startswith("0000")] == []
    assert len(asked) <= 2
