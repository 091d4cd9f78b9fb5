"""`server scheduler`: Kestra's scheduler component alone. It evaluates the schedules and writes their executions
as CREATED rows; executors (in other processes, on the same PostgreSQL database) run them. Any number of these
may run at once: each due trigger row is claimed in the transaction that fires it (see `Scheduler._fire`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kestractl.config import Home
from kestractl.engine.runner import Runner
from kestractl.model import Execution
from kestractl.server.liveness import ServiceLiveness
from kestractl.server.scheduler import Scheduler
from kestractl.storage import open_storage
from kestractl.store import open_store
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType

Say = Callable[[str, str], None]


class SchedulerComponent:
    """The scheduler's loop over a store: a tick every `tick_seconds` until stopped, no executor loop."""

    def __init__(self, home: Home, database: str | None, say: Say, tick_seconds: float = 0.25) -> None:
        self.say = say
        self.tick_seconds = tick_seconds
        self.store = open_store(database or home.db_path)
        self.runner = Runner(self.store, open_storage(home), workers=1)
        self.scheduler = Scheduler(self.runner, on_started=self._created, executes=False)
        self.stop_event = threading.Event()
        self.liveness = ServiceLiveness(
            self.store, ServerConfig(), say, coordinate=False, services=(ServiceType.SCHEDULER,)
        )

    def serve(self) -> None:
        """Tick until `stop_event` is set (the caller wires signals to it)."""
        self.liveness.register()
        heartbeats = threading.Thread(target=self.liveness.run, args=(self.stop_event,), name="liveness", daemon=True)
        heartbeats.start()
        self.say("INFO", "scheduler started: executions are left CREATED for the executors")
        while not self.stop_event.is_set():
            self.scheduler.tick_or_say(self.say)
            self.stop_event.wait(self.tick_seconds)
        heartbeats.join()
        self.liveness.leave(ServiceState.TERMINATED_GRACEFULLY)
        self.runner.close()
        self.store.close()
        self.say("INFO", "stopped")

    def _created(self, execution: Execution, why: str) -> None:
        self.say("INFO", f"{execution.namespace}.{execution.flow_id}  {execution.id}  created by {why}")
