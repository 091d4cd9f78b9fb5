"""`server executor`: Kestra's executor component alone. Its loop claims the executions nobody drives (created by a
scheduler, a webserver, or left by an executor that stopped heartbeating) and alone decides them; runnable task runs
go to worker processes (`server worker`) as `worker_jobs` rows and come back as `worker_results` rows (see
`engine/queue_workers.py`). It runs the liveness coordinator, which re-emits the jobs of dead workers. Tasks that
change their execution run here, in the loop, as in every executor. Any number may share one database."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kestractl.config import Home
from kestractl.engine.runner import Runner
from kestractl.model import Execution, LogEntry
from kestractl.server.liveness import ServiceLiveness
from kestractl.storage import open_storage
from kestractl.store import open_store
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType

Say = Callable[[str, str], None]
# Threads for the runs an executor keeps (those inside a WorkingDirectory, which share a folder of this process).
LOCAL_THREADS = 4


class ExecutorComponent:
    """The executor loop over a store, owning what it claims, with a worker queue and the coordinator."""

    def __init__(
        self, home: Home, database: str | None, say: Say, config: ServerConfig, on_log: Callable[[LogEntry], None]
    ) -> None:
        self.say = say
        self.store = open_store(database or home.db_path)
        self.runner = Runner(self.store, open_storage(home), on_log=on_log, workers=LOCAL_THREADS, on_end=self._ended)
        self.liveness = ServiceLiveness(self.store, config, say, services=(ServiceType.EXECUTOR,))
        self.runner.own(self.liveness.ids[0], worker_queue=True)
        self.stop_event = threading.Event()

    def serve(self) -> None:
        """Run until `stop_event` is set (the caller wires signals to it); then hand the executions back."""
        self.liveness.register()
        heartbeats = threading.Thread(target=self.liveness.run, args=(self.stop_event,), name="liveness", daemon=True)
        heartbeats.start()
        self.say("INFO", f"executor {self.runner.owner} started: runs go to the workers")
        try:
            self.runner.serve(self.stop_event, tick=self._tick, say=self.say)
        finally:
            self.stop_event.set()
            heartbeats.join()
            self.liveness.leave(ServiceState.TERMINATING)
            self.runner.stop_gracefully(0, self.say)
            self.runner.close()
            self.liveness.leave(ServiceState.TERMINATED_GRACEFULLY)
            self.store.close()
            self.say("INFO", "stopped")

    def _tick(self) -> None:
        """Judged dead by a coordinator (heartbeats came too late), its executions may be another's already: it
        stops, as Kestra's components do (what it still owns is handed back)."""
        if self.liveness.disowned and not self.stop_event.is_set():
            self.say("WARN", "stopping: a coordinator judged this executor dead")
            self.stop_event.set()

    def _ended(self, execution: Execution) -> None:
        self.say("INFO", f"{execution.namespace}.{execution.flow_id}  {execution.id}  {execution.state.current.value}")
