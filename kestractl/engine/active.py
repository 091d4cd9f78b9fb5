"""An execution a runner drives: its flow, its executor, and what the runner remembers between steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from kestractl.engine.executor import Executor
from kestractl.model import Execution, Flow, TaskRun


@dataclass
class Active:
    """An execution this runner drives, with its flow and executor."""

    execution: Execution
    flow: Flow
    executor: Executor
    # The runner's set of executions to step next, shared by every Active it drives.
    dirty_ids: dict[str, None]
    positions: dict[str, int] = field(default_factory=dict)
    # The first step after activation looks at every run; later ones only at what changed.
    full: bool = True
    # Runs changed outside the executor since its last step (results, timers, subflows).
    touched: list[TaskRun] = field(default_factory=list)
    # What the stored execution row last said (its state history and outputs): most steps only change
    # task runs, and rewriting the row (inputs, trigger, webhook body …) at every step is most of the I/O.
    saved: tuple[int, int] | None = None
    # A task changed the row (labels, vars): save it with the next step.
    row_dirty: bool = False
    # A task ended the execution (Exit): the next step finishes it, though it is already terminated.
    ended_by_task: bool = False

    def row_changed(self) -> bool:
        """Whether the execution row differs from the stored one; remembers it as stored."""
        marker = (len(self.execution.state.histories), id(self.execution.outputs))
        changed, self.saved = marker != self.saved or self.row_dirty, marker
        self.row_dirty = False
        return changed

    def touch(self, run: TaskRun) -> None:
        self.touched.append(run)
        self.mark()

    def mark(self) -> None:
        self.dirty_ids[self.execution.id] = None
