"""Scenario 2, in-process task overhead: flows of 1,000 sequential Log tasks and of 40 sequential Return tasks
run by the engine in this process, per task, against a raw loop doing the same persistence by hand: three
sqlite3 commits (the task run created, running, ended) and one cached Jinja2 render per task, on a connection
configured like the store's (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from benchmarks.harness import Figure, median, samples_of, scratch

LOG = '  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "task {i} of {{{{ flow.id }}}}"\n'
RETURN = '  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{{{{ flow.id }}}}-{i}"\n'


def flow_of(flow_id: str, task: str, count: int) -> str:
    return f"id: {flow_id}\nnamespace: bench\ntasks:\n" + "".join(task.format(i=i) for i in range(count))


def engine_per_task(home: Path, flow_id: str, source: str, count: int, repeat: int) -> float:
    """Median seconds per task of whole in-process executions (create, run to SUCCESS)."""
    from kestractl.engine.runner import Runner
    from kestractl.storage import Storage
    from kestractl.store import Store

    store = Store(home / "kestractl.db")
    store.save_flow("bench", flow_id, source)
    runner = Runner(store, Storage(home / "storage"))
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
    from kestractl.store import connect

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


def run(quick: bool) -> list[Figure]:
    repeat = 2 if quick else 7
    logs, returns = (100, 40) if quick else (1000, 40)
    figures = []
    with scratch("tasks") as folder:
        raw = raw_per_task(folder / "raw.db", logs, repeat) * 1000
        for flow_id, task, count in (("logs", LOG, logs), ("returns", RETURN, returns)):
            home = folder / flow_id
            per_task = engine_per_task(home, flow_id, flow_of(flow_id, task, count), count, repeat) * 1000
            kind = "Log" if task is LOG else "Return"
            figures.append(
                Figure("tasks", f"{count} sequential {kind} tasks, per task", per_task, "ms", raw,
                       "3 commits + 1 render", "≤ 1 ms and ≤ 10× baseline", per_task <= 1 and per_task <= 10 * raw)
            )  # fmt: skip
    return figures
