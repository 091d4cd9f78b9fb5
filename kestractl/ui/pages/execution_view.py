"""What the execution page's templates draw, computed once in Python: task runs as a tree in reading order
(paged, so 5,000 runs never render at once), Gantt bars as positions on a 0–1000 scale, and the axis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from kestractl.model import Execution, StateInfo, TaskRun, utcnow
from kestractl.ui.filters import duration

PAGE_SIZE = 200
SCALE = 1000.0  # the Gantt's SVG width in user units
MIN_BAR = 2.0  # a run of a few milliseconds is still visible
JSON_LIMIT = 20_000  # characters of a task run's outputs shown inline

T = TypeVar("T")


@dataclass(frozen=True)
class Paged(Generic[T]):
    items: list[T]
    page: int
    pages: int
    total: int


def paged(items: list[T], page: int, size: int = PAGE_SIZE) -> Paged[T]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return Paged(items[(page - 1) * size : page * size], page, pages, len(items))


@dataclass(frozen=True)
class RunRow:
    run: TaskRun
    depth: int


def run_rows(execution: Execution) -> list[RunRow]:
    """Every task run under its parent, children in the order they were created (depth first)."""
    known = {run.id for run in execution.task_runs}
    children: dict[str | None, list[TaskRun]] = {}
    for run in execution.task_runs:
        parent = run.parent_task_run_id if run.parent_task_run_id in known else None
        children.setdefault(parent, []).append(run)
    rows: list[RunRow] = []
    stack = [(run, 0) for run in reversed(children.get(None, []))]
    while stack:
        run, depth = stack.pop()
        rows.append(RunRow(run, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(run.id, [])))
    return rows


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    state: str
    label: str


@dataclass(frozen=True)
class Timeline:
    """The execution's span, which every bar is placed on."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, execution: Execution) -> Timeline:
        start = execution.state.start_date or utcnow()
        return cls(start, max(execution.state.end_date or utcnow(), start + timedelta(milliseconds=1)))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def bar(self, begin: datetime | None, finish: datetime | None, state: str, label: str) -> Bar:
        """A bar from `begin` to `finish` (still going: to the end of the timeline)."""
        begin, finish = begin or self.start, finish or self.end
        x = (begin - self.start).total_seconds() / self.seconds * SCALE
        width = max((finish - begin).total_seconds() / self.seconds * SCALE, MIN_BAR)
        return Bar(round(min(x, SCALE - MIN_BAR), 1), round(width, 1), state, label)

    def bars(self, run: TaskRun) -> list[Bar]:
        """One bar per attempt (the time before the first attempt drawn as waiting); a flowable's whole run."""
        if not run.attempts:
            return [self.state_bar(run.state, duration(run.state))]
        bars = []
        first, created = run.attempts[0].state.start_date, run.state.start_date
        if first and created and first > created:
            bars.append(self.bar(created, first, "waiting", f"waiting {duration(first - created)}"))
        for number, attempt in enumerate(run.attempts, start=1):
            bars.append(self.state_bar(attempt.state, f"attempt {number}: {duration(attempt.state)}"))
        return bars

    def state_bar(self, state: StateInfo, label: str) -> Bar:
        return self.bar(state.start_date, state.end_date, state.current.value, f"{state.current.value} {label}")

    def ticks(self, count: int = 4) -> list[str]:
        return [duration(timedelta(seconds=self.seconds * i / count)) for i in range(count + 1)]


def as_json(value: Any) -> str:
    """A value as indented JSON for people, cut short when huge (the Outputs tab browses the rest)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= JSON_LIMIT else text[:JSON_LIMIT] + "\n… (cut: see the Outputs tab)"
