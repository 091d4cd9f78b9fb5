"""Polling triggers (Kestra's `PollingTriggerInterface`): a trigger that looks at something every `interval` (an
HTTP endpoint, a query, a folder) and starts an execution when it finds something. The core HTTP Trigger is one;
a plugin adds others by registering a `PollingTrigger` subclass. The server's scheduler runs the polls
(`server/polling.py`); a class here only declares its properties and makes one poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from kestractl.durations import parse_duration
from kestractl.errors import KestraError
from kestractl.model import State
from kestractl.storage import Storage
from kestractl.tasks.properties import Declared, Prop

# What every polling trigger accepts besides the common trigger properties.
POLLING_PROPERTIES: dict[str, Prop | str] = {
    "interval": Prop("The interval between two polls.", type="duration", default="PT60S", dynamic=False)
}


class PollContext:
    """What a poll may use: rendering with the flow's variables, the declared properties, logs, storage."""

    def __init__(
        self,
        variables: dict[str, Any],
        renderer: Callable[[Any, dict[str, Any]], Any],
        storage: Storage,
        log: Callable[[str, str], None],
        stop: threading.Event | None = None,
    ) -> None:
        self.variables = variables
        self.storage = storage
        self.stop = stop or threading.Event()
        self._renderer = renderer
        self._log = log

    def render(self, value: Any, extra: dict[str, Any] | None = None) -> Any:
        return self._renderer(value, {**self.variables, **extra} if extra else self.variables)

    def log(self, level: str, message: str) -> None:
        self._log(level, message)


class PollingTrigger(Declared):
    """Subclass it, declare `properties`, `outputs` (the new execution's `trigger.*`) and implement `poll`."""

    properties = POLLING_PROPERTIES

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def interval(self) -> timedelta:
        """Static (a trigger's rhythm is known at deploy time), positive."""
        return parse_duration(str(self.spec.get("interval") or self.all_properties()["interval"].default))

    def prop(self, ctx: PollContext, name: str) -> Any:
        """A declared property, rendered, defaulted and converted (`RunContext.prop` for a poll)."""
        try:
            return self.rendered(name, ctx.render)
        except ValueError as error:
            raise KestraError(str(error)) from None

    def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        """One poll: the new execution's `trigger.*` variables when something was found, else None. Raises
        `KestraError` (one line, logged by the scheduler) when the poll cannot be made."""
        raise NotImplementedError

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The declarations' checks, a positive interval, and `stopAfter` (execution states)."""
        problems = super().validate(spec)
        interval = spec.get("interval")
        if interval is not None and not problems and parse_duration(str(interval)) <= timedelta(0):
            problems.append("interval: must be positive")
        stop_after = spec.get("stopAfter")
        if stop_after is not None and (
            not isinstance(stop_after, list) or any(str(s) not in State.__members__ for s in stop_after)
        ):
            problems.append("stopAfter: must be a list of execution states (e.g. SUCCESS, FAILED)")
        return problems
