"""`server worker`: Kestra's worker component alone. It claims the task runs executors queued (`worker_jobs` rows,
see `store/queue.py`), runs each attempt on one of its threads with the engine's `run_attempt`, writes its logs, and
writes the result and removes the job in one transaction. It heartbeats as a WORKER service instance: if it dies,
a coordinator re-emits what it held. Stopped (SIGTERM), it claims nothing more, lets running attempts finish for a
grace period, then stops the rest and hands their jobs back to the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kestractl.config import Home
from kestractl.engine.contexts import Contexts, LogBuffer
from kestractl.engine.flows import FlowRepository
from kestractl.engine.services import StoreServices
from kestractl.engine.worker import run_attempt
from kestractl.errors import KestraError, StoreError
from kestractl.model import LogEntry, State, utcnow
from kestractl.server.liveness import ServiceLiveness
from kestractl.storage import open_storage
from kestractl.store import open_store
from kestractl.store.queue import WorkerJob, WorkerResult
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType
from kestractl.tasks.base import RunnableTask

Say = Callable[[str, str], None]
OnLog = Callable[[LogEntry], None] | None
# Kestra's `kestra.jdbc.queues` min and max poll intervals (seconds); kills are looked for this often.
MIN_POLL_SECONDS, MAX_POLL_SECONDS, KILL_POLL_SECONDS = 0.025, 0.5, 0.2
# The waits between tries to write a result while the database does not answer (then it is left to re-emission).
REPORT_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30, 0)
# How long stopped attempts get to end before the worker exits anyway.
STOP_SECONDS = 5.0


class WorkerComponent:
    """Claims jobs while it has free threads; each thread runs one attempt at a time."""

    def __init__(
        self, home: Home, database: str | None, say: Say, threads: int, config: ServerConfig, on_log: OnLog = None
    ) -> None:
        self.say, self.threads, self.config = say, threads, config
        self.store = open_store(database or home.db_path)
        storage = open_storage(home)
        self.flows = FlowRepository(self.store)
        self.logs = LogBuffer(self.store, on_log)
        services = StoreServices(self.store, storage, self.logs, self.flows.get)
        self.contexts = Contexts(self.store, storage, self.logs, services)
        self.liveness = ServiceLiveness(self.store, config, say, coordinate=False, services=(ServiceType.WORKER,))
        self.worker_id = self.liveness.ids[0]
        self.stop_event = threading.Event()
        self._running: dict[str, threading.Event] = {}  # task run id → what stops its attempt
        self._lock = threading.Lock()
        self._handing_back = False
        self._trouble = ""  # the last database error said, so a lasting one is said once
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker")

    def serve(self) -> None:
        """Claim and run until `stop_event` is set (the caller wires signals to it), then stop cleanly."""
        self.liveness.register()
        heartbeats = threading.Thread(target=self.liveness.run, args=(self.stop_event,), name="liveness", daemon=True)
        heartbeats.start()
        self.say("INFO", f"worker {self.worker_id} started with {self.threads} threads")
        wait, last_kill_poll = MIN_POLL_SECONDS, 0.0
        while not self.stop_event.wait(wait):
            found = self._guarded(self._claim)
            wait = MIN_POLL_SECONDS if found else min(MAX_POLL_SECONDS, wait * 2)
            if time.monotonic() - last_kill_poll >= KILL_POLL_SECONDS:
                self._guarded(self._stop_killed)
                last_kill_poll = time.monotonic()
            self._guarded(self.logs.flush_due)
            self._stop_if_disowned()
        heartbeats.join()
        self._stop()

    def _stop_if_disowned(self) -> None:
        """Judged dead by a coordinator (heartbeats came too late), its jobs were re-emitted: it stops, as Kestra's
        components do, rather than run them a second time."""
        if self.liveness.disowned and not self.stop_event.is_set():
            self.say("WARN", "stopping: a coordinator judged this worker dead and re-emitted its task runs")
            self.stop_event.set()

    def _claim(self) -> bool:
        """Claim as many jobs as there are free threads; whether any came."""
        free = self.threads - len(self._running)
        jobs = self.store.claim_worker_jobs(self.worker_id, free, utcnow()) if free > 0 else []
        for job in jobs:
            stop = threading.Event()
            with self._lock:
                self._running[job.task_run.id] = stop
            self._pool.submit(self._run, job, stop)
        return bool(jobs)

    def _stop_killed(self) -> None:
        """Stop the attempts whose execution is being killed (its executor set it KILLING)."""
        if self._running:
            for run_id in self.store.killed_task_runs(self.worker_id):
                with self._lock:
                    stop = self._running.get(run_id)
                if stop is not None:
                    stop.set()

    def _run(self, job: WorkerJob, stop: threading.Event) -> None:
        """One attempt, then its report; the database away before the attempt could begin: the job goes back."""
        run = job.task_run
        try:
            result: WorkerResult | None = self._attempt(job, stop)
        except StoreError as exc:
            self.say("ERROR", f"task run {run.id} handed back: {exc.message}")
            result = None
        except Exception as exc:  # noqa: BLE001 - its execution gone, or a bug: the run fails, the worker goes on
            self.say("ERROR", f"task run {run.id}: {type(exc).__name__}: {exc}")
            result = WorkerResult(run.execution_id, run.id, job.attempt, self.worker_id, State.FAILED)
        try:
            for wait in REPORT_RETRY_SECONDS:  # the database away for a while: the result is not lost meanwhile
                if self._guarded(lambda: self._report(job, result)):
                    break
                time.sleep(wait)
        finally:
            with self._lock:
                self._running.pop(job.task_run.id, None)

    def _report(self, job: WorkerJob, result: WorkerResult | None) -> bool:
        """The attempt's logs, and its result (or, without one or when the worker hands its jobs back, the job back
        in the queue)."""
        with self.store.transaction():
            self.logs.flush()
            if result is None or self._handing_back:
                self.store.release_worker_jobs(self.worker_id, [job.task_run.id])
            else:
                self.store.finish_worker_job(job, result)
        return True

    def _attempt(self, job: WorkerJob, stop: threading.Event) -> WorkerResult:
        """Run the job's attempt with the execution as stored (its run as the executor handed it); a flow or
        task that cannot be read fails the attempt, saying why."""
        run, started = job.task_run, utcnow()
        execution = self.store.load_execution(run.execution_id)
        execution.task_runs = [run if r.id == run.id else r for r in execution.task_runs]
        try:
            flow = self.flows.get(execution.namespace, execution.flow_id, execution.flow_revision)
            task = flow.tasks_by_id[run.task_id]
            assert isinstance(task, RunnableTask)
            ctx = self.contexts.make(flow, execution, flow.tasks_by_id, task, run)
        except KestraError as exc:
            where = (run.execution_id, execution.namespace, execution.flow_id, "ERROR", exc.message)
            self.logs(LogEntry(*where, task_id=run.task_id, task_run_id=run.id, attempt_number=job.attempt))
            return WorkerResult(run.execution_id, run.id, job.attempt, self.worker_id, State.FAILED, None, [], started)
        ctx.stop = stop
        outcome = run_attempt(task, ctx)
        return WorkerResult(
            *(run.execution_id, run.id, job.attempt, self.worker_id, outcome.state, outcome.outputs),
            *(outcome.metrics, started, utcnow()),
        )

    def _stop(self) -> None:
        """Let running attempts finish for the grace period; stop the others and hand their jobs back."""
        self.say("INFO", "stopping: waiting for running tasks")
        self.liveness.leave(ServiceState.TERMINATING)
        deadline = time.monotonic() + self.config.termination_grace_period
        while self._running and time.monotonic() < deadline:
            time.sleep(MIN_POLL_SECONDS)
        self._handing_back = True
        with self._lock:
            stops = list(self._running.values())
        for stop in stops:
            stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        while self._running and time.monotonic() < deadline:
            time.sleep(MIN_POLL_SECONDS)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.logs.flush()
        if not self._running:  # else left TERMINATING: a coordinator re-emits what is still claimed
            self.liveness.leave(ServiceState.TERMINATED_GRACEFULLY)
        self.store.close()
        self.say("INFO", "stopped" + (f" ({len(self._running)} tasks did not stop)" if self._running else ""))

    def _guarded(self, action: Callable[[], object]) -> bool:
        """Run `action` (True: it found work); a database error is said and tried again at the next poll."""
        try:
            found = bool(action())
        except KestraError as exc:
            if exc.message != self._trouble:
                self.say("ERROR", exc.message)
            self._trouble = exc.message
            return False
        if self._trouble:
            self.say("INFO", "the database answers again")
            self._trouble = ""
        return found
