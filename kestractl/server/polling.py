"""Polling triggers in the server (the HTTP Trigger, and any a plugin registers). A due poll runs on a thread of
its own, so a slow endpoint never delays the scheduler's tick (Schedule triggers, queued executions); the tick
only starts polls and turns the finished ones into executions. One poll per trigger at a time, and none while
the execution it started runs (as Kestra locks a trigger until its execution ends); the next poll date is stored
like a schedule's, so a restart keeps the rhythm, and a trigger that `stopAfter` stopped stays stopped until its
definition changes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kestractl.engine.runner import Runner
from kestractl.errors import KestraError
from kestractl.expressions import render_value
from kestractl.model import Execution, Flow
from kestractl.store import TriggerState
from kestractl.tasks.registry import resolve_trigger
from kestractl.triggers.conditions import ConditionContext, all_met
from kestractl.triggers.polling import PollContext, PollingTrigger

log = logging.getLogger("kestractl.scheduler")

# The next poll date of a trigger that `stopAfter` stopped: never.
STOPPED = datetime.max.replace(tzinfo=UTC)
LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


@dataclass(frozen=True)
class EnabledTrigger:
    """An enabled trigger of a flow's latest revision, with the signature its stored state must match."""

    flow: Flow
    trigger: dict[str, Any]
    key: tuple[str, str, str]
    signature: str


