"""`kestractl execute` on a shared PostgreSQL database with an executor alive (`server executor` or `server
standalone`): the execution is left CREATED and unowned for the executors (as Kestra's CLI and webserver leave it
on the queue), then followed from the store: its log lines printed as an in-process run prints them, until it ends
or waits for a resume. With none alive, the run in this process owns its execution as an executor would
(`owned_here`). Imported only for a PostgreSQL `--database`: the default path never asks for executors."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kestractl.cli.output import echo
from kestractl.model import State, utcnow

if TYPE_CHECKING:
    from kestractl.cli.backend import Watch
    from kestractl.engine.runner import Runner
    from kestractl.model import Execution
    from kestractl.store import Store
    from kestractl.store.service_records import ServerConfig

# How often the follower reads the store (the log lines and the state), and how often, while no executor has
# taken the execution yet, it looks whether one is still alive.
FOLLOW_SECONDS = 0.1
LIVENESS_SECONDS = 5.0
# How often it tries the database again while it is away (a restart): the execution goes on meanwhile.
AWAY_SECONDS = 1.0
NO_EXECUTOR = "no executor is running on this database: running the execution in this process"
TAKEN_OVER = "an executor took execution {} over (this process's heartbeats came too late): following it"


def executor_alive(store: Store) -> bool:
    """An EXECUTOR instance (a `server executor`'s or a standalone's) RUNNING, its heartbeat within its timeout."""
    from kestractl.store.service_records import ServiceState, ServiceType

    now = utcnow()
    return any(
        i.type is ServiceType.EXECUTOR and i.state is ServiceState.RUNNING and not i.heartbeat_expired(now)
        for i in store.service_instances()
    )


@contextmanager
def owned_here(store: Store, runner: Runner) -> Iterator[None]:
    """The in-process run owns its execution and the subflow children it starts (`executions.owner`) under an
    EXECUTOR instance of this process, heartbeating on a thread of its own: an executor starting meanwhile leaves
    them alone, and takes them over once the heartbeat stops (this process killed), as from a dead executor. The
    instance stays CREATED (Kestra: registered, not serving): it takes nothing from the queue, so other `execute`
    calls never submit to it (`executor_alive`). It leaves TERMINATED_GRACEFULLY, what it still drives (a pause)
    anyone's again."""
    from kestractl.server.liveness import ServiceLiveness
    from kestractl.store.service_records import ServiceState, ServiceType

    liveness = ServiceLiveness(store, _liveness(), _say, False, (ServiceType.EXECUTOR,), ServiceState.CREATED)
    liveness.register()
    runner.own(liveness.ids[0], worker_queue=False)
    stop = threading.Event()
    heartbeats = threading.Thread(target=liveness.run, args=(stop,), name="liveness", daemon=True)
    heartbeats.start()
    try:
        yield
    finally:
        stop.set()
        heartbeats.join()
        runner.release()
        liveness.leave(ServiceState.TERMINATED_GRACEFULLY)


def _say(level: str, message: str) -> None:
    echo(f"{level} {message}", err=True)


def _liveness() -> ServerConfig:
    """The in-process run's heartbeat timeout, from the variable the servers read (Kestra's 45 s by default); a
    heartbeat every third of it at most; no termination grace period: once left, nothing of it runs any more, so a
    coordinator's next pass makes it NOT_RUNNING (off `server list`)."""
    from kestractl.errors import ValidationError
    from kestractl.store.service_records import ServerConfig

    text = os.environ.get("KESTRACTL_LIVENESS_TIMEOUT", str(ServerConfig.timeout))
    try:
        timeout = float(text)
    except ValueError:
        timeout = 0.0
    if timeout <= 0:
        raise ValidationError(f"KESTRACTL_LIVENESS_TIMEOUT={text}: expected a number of seconds above 0")
    return ServerConfig(min(ServerConfig.heartbeat_interval, timeout / 3), timeout, termination_grace_period=0.0)


class Follower:
    """Prints an execution's log lines from the store as they are written, until it ends or pauses with no timer
    (what an in-process run waits for); Ctrl-C leaves it to its executor."""

    def __init__(self, store: Store, execution: Execution, watch: Watch) -> None:
        self.store, self.execution, self.watch = store, execution, watch
        self._printed: set[int] = set()  # the positions of the lines printed
        self._first = self._after = 0  # the position after which it prints, and the highest printed
        self._fingerprint: tuple[object, ...] = ()
        self._waiting_said = False
        self._next_look = time.monotonic() + LIVENESS_SECONDS  # when it next looks for a live executor
        self._away = False  # the database was away at the last look (said once)

    def follow(self) -> Execution:
        try:
            while not self._stepped():
                time.sleep(FOLLOW_SECONDS)
        except KeyboardInterrupt:
            echo(self._left_running(), err=True)
            raise
        self._print_logs(self._first)  # lines committed out of order, after their successors were read
        return self.store.load_execution(self.execution.id)

    def from_now(self) -> Follower:
        """Only the lines written from now on (this process printed the others while it drove the execution)."""
        self._first = self._after = max((seq for seq, _ in self.store.logs_after(self.execution, 0)), default=0)
        return self

    def _stepped(self) -> bool:
        """`_step`; the database away (a restart) is said once and waited for, as the components wait for it."""
        from kestractl.errors import StoreError

        try:
            done = self._step()
        except StoreError as exc:
            if not self._away:
                echo(f"{exc.message}; waiting for the database (the execution goes on in its executor)", err=True)
            self._away = True
            time.sleep(AWAY_SECONDS)
            return False
        if self._away:
            echo("the database answers again", err=True)
            self._away = False
        return done

    def _step(self) -> bool:
        """Print the new lines and the changes; True once the execution has come where an in-process run stops."""
        self._print_logs(self._after)
        state = self.store.execution_state(self.execution.id)
        if self.watch.on_change is not None:
            self._show_changes()
        if state.is_terminated():
            return True
        if state == State.CREATED and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + LIVENESS_SECONDS
            self._say_if_orphaned()
        return state == State.PAUSED and not self.store.delays(self.execution.id)

    def _print_logs(self, after: int) -> None:
        for seq, entry in self.store.logs_after(self.execution, after):
            if seq not in self._printed:
                self._printed.add(seq)
                self._after = max(self._after, seq)
                self.watch.on_log(entry)

    def _show_changes(self) -> None:
        assert self.watch.on_change is not None
        fingerprint = self.store.execution_fingerprint(self.execution.id)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            execution = self.store.load_execution(self.execution.id)
            self.watch.on_change(execution, execution.task_runs)

    def _say_if_orphaned(self) -> None:
        """The executors stopped before one took the execution: said once (it starts when one is back)."""
        if not self._waiting_said and not executor_alive(self.store):
            echo(
                f"no executor is running on this database any more: execution {self.execution.id} waits for one "
                "(kestractl server executor)",
                err=True,
            )
            self._waiting_said = True

    def _left_running(self) -> str:
        execution_id = self.execution.id
        return (
            f"execution {execution_id} goes on in the executor: `kestractl executions logs {execution_id}` shows its"
            f" logs, `kestractl executions kill {execution_id}` stops it"
        )
