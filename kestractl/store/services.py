"""Kestra's `service_instance` registry: each server component (EXECUTOR, WORKER, SCHEDULER, WEBSERVER) has a row,
its heartbeat is `updated_at`, and a coordinator moves the rows of components that stopped heartbeating. Rows are
few (a handful per server process), so the coordinator reads the live ones and decides in Python. The records are
imported when first used: every command's store has these queries, few commands use them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from kestractl.model import iso
from kestractl.store.part import StorePart

if TYPE_CHECKING:
    from kestractl.store.service_records import ServiceInstance, ServiceState


class ServiceQueries(StorePart):
    """A part of `Store`: the service instances of every server process sharing the database."""

    def register_services(self, instances: list[ServiceInstance]) -> None:
        from kestractl.store import service_records as records

        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO service_instances ({records.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [records.row_of(instance) for instance in instances],
            )

    def heartbeat_services(self, ids: list[str], now: datetime) -> int:
        """Renews the heartbeat of those of `ids` still running; returns how many were (fewer: a coordinator
        judged this process dead meanwhile)."""
        from kestractl.store.service_records import RUNNING_STATES

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
        from kestractl.store.service_records import COLUMNS, instance_from

        where = "" if include_ended else " WHERE state<>'NOT_RUNNING'"
        rows = self.conn.execute(f"SELECT {COLUMNS} FROM service_instances{where} ORDER BY created_at, id")
        return [instance_from(row) for row in rows]

    def service_instance(self, service_id: str) -> ServiceInstance | None:
        from kestractl.store.service_records import COLUMNS, instance_from

        row = self.conn.execute(f"SELECT {COLUMNS} FROM service_instances WHERE id=?", (service_id,)).fetchone()
        return instance_from(row) if row else None

    def transition_dead_services(self, now: datetime, coordinator_server: str) -> list[ServiceInstance]:
        """The coordinator's pass over the other servers' instances (as Kestra's, it never judges its own server):
        running instances whose heartbeat is older than their timeout → DISCONNECTED; leaving ones past their
        termination grace period → NOT_RUNNING. Each move is conditional on the row's `seq_id` (Kestra's guard
        against concurrent updates), so of several coordinators one makes it. Returns the instances this call
        moved, as they were before."""
        from kestractl.store.service_records import LEAVING_STATES, ServiceState

        instances = [i for i in self.service_instances() if i.server_id != coordinator_server]
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
