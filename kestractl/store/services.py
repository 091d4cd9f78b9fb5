"""Kestra's `service_instance` registry: each server component (EXECUTOR, WORKER, SCHEDULER, WEBSERVER) has a row,
its heartbeat is `updated_at`, and a coordinator moves the rows of components that stopped heartbeating. Rows are
few (a handful per server process), so the coordinator reads the live ones and decides in Python."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from kestractl.model import iso, parse_iso
from kestractl.store.part import StorePart


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


_COLUMNS = "id, type, state, server_id, server_type, version, hostname, pid, created_at, updated_at, config, seq_id"


def _instance(row: Any) -> ServiceInstance:
    config = ServerConfig(**json.loads(row[10]))
    created, updated = parse_iso(row[8]), parse_iso(row[9])
    assert created is not None and updated is not None
    values = (row[0], ServiceType(row[1]), ServiceState(row[2]), *row[3:8], created, updated, config, row[11])
    return ServiceInstance(*values)


class ServiceQueries(StorePart):
    """A part of `Store`: the service instances of every server process sharing the database."""

    def register_services(self, instances: list[ServiceInstance]) -> None:
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO service_instances ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(instance) for instance in instances],
            )

    def heartbeat_services(self, ids: list[str], now: datetime) -> int:
        """Renews the heartbeat of those of `ids` still running; returns how many were (fewer: a coordinator
        judged this process dead meanwhile)."""
        marks = ", ".join("?" * len(ids))
        running = tuple(state.value for state in RUNNING_STATES)
        cursor = self.conn.execute(  # one statement: its own transaction
            f"UPDATE service_instances SET updated_at=?, seq_id=seq_id+1 WHERE id IN ({marks}) AND state IN (?, ?)",
            (iso(now), *ids, *running),
        )
        return cursor.rowcount

    def set_services_state(self, ids: list[str], state: ServiceState, now: datetime) -> None:
        marks = ", ".join("?" * len(ids))
        with self.transaction():
            self.conn.execute(
                f"UPDATE service_instances SET state=?, updated_at=?, seq_id=seq_id+1 WHERE id IN ({marks})",
                (state.value, iso(now), *ids),
            )

    def service_instances(self, include_ended: bool = False) -> list[ServiceInstance]:
        """Every instance not NOT_RUNNING (with `include_ended`, all of them), oldest first."""
        where = "" if include_ended else " WHERE state<>'NOT_RUNNING'"
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM service_instances{where} ORDER BY created_at, id")
        return [_instance(row) for row in rows]

    def service_instance(self, service_id: str) -> ServiceInstance | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM service_instances WHERE id=?", (service_id,)).fetchone()
        return _instance(row) if row else None

    def transition_dead_services(self, now: datetime) -> list[ServiceInstance]:
        """The coordinator's pass: running instances whose heartbeat is older than their timeout → DISCONNECTED;
        leaving ones past their termination grace period → NOT_RUNNING. Each move is conditional on the row's
        `seq_id` (Kestra's guard against concurrent updates), so of several coordinators one makes it. Returns
        the instances this call moved, as they were before."""
        instances = self.service_instances()
        moves = [(i, ServiceState.DISCONNECTED) for i in instances if i.heartbeat_expired(now)]
        gone = [i for i in instances if i.state in LEAVING_STATES and i.grace_elapsed(now)]
        moves += [(instance, ServiceState.NOT_RUNNING) for instance in gone]
        return [instance for instance, state in moves if self._move(instance, state, now)]

    def _move(self, instance: ServiceInstance, state: ServiceState, now: datetime) -> bool:
        with self.transaction():
            cursor = self.conn.execute(
                "UPDATE service_instances SET state=?, updated_at=?, seq_id=seq_id+1 WHERE id=? AND seq_id=?",
                (state.value, iso(now), instance.id, instance.seq_id),
            )
            return cursor.rowcount > 0


def _row(instance: ServiceInstance) -> tuple[Any, ...]:
    config = json.dumps(vars(instance.config))
    head = (instance.id, instance.type.value, instance.state.value, instance.server_id, instance.server_type)
    tail = (instance.pid, iso(instance.created_at), iso(instance.updated_at), config, instance.seq_id)
    return (*head, instance.version, instance.hostname, *tail)


__all__ = ["ServerConfig", "ServiceInstance", "ServiceQueries", "ServiceState", "ServiceType"]
