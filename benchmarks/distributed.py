"""Scenario: Kestra's server components as separate processes on PostgreSQL, next to `server standalone` on SQLite.

The setup users would run on several machines, here on one: a throwaway PostgreSQL cluster (the tests' own,
tests/services/postgres.py), `server webserver` taking the webhook calls (each a CREATED row), one
`server executor` deciding, and 1, 2 or 4 `server worker` processes (8 threads each) running the task runs they
claim from the queue's rows. The baseline, in the same run and under the same load: `server standalone` on
SQLite (8 worker threads), every component in one process.

Two flows, both fired through their Webhook trigger (scenario `server`'s load harness, open loop):
- Kestra's benchmark01 (OutputValues, then Log): tasks that take no time, so it measures what the queue costs
  (a job row, a claim, a result row, a take, per task run);
- the same with a 0.5 s Sleep task first (a runnable task holding a worker thread, no CPU): its capacity is
  threads / 0.5 s, so it shows what each added worker process buys.

Per setup and flow: executions/s through a burst (calls sent as fast as 8 clients manage, up to a rate above
what any setup takes; from the first call to the last end, so the backlog counts) and p99 latency, call → end,
at a rate every setup takes. Without PostgreSQL (`initdb`, `pg_ctl`) the PostgreSQL figures print "-" and say
why, except in CI (`CI=true`), where they fail the scenario.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import KESTRACTL, Figure, cli_env, scratch
from benchmarks.server import FLOW, LoadRun, ServerProcess, listening, offer, standalone
from tests.services.postgres import Cluster, Postgres, binaries
from tests.services.stores import fresh_database

SCENARIO = "distributed"
CLIENTS = 8
THREADS = 8  # per worker process, and the standalone server's worker threads: the defaults
SLEEP_SECONDS = 0.5


@dataclass(frozen=True)
class Load:
    """One flow's load: a burst of `burst` calls offered at `burst_rate`, then `steady_rate` for `steady_s`; the
    flow is benchmark01, with a Sleep task of `sleep_s` seconds first when that is not 0."""

    burst: int
    burst_rate: float
    steady_rate: float
    steady_s: float
    sleep_s: float = 0.0

    @property
    def name(self) -> str:
        return f"benchmark01 + {self.sleep_s} s Sleep" if self.sleep_s else "benchmark01"

    @property
    def flow(self) -> str:
        nap = f"  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT{self.sleep_s}S\n"
        return FLOW.replace("tasks:\n", "tasks:\n" + nap) if self.sleep_s else FLOW

    def capacity(self, workers: int) -> float | None:
        """What `workers` processes can end per second at most with the Sleep task (threads / sleep)."""
        return workers * THREADS / self.sleep_s if self.sleep_s else None


@dataclass
class Measured:
    """A setup's two runs of one load."""

    burst: LoadRun
    steady: LoadRun


def loads(quick: bool) -> list[Load]:
    if quick:
        return [Load(100, 200.0, 10.0, 1.0)]
    return [Load(2000, 1000.0, 25.0, 16.0), Load(400, 100.0, 10.0, 16.0, SLEEP_SECONDS)]


def measure(server: ServerProcess, load: Load) -> Measured:
    """A warm-up, the burst, then the steady rate; each run's executions all ended (or given up on) before the next."""
    offer(server, 10.0, 1.0, CLIENTS)
    burst = offer(server, load.burst_rate, load.burst / load.burst_rate, CLIENTS)
    return Measured(burst, offer(server, load.steady_rate, load.steady_s, CLIENTS))


def flows_folder(folder: Path, load: Load) -> Path:
    """A folder holding the load's flow, for `server standalone -f` or `flow deploy`."""
    flows = folder / "flows"
    flows.mkdir(parents=True)
    (flows / "benchmark01.yaml").write_text(load.flow)
    return flows


