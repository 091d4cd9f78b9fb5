"""What the HTTP layer (API and UI) asks of whoever runs executions, as Kestra's webserver asks its executors
through the queue: `RunnerExecutions` (server standalone: this process's runner runs them) or `StoredExecutions`
(server webserver: executions are rows; executors elsewhere pick up the CREATED ones, poll KILLING and
RESTARTED ones)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from kestractl.engine.control import kill, restart_rows, resume_rows
from kestractl.engine.creation import ExecutionCreator
from kestractl.engine.flows import FlowRepository
from kestractl.engine.loop import POLL_SECONDS
from kestractl.engine.runner import Runner
from kestractl.errors import KestraError
from kestractl.model import Execution, Flow
from kestractl.storage import Storage
from kestractl.store import Store

# How long a request waits for the executor loop to restart or resume an execution.
ANSWER_SECONDS = 60.0
# How long a kill waits for the executor driving the execution before ending it on the rows.
KILL_WAIT_SECONDS = 5.0


class ExecutorUnavailable(KestraError):
    """The executor did not answer in time (the database is away, or it is overloaded): try again later."""

    http_status = 503


class Executions(Protocol):
    store: Store
    storage: Storage
    flows: FlowRepository

    def create_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        labels: list[tuple[str, str]] | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> Execution:
        """A new CREATED execution, committed (typed inputs, files in storage)."""

    def submit(self, execution_id: str, fresh: Execution | None = None) -> None:
        """Have an executor run the execution just created (`fresh`: as created, spares reading it)."""

    def kill(self, execution_id: str) -> Execution: ...

    def restart(self, execution_id: str) -> None:
        """Restart an ended execution (ConflictError otherwise); returns once the restart is committed."""

    def resume(self, execution_id: str, inputs: dict[str, Any] | None) -> None:
        """Resume a PAUSED execution with its paused tasks' `onResume` inputs (validated)."""


class RunnerExecutions:
    """`server standalone`: the runner of this process runs them; restarts and resumes happen in its loop."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.store, self.storage, self.flows = runner, runner.store, runner.storage, runner.flows

    def create_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        labels: list[tuple[str, str]] | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> Execution:
        return self.runner.create_execution(flow, inputs, labels, trigger)

    def submit(self, execution_id: str, fresh: Execution | None = None) -> None:
        self.runner.submit(execution_id, fresh)

    def kill(self, execution_id: str) -> Execution:
        return self.runner.kill(execution_id)

    def restart(self, execution_id: str) -> None:
        _answer(self.runner.submit_restart(execution_id))

    def resume(self, execution_id: str, inputs: dict[str, Any] | None) -> None:
        _answer(self.runner.submit_resume(execution_id, inputs))


def _answer(future: Future[Any]) -> None:
    """The loop's answer; none in time (it waits for the database) is a 503, never a 500 or a hang."""
    try:
        future.result(timeout=ANSWER_SECONDS)
    except FutureTimeout:
        raise ExecutorUnavailable(f"the executor did not answer within {ANSWER_SECONDS:.0f} s; try again") from None


class StoredExecutions:
    """`server webserver`: no executor in this process. New executions are CREATED rows, a kill is KILLING, a
    restart or a resume is written on the rows (RESTARTED): the executors sharing the database take them up."""

    def __init__(self, store: Store, storage: Storage) -> None:
        self.store, self.storage, self.flows = store, storage, FlowRepository(store)
        self.creator = ExecutionCreator(store, storage)

    def create_execution(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        labels: list[tuple[str, str]] | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> Execution:
        return self.creator.create_execution(flow, inputs, labels, trigger)

    def submit(self, execution_id: str, fresh: Execution | None = None) -> None:
        """Nothing to hand over: the committed CREATED row is what an executor claims."""

    def kill(self, execution_id: str) -> Execution:
        return kill(self.store, execution_id, KILL_WAIT_SECONDS, POLL_SECONDS / 2)

    def restart(self, execution_id: str) -> None:
        execution = self.store.load_execution(execution_id)
        restart_rows(self.store, execution, self._flow_of(execution))

    def resume(self, execution_id: str, inputs: dict[str, Any] | None) -> None:
        execution = self.store.load_execution(execution_id)
        resume_rows(self.store, execution, self._flow_of(execution), inputs)

    def _flow_of(self, execution: Execution) -> Flow:
        return self.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