class Polls:
    def __init__(
        self,
        runner: Runner,
        started: Callable[[Execution, str], None],
        signature: Callable[[dict[str, Any]], str],
        ends_from_store: bool = False,
    ) -> None:
        """`ends_from_store`: the executions run in other processes (`server scheduler`), so whether the one a
        trigger started has ended is read from the store rather than told by `on_execution_end`."""
        self.runner = runner
        self.ends_from_store = ends_from_store
        self._started = started
        self._signature = signature
        self._states: dict[tuple[str, str, str], TriggerState] = {}
        self._inflight: set[tuple[str, str, str]] = set()
        self._running: dict[tuple[str, str, str], str] = {}
        self._done: queue.Queue[tuple[EnabledTrigger, dict[str, Any] | None]] = queue.Queue()
        self._indexed: list[Flow] | None = None
        self._polls: dict[tuple[str, str, str], EnabledTrigger] = {}

    def tick(self, flows: list[Flow], now: datetime) -> list[Execution]:
        """Start the executions of the polls that ended since the last tick, then the polls now due."""
        started = self._collect()
        for item in self._enabled(flows).values():
            if item.key in self._inflight or self._still_running(item.key):
                continue
            if self._state(item, now).next_date <= now and self._reserve(item, now):
                self._inflight.add(item.key)
                threading.Thread(target=self._poll, args=(item,), name="polling-trigger", daemon=True).start()
        return started

    def on_execution_end(self, execution: Execution) -> None:
        """The trigger polls again; `stopAfter`: unless the execution ended in one of the listed states."""
        trigger = execution.trigger or {}
        key = (execution.namespace, execution.flow_id, str(trigger.get("id")))
        if self._running.get(key) == execution.id:
            del self._running[key]
        item = self._polls.get(key)
        if item is not None and execution.state.current.value in (item.trigger.get("stopAfter") or []):
            self._save(self._state(item, STOPPED), STOPPED)
            log.info("trigger %s of %s.%s stopped (stopAfter)", item.key[2], *item.key[:2])

    def _enabled(self, flows: list[Flow]) -> dict[tuple[str, str, str], EnabledTrigger]:
        if flows is not self._indexed:
            self._indexed = flows
            self._polls = {
                (flow.namespace, flow.id, str(trigger["id"])): EnabledTrigger(
                    flow, trigger, (flow.namespace, flow.id, str(trigger["id"])), self._signature(trigger)
                )
                for flow in flows
                if not flow.disabled
                for trigger in flow.triggers
                if not trigger.get("disabled") and resolve_trigger(str(trigger.get("type"))) is not None
            }
        return self._polls

    def _state(self, item: EnabledTrigger, now: datetime) -> TriggerState:
        """The stored next poll date; a new or changed trigger polls at once."""
        state = self._states.get(item.key) or self.runner.store.trigger_state(*item.key)
        if state is None or state.signature != item.signature:
            state = TriggerState(*item.key, item.signature, now)
        self._states[item.key] = state
        return state

    def _still_running(self, key: tuple[str, str, str]) -> bool:
        execution_id = self._running.get(key)
        if execution_id is None or not self.ends_from_store:
            return execution_id is not None
        found = self.runner.store.load_executions([execution_id])
        if found and not found[0].state.current.is_terminated():
            return True
        if found:
            self.on_execution_end(found[0])
        else:  # purged meanwhile
            del self._running[key]
        return False

    def _reserve(self, item: EnabledTrigger, now: datetime) -> bool:
        """Claim the trigger's row and store its next poll date, so one scheduler polls per interval however many
        run; False when another one holds the row or has already polled for this date."""
        store = self.runner.store
        with store.transaction():
            stored = store.claim_trigger(*item.key, lambda: self._states[item.key])
            if stored is None or self._locked(item.key):
                return False
            if stored.signature == item.signature and stored.next_date > now:
                self._states[item.key] = stored
                return False
            self._states[item.key].next_date = now + _polling(item).interval()
            store.save_trigger_state(self._states[item.key])
        return True

    def _locked(self, key: tuple[str, str, str]) -> bool:
        """Inside the claim: whether the execution the trigger started, as the row says (by any scheduler, before
        a restart too), still runs; one that ended (or was purged) unlocks it."""
        execution_id = self.runner.store.trigger_execution(*key)
        if execution_id is None:
            return False
        found = self.runner.store.load_executions([execution_id])
        if found and not found[0].state.current.is_terminated():
            return True
        self.runner.store.lock_trigger(*key, None)
        if found:  # its end told here (again: idempotent), in case it ended while no scheduler watched
            self.on_execution_end(found[0])
        return self._states[key].next_date == STOPPED  # `stopAfter`

    def _save(self, state: TriggerState, next_date: datetime) -> None:
        state.next_date = next_date
        with self.runner.store.transaction():
            self.runner.store.save_trigger_state(state)

    def _poll(self, item: EnabledTrigger) -> None:
        """On the poll's own thread: only the request and the condition; no store access."""
        variables = {"flow": {"id": item.flow.id, "namespace": item.flow.namespace}}
        outputs = None
        try:
            outputs = _polling(item).poll(PollContext(variables, render_value, self.runner.storage, _log))
        except KestraError as exc:
            log.warning("trigger %s of %s.%s: %s", item.key[2], *item.key[:2], exc.message)
        except Exception:  # a bug (a plugin's too) must not end polling for good
            log.exception("trigger %s of %s.%s failed", item.key[2], *item.key[:2])
        self._done.put((item, outputs))

    def _collect(self) -> list[Execution]:
        started = []
        while not self._done.empty():
            item, outputs = self._done.get()
            self._inflight.discard(item.key)
            current = self._polls.get(item.key)
            if outputs is not None and current is not None and current.signature == item.signature:
                execution = self._start(current, outputs)
                started += [execution] if execution is not None else []
        return started

    def _start(self, item: EnabledTrigger, outputs: dict[str, Any]) -> Execution | None:
        variables = {"trigger": outputs, "flow": {"id": item.flow.id, "namespace": item.flow.namespace}}
        if not all_met(item.trigger.get("conditions"), ConditionContext(variables=variables)):
            return None
        try:
            with self.runner.store.transaction():  # the execution and the trigger's lock on it, together
                execution = self.runner.create_execution(
                    item.flow, {}, [], {"id": item.key[2], "type": item.trigger["type"], "variables": outputs}
                )
                self.runner.store.lock_trigger(*item.key, execution.id)
        except KestraError as exc:
            log.error("trigger %s of %s.%s could not start: %s", item.key[2], *item.key[:2], exc.message)
            return None
        self._running[item.key] = execution.id
        self._started(execution, f"trigger {item.key[2]}")
        return execution


def _polling(item: EnabledTrigger) -> PollingTrigger:
    """The trigger's class, from the registry (found when the trigger was indexed), on the trigger's spec."""
    cls = resolve_trigger(str(item.trigger["type"]))
    assert cls is not None, item.trigger["type"]  # `_enabled` keeps only the types it resolves
    return cls(item.trigger)


def _log(level: str, message: str) -> None:
    log.log(LOG_LEVELS.get(level.upper(), logging.INFO), message)