def _spawn(folder: Path, name: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    with (folder / f"{name}.out").open("wb") as sink:
        return subprocess.Popen([KESTRACTL, *args], env=env, stdout=sink, stderr=subprocess.STDOUT)


@contextmanager
def components(folder: Path, flows: Path, database: str, workers: int) -> Iterator[ServerProcess]:
    """One webserver, one executor and `workers` worker processes on `database`, the flow deployed; the webserver."""
    env = {**cli_env(folder / "home"), "KESTRACTL_DATABASE_URL": database}
    subprocess.run([KESTRACTL, "flow", "deploy", str(flows)], env=env, check=True, capture_output=True)
    processes = [_spawn(folder, "executor", env, "server", "executor")]
    worker = ("server", "worker", "--threads", str(THREADS))
    processes += [_spawn(folder, f"worker{n}", env, *worker) for n in range(workers)]
    processes.append(_spawn(folder, "webserver", env, "server", "webserver", "--port", "0"))
    try:
        host, port = listening(processes[-1], folder / "webserver.out")
        yield ServerProcess(processes[-1], host, port)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)


def on_postgres(server: Postgres, folder: Path, load: Load, workers: int) -> Measured:
    with ExitStack() as stack:
        database = stack.enter_context(contextmanager(fresh_database)(server))
        return measure(stack.enter_context(components(folder, flows_folder(folder, load), database, workers)), load)


def on_sqlite(folder: Path, load: Load) -> Measured:
    with standalone(folder, flows_folder(folder, load)) as server:
        return measure(server, load)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


@contextmanager
def postgres_cluster() -> Iterator[Postgres | str]:
    """A running throwaway cluster, or why there is none (outside CI; in CI a missing PostgreSQL fails)."""
    bindir = binaries()
    if bindir is None:
        if _in_ci():
            raise RuntimeError("PostgreSQL (initdb, pg_ctl) is not installed: .ci/run installs the postgresql package")
        yield "PostgreSQL (initdb, pg_ctl) not found; the benchmark installs nothing"
        return
    cluster = Cluster(bindir)
    try:
        yield _started(cluster)
    finally:
        cluster.stop()


def _started(cluster: Cluster) -> Postgres | str:
    try:
        return cluster.start()
    except RuntimeError as error:
        if _in_ci():
            raise
        return f"the PostgreSQL cluster did not start: {str(error).splitlines()[0]}"


def figures(load: Load, setup: str, workers: int, got: Measured | str, base: Measured | None) -> list[Figure]:
    """Executions/s through the burst and p99 at the steady rate, against SQLite standalone's (`base`)."""
    names = (f"{load.name}: {setup}: executions/s, burst of {load.burst:,}",
             f"{load.name}: {setup}: latency p99 at {load.steady_rate:.0f}/s (call -> end)")  # fmt: skip
    if isinstance(got, str):
        return [Figure(SCENARIO, name, None, unit, note=got) for name, unit in zip(names, ("/s", "ms"), strict=True)]
    capacity = load.capacity(workers)
    target = f"≥ 80% of {capacity:.0f}/s (threads / sleep)" if capacity else "every call ended"
    met = got.burst.throughput() >= 0.8 * capacity if capacity else _complete(got.burst)
    versus = "SQLite standalone" if base else ""
    return [
        Figure(SCENARIO, names[0], got.burst.throughput(), "/s", base.burst.throughput() if base else None, versus,
               target, met and _complete(got.burst), _summary(got.burst)),
        Figure(SCENARIO, names[1], got.steady.latency_ms(0.99), "ms", base.steady.latency_ms(0.99) if base else None,
               versus, "every call ended", _complete(got.steady), _summary(got.steady)),
    ]  # fmt: skip


def _complete(run: LoadRun) -> bool:
    return not run.errors and len(run.ended) == len(run.sent)


def _summary(run: LoadRun) -> str:
    return f"{len(run.ended)}/{len(run.sent)} ended, {run.errors} refused, p50 {run.latency_ms(0.5):.0f} ms"


def run(quick: bool) -> list[Figure]:
    """Each flow on SQLite standalone, then on PostgreSQL with 1, 2 and 4 workers (quick: 1 and 2)."""
    counts = (1, 2) if quick else (1, 2, 4)
    out: list[Figure] = []
    with scratch(SCENARIO) as folder, postgres_cluster() as server:
        for index, load in enumerate(loads(quick)):
            base = on_sqlite(folder / f"sqlite{index}", load)
            out += figures(load, f"SQLite standalone ({THREADS} threads)", 1, base, None)
            for workers in counts:
                place = folder / f"pg{index}-{workers}"
                got = server if isinstance(server, str) else on_postgres(server, place, load, workers)
                setup = f"PostgreSQL, webserver + executor + {workers} worker" + ("s" if workers > 1 else "")
                out += figures(load, setup, workers, got, base)
    return out
