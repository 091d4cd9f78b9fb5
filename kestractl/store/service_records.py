"""What the liveness registry holds (Kestra's `ServiceInstance`, its types, states and `ServerConfig`), apart from
its queries (`store/services.py`): only servers and `server list` import it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from kestractl.model import iso, parse_iso


class ServiceType(str, Enum):
    """Kestra's `Service.ServiceType`."""

    EXECUTOR = "EXECUTOR"
    INDEXER = "INDEXER"
    SCHEDULER = "SCHEDULER"
    WEBSERVER = "WEBSERVER"
    WORKER = "WORKER"


class ServiceState(str, Enum):
    """Kestra's `Service.ServiceState`."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    ERROR = "ERROR"
    DISCONNECTED = "DISCONNECTED"
    TERMINATING = "TERMINATING"
    TERMINATED_GRACEFULLY = "TERMINATED_GRACEFULLY"
    TERMINATED_FORCED = "TERMINATED_FORCED"
    NOT_RUNNING = "NOT_RUNNING"
    EMPTY = "EMPTY"


# States whose component heartbeats (Kestra's `ServiceState.isRunning`): a stale heartbeat there means it died.
RUNNING_STATES = (ServiceState.CREATED, ServiceState.RUNNING)
# States a component leaves without heartbeating; after the termination grace period they become NOT_RUNNING.
LEAVING_STATES = (
    ServiceState.ERROR,
    ServiceState.DISCONNECTED,
    ServiceState.TERMINATING,
    ServiceState.TERMINATED_GRACEFULLY,
    ServiceState.TERMINATED_FORCED,
)
# The states a component was left in without cleaning up after itself (Kestra's "unclean shutdown").
UNCLEAN_STATES = (ServiceState.DISCONNECTED, ServiceState.TERMINATING)


@dataclass(frozen=True)
class ServerConfig:
    """Kestra's `ServerConfig` (durations in seconds): what the coordinator judges this instance's rows by."""

    heartbeat_interval: float = 3.0
    timeout: float = 45.0
    termination_grace_period: float = 300.0

    def to_api(self) -> dict[str, Any]:
        return {
            "terminationGracePeriod": _duration(self.termination_grace_period),
            "liveness": {"heartbeatInterval": _duration(self.heartbeat_interval), "timeout": _duration(self.timeout)},
        }


@dataclass(frozen=True)
class ServiceInstance:
    """One component of one server process (Kestra's `ServiceInstance` with its `ServerInstance`)."""

    id: str
    type: ServiceType
    state: ServiceState
    server_id: str
    server_type: str  # Kestra's ServerInstance.Type: STANDALONE, or SERVER for a single component
    version: str
    hostname: str
    pid: int
    created_at: datetime
    updated_at: datetime
    config: ServerConfig
    seq_id: int = 0

    def heartbeat_expired(self, now: datetime) -> bool:
        return self.state in RUNNING_STATES and self.updated_at + timedelta(seconds=self.config.timeout) < now

    def grace_elapsed(self, now: datetime) -> bool:
        return self.updated_at + timedelta(seconds=self.config.termination_grace_period) < now

    def to_api(self) -> dict[str, Any]:
        """Kestra's JSON of a ServiceInstance (`GET /api/v1/cluster/services/{id}`)."""
        server = {"id": self.server_id, "type": self.server_type, "version": self.version, "hostname": self.hostname}
        return {
            "id": self.id,
            "type": self.type.value,
            "state": self.state.value,
            "server": {**server, "props": {"pid": self.pid}},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "events": [],
            "config": self.config.to_api(),
            "props": {},
            "seqId": self.seq_id,
        }


def _duration(seconds: float) -> str:
    """An ISO-8601 duration as Jackson writes Java's `Duration` (`PT3S`, `PT0.5S`)."""
    return f"PT{seconds:g}S"


COLUMNS = "id, type, state, server_id, server_type, version, hostname, pid, created_at, updated_at, config, seq_id"


def instance_from(row: Any) -> ServiceInstance:
    config = ServerConfig(**json.loads(row[10]))
    created, updated = parse_iso(row[8]), parse_iso(row[9])
    assert created is not None and updated is not None
    values = (row[0], ServiceType(row[1]), ServiceState(row[2]), *row[3:8], created, updated, config, row[11])
    return ServiceInstance(*values)


def row_of(instance: ServiceInstance) -> tuple[Any, ...]:
    config = json.dumps(vars(instance.config))
    head = (instance.id, instance.type.value, instance.state.value, instance.server_id, instance.server_type)
    tail = (instance.pid, iso(instance.created_at), iso(instance.updated_at), config, instance.seq_id)
    return (*head, instance.version, instance.hostname, *tail)
