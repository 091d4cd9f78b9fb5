"""Liveness (Kestra's `ServiceLivenessManager` and `ServiceLivenessCoordinator`): a server registers one service
instance per component it runs, renews their heartbeat every `heartbeat_interval` on a thread of its own, and (when
it runs an executor) coordinates: instances of any process whose heartbeat is older than their timeout become
DISCONNECTED, then NOT_RUNNING after their termination grace period. The database being away for a while is said
once and retried: it never stops the server nor delays its engine loop."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from kestractl import __version__
from kestractl.model import utcnow
from kestractl.store import Store
from kestractl.store.service_records import (
    RUNNING_STATES,
    UNCLEAN_STATES,
    ServerConfig,
    ServiceInstance,
    ServiceState,
    ServiceType,
)

# What `server standalone` runs, one instance each (Kestra's standalone also registers an INDEXER: kestractl
# writes its rows directly, so has none).
STANDALONE_SERVICES = (ServiceType.EXECUTOR, ServiceType.WORKER, ServiceType.SCHEDULER, ServiceType.WEBSERVER)
# How often the coordinator looks at most (Kestra's `liveness.interval`); shorter with a short timeout.
COORDINATOR_SECONDS = 5.0

Say = Callable[[str, str], None]


class ServiceLiveness:
    """This process's service instances and, with `coordinate`, the coordinator of every process's."""

    def __init__(
        self,
        store: Store,
        config: ServerConfig,
        say: Say,
        coordinate: bool = True,
        services: tuple[ServiceType, ...] = STANDALONE_SERVICES,
        state: ServiceState = ServiceState.RUNNING,
    ) -> None:
        """`services`: the components this process runs (one alone: a server of that type, as Kestra names it);
        `state`: CREATED for an instance that heartbeats but takes no work from others (a CLI's in-process run)."""
        self.store, self.config, self.say, self.coordinate = store, config, say, coordinate
        now, server_id, hostname = utcnow(), str(uuid.uuid4()), socket.gethostname()
        self.server_id = server_id
        server_type = services[0].value if len(services) == 1 else "STANDALONE"
        self.instances = [
            ServiceInstance(
                *(str(uuid.uuid4()), kind, state, server_id, server_type, __version__, hostname),
                *(os.getpid(), now, now, config),
            )
            for kind in services
        ]
        self.ids = [instance.id for instance in self.instances]
        self._trouble = ""  # the last database problem said, so a lasting one is said once
        self.disowned = False  # a coordinator judged this server dead (said once; a component then stops)

    def register(self) -> None:
        self.store.register_services(self.instances)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: heartbeat, and coordinate after the timeout (Kestra's `initialDelay`: components
        restarting together get the time to heartbeat first); then close this thread's connection."""
        interval = min(COORDINATOR_SECONDS, self.config.timeout / 3)
        next_pass = time.monotonic() + self.config.timeout
        while not stop.wait(self.config.heartbeat_interval):
            self.guarded(self.heartbeat)
            if self.coordinate and time.monotonic() >= next_pass:
                next_pass = time.monotonic() + interval
                self.guarded(self.coordinate_pass)
        self.store.close()

    def heartbeat(self) -> None:
        disowned = self.store.heartbeat_services(self.ids, utcnow()) < len(self.ids)
        if disowned and not self.disowned:
            self.say("WARN", "liveness: a coordinator judged this server's services dead (heartbeats came too late)")
        self.disowned = disowned

    def coordinate_pass(self) -> None:
        """Mark dead services, and re-emit the task runs dead workers held (see `Store.reemit_worker_jobs`)."""
        lost = self.store.reemit_worker_jobs(self.mark_dead_services(), utcnow())
        for worker_id in sorted({result.worker_id or "" for result in lost}):
            count = sum(1 for result in lost if result.worker_id == worker_id)
            self.say("WARN", f"liveness: re-emitting {count} task runs of the dead worker {worker_id}")

    def mark_dead_services(self) -> list[str]:
        """One coordinator pass (see `Store.transition_dead_services`), each move logged. Returns the ids of the
        WORKER instances that ended uncleanly and whose termination grace period is over: those whose task runs
        are to be re-emitted (Kestra's default AFTER_TERMINATION_GRACE_PERIOD strategy)."""
        moved = self.store.transition_dead_services(utcnow(), self.server_id)
        for i in moved:
            where = f"[id={i.id}, type={i.type.value}, hostname={i.hostname}, pid={i.pid}]"
            self.say("WARN", f"service {where} was {i.state.value}: now {_next(i).value}")
        return [i.id for i in moved if i.type is ServiceType.WORKER and i.state in UNCLEAN_STATES]

    def leave(self, state: ServiceState) -> None:
        """TERMINATING when the server starts stopping, TERMINATED_GRACEFULLY once it has (best effort: a
        database away at that moment is said, and the coordinators judge the rows by their heartbeat)."""
        self.guarded(lambda: self.store.set_services_state(self.ids, state, utcnow()))

    def guarded(self, action: Callable[[], object]) -> None:
        """Run `action`; any failure (the database away, locked, restarting) is said once and tried again later."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - this thread must outlive any database trouble
            if str(exc) != self._trouble:
                self.say("ERROR", f"liveness: {exc}")
            self._trouble = str(exc)
            return
        if self._trouble:
            self.say("INFO", "liveness: the database answers again")
            self._trouble = ""


def _next(instance: ServiceInstance) -> ServiceState:
    """Where the coordinator moved `instance` from its state."""
    return ServiceState.DISCONNECTED if instance.state in RUNNING_STATES else ServiceState.NOT_RUNNING
