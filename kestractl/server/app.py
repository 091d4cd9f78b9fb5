"""`server standalone`: the runner's loop, the scheduler, the flow directory and the HTTP listener
in one process. Stops cleanly: no new work, running task runs get a grace period, then are killed."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from kestractl.config import Home
from kestractl.engine.runner import Runner
from kestractl.model import Execution, LogEntry
from kestractl.server.api import Api
from kestractl.server.executions import Executions, RunnerExecutions
from kestractl.server.http import make_server
from kestractl.server.liveness import ServiceLiveness
from kestractl.server.scheduler import Scheduler
from kestractl.server.watch import FlowDirectory, FolderWatcher, NamespaceFilesDirectory
from kestractl.storage import open_storage
from kestractl.store import open_store
from kestractl.store.service_records import ServerConfig, ServiceState
from kestractl.ui import app as ui
from kestractl.ui.context import FlowFile, UiContext

# How often the server copies the WAL into the database (a passive checkpoint, off the commit path).
CHECKPOINT_SECONDS = 1.0

Say = Callable[[str, str], None]


@dataclass
class ServerOptions:
    flow_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 8
    watch: bool = True
    basic_auth: tuple[str, str] | None = None
    grace_seconds: float = 30.0
    tick_seconds: float = 0.25
    watch_seconds: float = 0.1
    namespace_files: Path | None = None
    database: str | None = None  # a database URL; None: the home's SQLite file
    heartbeat_interval: float = 3.0  # Kestra's `liveness.heartbeatInterval`
    heartbeat_timeout: float = 45.0  # Kestra's `liveness.timeout`: a component silent this long is DISCONNECTED


def http_server(
    executions: Executions, options: ServerOptions, flow_file: FlowFile | None = None
) -> ThreadingHTTPServer:
    """Kestra's `/api/v1` and the UI on one router (the UI's actions call the API, so both are one path), bound;
    execution links name the bound port, which `--port 0` chose."""
    api = Api(executions)
    router = api.routes()
    ui.add_routes(router, UiContext(executions, flow_file or (lambda namespace, flow_id: None)))
    server = make_server(router, options.host, options.port, basic_auth=options.basic_auth)
    api.base_url = f"http://{options.host}:{server.server_address[1]}"
    return server


class StandaloneServer:
    def __init__(
        self, home: Home, options: ServerOptions, say: Say, on_log: Callable[[LogEntry], None] | None = None
    ) -> None:
        self.options = options
        self.say = say
        self.store = open_store(options.database or home.db_path, background_checkpoints=True)
        self.runner = Runner(self.store, open_storage(home), on_log=on_log, workers=options.workers, on_end=self._ended)
        self.scheduler = Scheduler(self.runner, on_started=self._started)
        storage = self.runner.storage
        self.flow_directory = FlowDirectory(options.flow_path, self.store, say) if options.flow_path else None
        self.folders: list[FolderWatcher] = [
            *([self.flow_directory] if self.flow_directory else []),
            *([NamespaceFilesDirectory(options.namespace_files, storage, say)] if options.namespace_files else []),
        ]
        self.stop_event = threading.Event()
        config = ServerConfig(options.heartbeat_interval, options.heartbeat_timeout, options.grace_seconds)
        self.liveness = ServiceLiveness(self.store, config, say)
        self._http = http_server(RunnerExecutions(self.runner), options, self._flow_file)
        self._last_tick = 0.0

    def _flow_file(self, namespace: str, flow_id: str) -> Path | None:
        return self.flow_directory.source_of(namespace, flow_id) if self.flow_directory else None

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def serve(self) -> None:
        """Run until `stop_event` is set (the caller wires signals to it), then stop cleanly."""
        threads = [
            threading.Thread(target=self._http.serve_forever, name="http", daemon=True),
            threading.Thread(target=self._checkpoints, name="checkpoints", daemon=True),
            threading.Thread(target=self.liveness.run, args=(self.stop_event,), name="liveness", daemon=True),
        ]
        self.liveness.register()
        for folder in self.folders:
            folder.poll()
            if self.options.watch:  # its own thread: an edit goes live without waiting for the loop's tick
                watch = (self.stop_event, self.options.watch_seconds)
                threads.append(threading.Thread(target=folder.watch, args=watch, name="watch", daemon=True))
        for thread in threads:
            thread.start()
        # What start-up left (modules, parsed flows) lives as long as the process: out of the collector's sight,
        # a full collection scans only what executions allocate (one stalled every execution for ~200 ms).
        gc.freeze()
        self.say("INFO", f"listening on http://{self.options.host}:{self.port}")
        try:
            self.runner.serve(self.stop_event, tick=self._tick, say=self.say)
        finally:
            self.stop_event.set()
            self._http.shutdown()
            self._http.server_close()
            for thread in threads[1:]:
                thread.join()
            self.say("INFO", "stopping: waiting for running tasks")
            self.liveness.leave(ServiceState.TERMINATING)
            self.runner.stop_gracefully(self.options.grace_seconds, self.say)
            self.liveness.leave(ServiceState.TERMINATED_GRACEFULLY)
            self.runner.close()
            self.say("INFO", "stopped")

    def _checkpoints(self) -> None:
        """The WAL is copied into the database here, off the path of every commit (see `Store`)."""
        self.store.checkpoint_every(CHECKPOINT_SECONDS, self.stop_event, lambda exc: self.say("ERROR", exc.message))

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_tick >= self.options.tick_seconds:
            self._last_tick = now
            self.scheduler.tick_or_say(self.say)

    def _started(self, execution: Execution, why: str) -> None:
        self.say("INFO", f"{execution.namespace}.{execution.flow_id}  {execution.id}  started by {why}")

    def _ended(self, execution: Execution) -> None:
        self.say("INFO", f"{execution.namespace}.{execution.flow_id}  {execution.id}  {execution.state.current.value}")
        self.scheduler.on_execution_end(execution)
