"""Timers and trigger state: pause delays and retry intervals due at a date, where each schedule stands, and
MultipleCondition windows. Rows written by the engine and the scheduler, read back at every start."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from kestractl.model import iso, parse_iso, utcnow
from kestractl.store.part import StorePart
from kestractl.store.records import Delay, MultipleConditionWindow, TriggerState


class TimerQueries(StorePart):
    """A part of `Store`: timers, schedule state and condition windows."""

    # ---- delays (timers) ---------------------------------------------------------------------

    def set_delay(self, delay: Delay) -> None:
        self.conn.execute(
            "INSERT INTO delays (execution_id, task_run_id, kind, due) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (execution_id, task_run_id, kind) DO UPDATE SET due=excluded.due",
            (delay.execution_id, delay.task_run_id, delay.kind, iso(delay.due)),
        )

    def remove_delay(self, execution_id: str, task_run_id: str, kind: str) -> bool:
        """True when this call removed it: whoever removes a due timer is the one who acts on it."""
        cursor = self.conn.execute(
            "DELETE FROM delays WHERE execution_id=? AND task_run_id=? AND kind=?",
            (execution_id, task_run_id, kind),
        )
        return cursor.rowcount > 0

    # ---- schedule triggers --------------------------------------------------------------------

    def trigger_state(self, namespace: str, flow_id: str, trigger_id: str) -> TriggerState | None:
        return self._trigger_row(namespace, flow_id, trigger_id, "")

    def claim_trigger(
        self, namespace: str, flow_id: str, trigger_id: str, new: Callable[[], TriggerState]
    ) -> TriggerState | None:
        """Inside a transaction: the trigger's row as committed, held by this transaction until it ends, so a fire
        date is fired by one scheduler only; None when another scheduler holds it now. A trigger without a row
        gets `new()` first, unless another scheduler has just written one (then that one stands)."""
        state = self._trigger_row(namespace, flow_id, trigger_id, self.dialect.claim)
        if state is None and self.trigger_state(namespace, flow_id, trigger_id) is None:
            first = new()
            self.conn.execute(
                "INSERT INTO triggers (namespace, flow_id, trigger_id, signature, next_date) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (namespace, flow_id, trigger_id) DO NOTHING",
                (namespace, flow_id, trigger_id, first.signature, first.next_date.isoformat()),
            )
            state = self._trigger_row(namespace, flow_id, trigger_id, self.dialect.claim)
        return state

    def _trigger_row(self, namespace: str, flow_id: str, trigger_id: str, claim: str) -> TriggerState | None:
        row = self.conn.execute(
            "SELECT signature, next_date FROM triggers WHERE namespace=? AND flow_id=? AND trigger_id=?" + claim,
            (namespace, flow_id, trigger_id),
        ).fetchone()
        if row is None:
            return None
        return TriggerState(namespace, flow_id, trigger_id, row[0], datetime.fromisoformat(row[1]))

    def save_trigger_state(self, state: TriggerState) -> None:
        """Where the schedule stands; whether it is disabled is kept as it was."""
        self.conn.execute(
            "INSERT INTO triggers (namespace, flow_id, trigger_id, signature, next_date) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET signature=excluded.signature,"
            " next_date=excluded.next_date",
            (state.namespace, state.flow_id, state.trigger_id, state.signature, state.next_date.isoformat()),
        )

    def trigger_execution(self, namespace: str, flow_id: str, trigger_id: str) -> str | None:
        """The execution a polling trigger started and waits for (Kestra's locked trigger), if any."""
        sql = "SELECT execution_id FROM triggers WHERE namespace=? AND flow_id=? AND trigger_id=?"
        row = self.conn.execute(sql, (namespace, flow_id, trigger_id)).fetchone()
        return None if row is None else row[0]

    def lock_trigger(self, namespace: str, flow_id: str, trigger_id: str, execution_id: str | None) -> None:
        """Lock the trigger while `execution_id` runs (None: unlock)."""
        with self.transaction():
            sql = "UPDATE triggers SET execution_id=? WHERE namespace=? AND flow_id=? AND trigger_id=?"
            self.conn.execute(sql, (execution_id, namespace, flow_id, trigger_id))

    # ---- MultipleCondition windows --------------------------------------------------------------

    def condition_window(self, namespace: str, flow_id: str, condition_id: str) -> MultipleConditionWindow | None:
        row = self.conn.execute(
            "SELECT start_date, end_date, results FROM multiple_conditions"
            " WHERE namespace=? AND flow_id=? AND condition_id=?",
            (namespace, flow_id, condition_id),
        ).fetchone()
        if row is None:
            return None
        start, end = datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])
        return MultipleConditionWindow(namespace, flow_id, condition_id, start, end, json.loads(row[2]))

    def save_condition_window(self, window: MultipleConditionWindow) -> None:
        self.conn.execute(
            "INSERT INTO multiple_conditions (namespace, flow_id, condition_id, start_date, end_date, results)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, flow_id, condition_id) DO UPDATE SET"
            " start_date=excluded.start_date, end_date=excluded.end_date, results=excluded.results",
            (
                window.namespace,
                window.flow_id,
                window.condition_id,
                window.start.isoformat(),
                window.end.isoformat(),
                json.dumps(window.results),
            ),
        )

    def delete_condition_window(self, window: MultipleConditionWindow) -> None:
        self.conn.execute(
            "DELETE FROM multiple_conditions WHERE namespace=? AND flow_id=? AND condition_id=?",
            (window.namespace, window.flow_id, window.condition_id),
        )

    def delete_expired_condition_windows(self, now: datetime) -> None:
        """Windows whose end has passed (ISO texts in UTC compare as dates)."""
        self.conn.execute("DELETE FROM multiple_conditions WHERE end_date < ?", (now.astimezone(UTC).isoformat(),))

    def disabled_triggers(self) -> set[tuple[str, str, str]]:
        rows = self.conn.execute("SELECT namespace, flow_id, trigger_id FROM triggers WHERE disabled=1")
        return {(r[0], r[1], r[2]) for r in rows}

    def delays(self, execution_id: str | None = None) -> list[Delay]:
        sql = "SELECT execution_id, task_run_id, kind, due FROM delays"
        rows = self.conn.execute(
            sql + (" WHERE execution_id=?" if execution_id else "") + " ORDER BY due",
            (execution_id,) if execution_id else (),
        )
        return [Delay(r[0], r[1], r[2], parse_iso(r[3]) or utcnow()) for r in rows]
