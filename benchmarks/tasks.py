"""Scenario 2, task overhead: flows of 1,000 sequential Log tasks and of 40 sequential Return tasks run by the
engine in this process, per task, against a raw loop doing the same persistence by hand: three sqlite3 commits
(the task run created, running, ended) and one cached Jinja2 render per task, on a connection configured like
the store's (WAL, synchronous=NORMAL).

Then flows as users write them, through `kestractl execute` (the execution's own duration, per task): Return
tasks each with its own template and output, at 1,000 and 5,000 tasks, and tasks that each read the output of
the one before; and flatness, a task's cost at 5,000 tasks over its cost at 100, which stays near 1 only if
nothing a task does grows with the runs before it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from benchmarks.harness import Figure, kestractl, median, samples_of, scratch
from kestractl.model import parse_iso

LOG = '  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "task {i} of {{{{ flow.id }}}}"\n'
RETURN = '  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{{{ flow.id }}}}-{i}"\n'
# Each task its own template and output, as flows are written.
OWN = '  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "task {{{{ task.id }}}} {i}"\n'
# Each task reads the output of the one before (t0 reads the first task's).
CHAIN = '  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{{{ outputs.{p}.value }}}}"\n'
# Each task logs the same message template.
SAME_LOG = '  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "{{{{ task.id }}}} {{{{ flow.id }}}}"\n'
FIRST = '  - id: first\n    type: io.kestra.plugin.core.debug.Return\n    format: "x"\n'
FLOOR = "3 commits + 1 render"


def flow_of(flow_id: str, task: str, count: int) -> str:
    tasks = [task.format(i=i, p=f"t{i - 1}" if i else "first") for i in range(count)]
    first = FIRST if task is CHAIN else ""
    return f"id: {flow_id}\nnamespace: bench\ntasks:\n{first}" + "".join(tasks)


def engine_per_task(home: Path, flow_id: str, source: str, count: int, repeat: int) -> float:
    """Median seconds per task of whole in-process executions (create, run to SUCCESS)."""
    from kestractl.engine.runner import Runner
    from kestractl.storage import LocalStorage
    from kestractl.store import open_store

    store = open_store(home / "kestractl.db")
    store.save_flow("bench", flow_id, source)
    runner = Runner(store, LocalStorage(home / "storage"))
    flow = runner.flows.get("bench", flow_id)

    def execute() -> None:
        finished = runner.run(runner.create_execution(flow).id)
        assert finished.state.current.value == "SUCCESS", finished.state.current

    execute()  # warm-up: compiled templates, cached task classes
    samples = samples_of(execute, repeat)
    runner.close()
    return median(samples) / count


def raw_per_task(path: Path, count: int, repeat: int) -> float:
    """Median seconds per task of the floor: 3 commits and one cached render, nothing else."""
    from kestractl.store.schema import connect

    conn = connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, state TEXT, message TEXT)")
    template = jinja2.Environment().from_string("task {{ i }} of {{ flow.id }}")

    def loop() -> None:
        for i in range(count):
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("INSERT INTO runs (state) VALUES ('CREATED')").lastrowid
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE runs SET state='RUNNING' WHERE id=?", (row,))
            conn.execute("COMMIT")
            message = template.render(i=i, flow={"id": "bench"})
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE runs SET state='SUCCESS', message=? WHERE id=?", (message, row))
            conn.execute("COMMIT")

    loop()
    samples = samples_of(loop, repeat)
    conn.close()
    return median(samples) / count


def cli_per_task(folder: Path, flow_id: str, task: str, count: int, repeat: int) -> float:
    """Median milliseconds per task of `kestractl execute` on a fresh home, from the execution's own duration
    (start-up excluded), after one warm-up execution."""
    home = folder / f"{flow_id}-{count}"
    home.mkdir(parents=True)
    (home / "flow.yaml").write_text(flow_of(flow_id, task, count))
    kestractl(home, "flow", "deploy", str(home / "flow.yaml"))

    def duration() -> float:
        state = json.loads(kestractl(home, "execute", "bench", flow_id, "--json").stdout)["state"]
        assert state["current"] == "SUCCESS", state["current"]
        return (parse_iso(state["endDate"]) - parse_iso(state["startDate"])).total_seconds()  # type: ignore[operator]

    duration()
    return median([duration() for _ in range(repeat)]) / count * 1000


def in_process(folder: Path, logs: int, repeat: int, raw: float) -> list[Figure]:
    figures = []
    for flow_id, task, count in (("logs", LOG, logs), ("returns", RETURN, 40)):
        home = folder / flow_id
        per_task = engine_per_task(home, flow_id, flow_of(flow_id, task, count), count, repeat) * 1000
        kind = "Log" if task is LOG else "Return"
        figures.append(
            Figure("tasks", f"{count} sequential {kind} tasks, per task", per_task, "ms", raw, FLOOR,
                   "≤ 1 ms and ≤ 10× baseline", per_task <= 1 and per_task <= 10 * raw)
        )  # fmt: skip
    return figures


def through_cli(folder: Path, sizes: tuple[int, int, int], repeat: int, raw: float) -> list[Figure]:
    """The user's flows through `kestractl execute`, and how a task's cost changes with the flow's length."""
    small, middle, large = sizes
    figures = []
    for flow_id, task, what in (("own", OWN, "Return tasks, own template"), ("logs", SAME_LOG, "Log tasks"),
                                ("chain", CHAIN, "tasks reading outputs.<previous>.value")):  # fmt: skip
        cost = {n: cli_per_task(folder, flow_id, task, n, repeat) for n in {small, middle, large}}
        for n in sorted({middle, large}) if task is not SAME_LOG else ():
            figures.append(Figure("tasks", f"{n:,} {what}, `kestractl execute`, per task", cost[n], "ms", raw,
                                  FLOOR, "≤ 5× baseline", cost[n] <= 5 * raw))  # fmt: skip
        figures.append(
            Figure("tasks", f"flatness: {large:,} {what}, per task", cost[large], "ms", cost[small],
                   f"per task at {small:,}", "≤ 1.3× baseline", cost[large] <= 1.3 * cost[small])
        )  # fmt: skip
    return figures


def run(quick: bool) -> list[Figure]:
    repeat = 2 if quick else 5
    logs, sizes = (100, (100, 100, 400)) if quick else (1000, (100, 1000, 5000))
    with scratch("tasks") as folder:
        raw = raw_per_task(folder / "raw.db", logs, repeat) * 1000
        figures = in_process(folder, logs, repeat, raw)
        return [*figures, *through_cli(folder, sizes, 1 if quick else repeat, raw)]  # a process each: few in CI
