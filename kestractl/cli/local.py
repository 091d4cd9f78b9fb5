"""The backend of a command without `--server`: this machine's store, storage and runner, as every command used
them before there was a remote mode. Each method imports what it uses, so a command imports what it did."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kestractl.cli.output import echo, error

if TYPE_CHECKING:
    from kestractl.cli.backend import ExecuteRequest, Watch
    from kestractl.cli.state import CliState
    from kestractl.deploy import Deployed
    from kestractl.engine.runner import Runner
    from kestractl.kv import KVStore
    from kestractl.model import Execution, LogEntry
    from kestractl.namespace_files import NamespaceFiles
    from kestractl.server.executions import StoredExecutions
    from kestractl.storage import Storage
    from kestractl.store import FlowRow, Store

# How often `execute` copies the WAL into the database (see `_checkpoints`).
CHECKPOINT_SECONDS = 0.25
# Allocations between two looks of the cyclic garbage collector at young objects while `execute` runs (see
# `_fewer_collections`): about what a flow of 5,000 tasks keeps alive (10,000 still made 2 collections per 1,000
# tasks, 3-20 ms each, 5-25% of a task's cost on a loaded machine).
COLLECT_EVERY = 100_000


class LocalBackend:
    def __init__(self, state: CliState) -> None:
        self.state = state
        self._opened: tuple[Store, Storage] | None = None

    def _open(self) -> tuple[Store, Storage]:
        """The home's store and storage, opened once however many calls a command makes (a folder's uploads)."""
        if self._opened is None:
            self._opened = self.state.open()
        return self._opened

    def _store(self) -> Store:
        return self._open()[0]

    # ---- flows --------------------------------------------------------------------------------

    def deploy(self, paths: list[Path]) -> list[Deployed]:
        from kestractl.deploy import deploy

        return deploy(self._store(), paths)

    def validate(self, paths: list[Path]) -> list[tuple[str, str, str]]:
        from kestractl.deploy import collect_files, load_flows

        return [(flow.namespace, flow.id, path) for flow, path in load_flows(collect_files(paths))]

    def flow_schema(self) -> dict[str, Any]:
        from kestractl.flow_schema import flow_schema

        return flow_schema()

    def flows(self, namespace: str | None) -> list[FlowRow]:
        return self._store().list_flows(namespace)

    def flow(self, namespace: str, flow_id: str, revision: int | None) -> FlowRow:
        return self._store().flow_revision(namespace, flow_id, revision)

    def sources(self) -> list[FlowRow]:
        return self._store().latest_sources()

    def revisions(self, namespace: str, flow_id: str) -> list[FlowRow]:
        return self._store().revisions(namespace, flow_id)

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self._store().delete_flow(namespace, flow_id)

    # ---- executions ---------------------------------------------------------------------------

    def execute(self, request: ExecuteRequest, watch: Watch) -> Execution:
        """On a shared PostgreSQL database with an executor alive, submitted to it and followed (`cli/submit.py`);
        otherwise run to its end in this process."""
        from kestractl.engine.runner import Runner  # before the home opens (see `kestractl.cli.main`)

        store, storage = self.state.open(background_checkpoints=True)  # see `_checkpoints`
        runner = Runner(store, storage, on_log=watch.on_log, on_change=watch.on_change)
        try:
            if self._on_postgres():
                return _shared(store, runner, request, watch)
            return _run(store, runner, _created(runner, request))
        finally:
            runner.close()

    def _runner(self, watch: Watch) -> Runner:
        from kestractl.engine.runner import Runner

        store, storage = self._open()
        return Runner(store, storage, on_log=watch.on_log, on_change=watch.on_change)

    def executions(self, namespace: str | None, flow_id: str | None, states: list[str], limit: int) -> list[Execution]:
        store = self._store()
        return [store.load_execution(i) for i in store.find_execution_ids(namespace, flow_id, states, limit)]

    def execution(self, execution_id: str) -> Execution:
        return self._store().load_execution(execution_id)

    def logs(self, execution_id: str, level: str, task_id: str | None) -> list[LogEntry]:
        store = self._store()
        return list(store.logs(store.load_execution(execution_id), level, task_id))

    def restart(self, execution_id: str, watch: Watch) -> Execution:
        if self._executor_alive():
            return _on_rows(self._open(), execution_id, watch, lambda rows: rows.restart(execution_id))
        return self._drive(watch, lambda runner: runner.restart(execution_id))

    def resume(self, execution_id: str, watch: Watch) -> Execution:
        if self._executor_alive():
            return _on_rows(self._open(), execution_id, watch, lambda rows: rows.resume(execution_id, None))
        return self._drive(watch, lambda runner: runner.resume(execution_id))

    def _executor_alive(self) -> bool:
        """On a shared PostgreSQL database, whether an executor drives executions (so this process must not)."""
        from kestractl.cli.submit import executor_alive

        return self._on_postgres() and executor_alive(self._store())

    def _on_postgres(self) -> bool:
        """A shared database: a string test only, so the default SQLite path queries and imports nothing more."""
        from kestractl.store import POSTGRES_SCHEMES

        return str(self.state.database_option or "").startswith(POSTGRES_SCHEMES)

    def kill(self, execution_id: str, watch: Watch) -> Execution:
        return self._drive(watch, lambda runner: runner.kill(execution_id))

    def _drive(self, watch: Watch, action: Callable[[Runner], Execution]) -> Execution:
        """`action` on a runner of this home, closed afterwards whatever happens."""
        runner = self._runner(watch)
        try:
            return action(runner)
        finally:
            runner.close()

    def execution_files(self, execution_id: str) -> list[tuple[str, int]]:
        from kestractl.storage import execution_prefix

        store, storage = self._open()
        execution = store.load_execution(execution_id)
        return list(storage.files_under(execution_prefix(execution.namespace, execution.flow_id, execution.id)))

    def execution_file(self, execution_id: str, uri: str) -> bytes:
        from kestractl.storage import execution_prefix

        store, storage = self._open()
        execution = store.load_execution(execution_id)
        return storage.read_under(execution_prefix(execution.namespace, execution.flow_id, execution.id), uri)

    # ---- KV store and namespace files ---------------------------------------------------------

    def _kv(self, namespace: str) -> KVStore:
        from kestractl.kv import KVStore
        from kestractl.storage import open_storage

        return KVStore(open_storage(self.state.home()), namespace)

    def kv_put(self, namespace: str, key: str, value: Any, ttl: timedelta | None) -> None:
        self._kv(namespace).put(key, value, ttl=ttl)

    def kv_get(self, namespace: str, key: str) -> tuple[Any] | None:
        found = self._kv(namespace).get(key)
        return None if found is None else (found.value,)

    def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        return [entry.to_api() for entry in self._kv(namespace).list()]

    def kv_delete(self, namespace: str, key: str) -> bool:
        return self._kv(namespace).delete(key)

    def _files(self, namespace: str) -> NamespaceFiles:
        from kestractl.namespace_files import NamespaceFiles

        return NamespaceFiles(self._open()[1], namespace)

    def file_put(self, namespace: str, path: str, source: Path) -> None:
        self._files(namespace).put(path, source)

    def file_paths(self, namespace: str) -> list[str]:
        return self._files(namespace).paths()

    def file_get(self, namespace: str, path: str) -> bytes:
        return self._files(namespace).get(path)

    def file_delete(self, namespace: str, path: str) -> bool:
        return self._files(namespace).delete(path)

    def services(self, include_ended: bool) -> list[dict[str, Any]]:
        return [instance.to_api() for instance in self._store().service_instances(include_ended)]


def _run(store: Store, runner: Runner, execution: Execution) -> Execution:
    with _checkpoints(store), _fewer_collections():
        return runner.run(execution.id)


def _shared(store: Store, runner: Runner, request: ExecuteRequest, watch: Watch) -> Execution:
    """On a shared database: submitted to a live executor and followed, or run here as its owner (see `submit`)."""
    from kestractl.cli.submit import NO_EXECUTOR, TAKEN_OVER, Follower, executor_alive, owned_here
    from kestractl.engine.loop import NotOwned

    if executor_alive(store):
        return Follower(store, _created(runner, request), watch).follow()
    echo(NO_EXECUTOR, err=True)
    with owned_here(store, runner):
        execution = _created(runner, request)
        try:
            ended = _run(store, runner, execution)
        except NotOwned:  # an executor started meanwhile claimed it before this run did: it drives it
            return Follower(store, execution, watch).follow()
        if store.own_executions(str(runner.owner), [execution.id]):
            return ended
    echo(TAKEN_OVER.format(execution.id), err=True)  # judged dead while it ran: its decisions were not kept
    return Follower(store, execution, watch).from_now().follow()


def _on_rows(
    opened: tuple[Store, Storage], execution_id: str, watch: Watch, command: Callable[[StoredExecutions], None]
) -> Execution:
    """A restart or resume written on the rows, as the webserver does, for the executor that owns the execution
    (driving it here too would decide it twice), then followed from the store to its end."""
    from kestractl.cli.submit import Follower
    from kestractl.server.executions import StoredExecutions

    store, storage = opened
    follower = Follower(store, store.load_execution(execution_id), watch).from_now()
    command(StoredExecutions(store, storage))
    return follower.follow()


def _created(runner: Runner, request: ExecuteRequest) -> Execution:
    """The CREATED execution `request` asks for, written; a flow or inputs refused is a ValidationError (exit 2)."""
    from kestractl.errors import KestraError, ValidationError

    try:
        flow = runner.flows.get(request.namespace, request.flow_id, request.revision)
        return runner.create_execution(flow, request.inputs, request.labels)
    except KestraError as exc:
        raise ValidationError(exc.message, getattr(exc, "problems", None)) from None


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector looks at every young object every COLLECT_EVERY allocations, instead of 700:
    with 700 it went over the executions the runner drives (a window of 1,000 ForEachItem children) again and again,
    15% of the run. The engine's objects are freed by reference counting (an execution and its runner hold no cycle),
    so garbage waits no longer for it; the previous setting is restored after the run."""
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _checkpoints(store: Store) -> Iterator[None]:
    """The WAL is copied into the database on a thread of its own while the execution runs, as in the server:
    a commit that checkpointed itself (every 4 MB of WAL) cost a long flow 10-25% of its time."""
    stop = threading.Event()
    thread = threading.Thread(
        target=store.checkpoint_every, args=(CHECKPOINT_SECONDS, stop, lambda exc: error(exc.message)), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
