"""The scheduler: turns due cron dates and ended executions into new executions.

`tick(now)` takes the time as a parameter so tests drive it without sleeping. Every decision
(schedules in `triggers/schedule.py`, flow triggers in `triggers/flow.py`) is pure; this module
acts on them: creates the executions, stores the next fire date in the same transaction, and
hands the executions to the runner.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kestractl.engine.runner import Runner
from kestractl.engine.variables import build_variables
from kestractl.errors import KestraError, StoreError
from kestractl.expressions import render_value
from kestractl.model import Execution, Flow, label_pairs, label_text, utcnow
from kestractl.server.polling import EnabledTrigger, Polls
from kestractl.store import TriggerState
from kestractl.triggers import flow as flow_trigger
from kestractl.triggers import schedule
from kestractl.triggers.conditions import ConditionContext, all_met
from kestractl.triggers.validate import SCHEDULE

log = logging.getLogger("kestractl.scheduler")


class FlowIndex:
    """The latest revision of every flow, parsed; reloaded only when the flows table changed."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._version: tuple[int, int, int] | None = None
        self.flows: list[Flow] = []

    def refresh(self) -> list[Flow]:
        version = self.runner.store.flows_version()
        if version != self._version:
            self._version = version
            flows = []
            for row in self.runner.store.latest_sources():
                try:
                    flows.append(self.runner.flows.get(row.namespace, row.id, row.revision))
                except KestraError as exc:
                    log.warning("flow %s.%s cannot be loaded: %s", row.namespace, row.id, exc.message)
            self.flows = flows
        return self.flows


