"""What the store returns besides model objects: flow rows, timers, trigger and condition state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class FlowRow:
    namespace: str
    id: str
    revision: int
    source: str
    created: str


@dataclass
class Delay:
    execution_id: str
    task_run_id: str
    kind: str
    due: datetime


@dataclass
class TriggerState:
    """Where a schedule stands: the next date to fire, for the trigger definition `signature`."""

    namespace: str
    flow_id: str
    trigger_id: str
    signature: str
    next_date: datetime


@dataclass
class MultipleConditionWindow:
    """Kestra's `MultipleConditionWindow`: which conditions of a MultipleCondition were met in [start, end]."""

    namespace: str
    flow_id: str
    condition_id: str
    start: datetime
    end: datetime
    results: dict[str, bool]

    def is_valid(self, now: datetime) -> bool:
        return self.start < now < self.end