class Scheduler:
    def __init__(
        self, runner: Runner, on_started: Callable[[Execution, str], None] | None = None, executes: bool = True
    ) -> None:
        """`executes`: hand the executions to this process's runner; False (`server scheduler`): leave them
        CREATED in the store for an executor elsewhere."""
        self.runner = runner
        self.executes = executes
        self.index = FlowIndex(runner)
        self.on_started = on_started
        self._next: dict[tuple[str, str, str], TriggerState] = {}
        self._indexed: list[Flow] | None = None
        self._schedules: list[EnabledTrigger] = []
        self.polls = Polls(runner, self._started, _signature, ends_from_store=not executes)
        self._store_down = ""  # the last database error a tick met, said once

    def tick_or_say(self, say: Callable[[str, str], None]) -> None:
        """A server's tick: a database error (the database is away for a while) is said once, and the next tick
        tries again."""
        try:
            self.tick()
        except StoreError as exc:
            if exc.message != self._store_down:
                say("ERROR", exc.message)
            self._store_down = exc.message
        else:
            self._store_down = ""

    # ---- schedules ----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Execution]:
        """Start an execution for every schedule date due at `now`."""
        now = now or utcnow()
        started: list[Execution] = []
        disabled = self.runner.store.disabled_triggers()
        for item in self._enabled_schedules():
            if item.key in disabled:  # turned off by a Toggle task: where it stood is read again once back on
                self._next.pop(item.key, None)
                continue
            state = self._next.get(item.key) or self.runner.store.trigger_state(*item.key)
            if state is None or state.signature != item.signature or state.next_date <= now:
                started += self._fire(item, now)
            else:
                self._next[item.key] = state
        return started + self.polls.tick(self.index.flows, now)  # refreshed just above

    def _enabled_schedules(self) -> list[EnabledTrigger]:
        """Rebuilt only when the flows changed: the server ticks four times a second over every trigger."""
        flows = self.index.refresh()
        if flows is not self._indexed:
            self._indexed = flows
            self._schedules = [
                EnabledTrigger(flow, trigger, (flow.namespace, flow.id, str(trigger["id"])), _signature(trigger))
                for flow in flows
                if not flow.disabled
                for trigger in flow.triggers
                if trigger.get("type") in SCHEDULE and not trigger.get("disabled")
            ]
        return self._schedules

    def _fire(self, item: EnabledTrigger, now: datetime) -> list[Execution]:
        """Fire the dates due at `now` from the trigger's row as stored, claimed in the transaction that creates
        the executions and stores the next date: with any number of schedulers, a date fires once (or, after a
        crash, not at all and then once). The in-memory date only says when to look; the row decides."""
        started = []
        store = self.runner.store
        with store.transaction():
            state = self._claim(item, now)
            if state is None:  # another scheduler is firing it right now: its next date is read next tick
                self._next.pop(item.key, None)
                return []
            if state.next_date <= now:
                fires, state.next_date = schedule.due(item.trigger, state.next_date, now)
                started = [e for e in (self._start_scheduled(item.flow, item.trigger, f) for f in fires) if e]
                store.save_trigger_state(state)
        self._next[item.key] = state
        for execution in started:
            self._started(execution, f"schedule {item.trigger['id']}")
        return started

    def _claim(self, item: EnabledTrigger, now: datetime) -> TriggerState | None:
        """The trigger's row, held by this transaction (written first when the trigger is new), started afresh
        when the trigger's definition changed since it was stored; None when another scheduler holds it."""
        store = self.runner.store
        state = store.claim_trigger(*item.key, lambda: self._first(item, now))
        if state is not None and state.signature != item.signature:
            state = self._first(item, now)
            store.save_trigger_state(state)
        return state

    def _first(self, item: EnabledTrigger, now: datetime) -> TriggerState:
        return TriggerState(*item.key, item.signature, schedule.first_next(item.trigger, now))

    def _start_scheduled(self, flow: Flow, trigger: dict[str, Any], fire: schedule.Fire) -> Execution | None:
        variables = {"trigger": fire.variables(), "flow": {"id": flow.id, "namespace": flow.namespace}}
        if not all_met(trigger.get("conditions"), ConditionContext(variables=variables)):
            return None
        try:
            inputs = render_value(trigger.get("inputs") or {}, variables)
            labels = _labels(trigger)
            return self.runner.create_execution(
                flow, inputs, labels, {"id": trigger["id"], "type": trigger["type"], "variables": fire.variables()}
            )
        except KestraError as exc:
            log.error("schedule %s of %s.%s could not start: %s", trigger["id"], flow.namespace, flow.id, exc.message)
            return None

    # ---- flow triggers ------------------------------------------------------------------------

    def on_execution_end(self, upstream: Execution) -> list[Execution]:
        """Start every flow whose Flow trigger listens for this ended execution."""
        self.polls.on_execution_end(upstream)
        started = []
        upstream_flow = self._flow_of(upstream)
        disabled: set[tuple[str, str, str]] | None = None
        for flow in self.index.refresh():
            for trigger in flow_trigger.flow_triggers(flow):
                variables = self._upstream_variables(upstream_flow, upstream)
                windows = self._record_windows(flow, trigger, upstream, variables)
                if not flow_trigger.matches(flow, trigger, upstream, variables, windows):
                    continue
                disabled = self.runner.store.disabled_triggers() if disabled is None else disabled
                if (flow.namespace, flow.id, str(trigger["id"])) in disabled:
                    continue
                execution = self._start_from_flow(flow, trigger, upstream, variables)
                if execution is not None:
                    started.append(execution)
                    self._started(execution, f"flow trigger {trigger['id']} ({upstream.namespace}.{upstream.flow_id})")
        return started

    def _record_windows(
        self, flow: Flow, trigger: dict[str, Any], upstream: Execution, variables: dict[str, Any]
    ) -> dict[str, dict[str, bool]]:
        """The results of the trigger's MultipleConditions with this execution counted, kept in the store; a
        window whose conditions are all met starts afresh (`resetOnSuccess`), expired ones are dropped."""
        specs = flow_trigger.multiple_conditions(trigger)
        if not specs or not flow_trigger.listens(flow, trigger, upstream, variables):
            return {}
        now, store, results = utcnow(), self.runner.store, {}
        with store.transaction():
            for spec in specs:
                stored = store.condition_window(flow.namespace, flow.id, str(spec["id"]))
                window = flow_trigger.record_window(flow, spec, stored, upstream, variables, now)
                if window is None:
                    continue
                results[window.condition_id] = window.results
                if flow_trigger.fulfilled(spec, window) and spec.get("resetOnSuccess", True) is not False:
                    store.delete_condition_window(window)
                elif window.results:
                    store.save_condition_window(window)
            store.delete_expired_condition_windows(now)
        return results

    def _flow_of(self, execution: Execution) -> Flow | None:
        try:
            return self.runner.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
        except KestraError:
            return None

    def _upstream_variables(self, upstream_flow: Flow | None, upstream: Execution) -> dict[str, Any]:
        variables = build_variables(upstream_flow, upstream) if upstream_flow else {}
        return {**variables, "trigger": flow_trigger.trigger_variables(upstream)}

    def _start_from_flow(
        self, flow: Flow, trigger: dict[str, Any], upstream: Execution, variables: dict[str, Any]
    ) -> Execution | None:
        try:
            inputs = render_value(trigger.get("inputs") or {}, variables)
            return self.runner.create_execution(
                flow,
                inputs,
                _labels(trigger),
                {"id": trigger["id"], "type": trigger["type"], "variables": flow_trigger.trigger_variables(upstream)},
                validate_inputs=False,
            )
        except KestraError as exc:
            log.error("flow trigger %s of %s.%s failed: %s", trigger["id"], flow.namespace, flow.id, exc.message)
            return None

    def _started(self, execution: Execution, why: str) -> None:
        if self.executes:
            self.runner.submit(execution.id)
        if self.on_started is not None:
            self.on_started(execution, why)


def _signature(trigger: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(trigger, sort_keys=True, default=str).encode()).hexdigest()


def _labels(trigger: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, label_text(value)) for key, value in label_pairs(trigger.get("labels")) or []]
