"""Scenario 10, the UI's lists: a store of 100,000 executions and 1,000,000 log lines (2,000 and 20,000 with
`--quick`), written straight through the Store API in bulk, once, and read by every repetition.

Timed in this process, server side (the page handler from request to HTML, no socket): the executions list (a page
of 25 filtered by state and namespace), the dashboard, and the logs search page. Each one's baseline is the API
call a script would make for the same data in the same run (`GET /api/v1/executions/search?size=25` with the same
filters, `POST /api/v1/stats/executions/daily`, `GET /api/v1/logs/search?size=100`). Target: ≤ 100 ms each.

The executions start over the last 60 days (so the 7-day default window holds about an eighth of them and the
30-day dashboard half), in 20 namespaces of 50 flows, mostly SUCCESS, some FAILED, WARNING and KILLED, the
newest few RUNNING; each has 10 log lines a second apart, mostly INFO.

Then memory and start-up: the idle server's RSS before and after every UI page has rendered once (the UI may add
≤ 15 MB), and whether `kestractl --version` and `kestractl execute` import `kestractl.ui` or jinja2's
environment for pages (they must not: the UI costs the CLI nothing).
"""

from __future__ import annotations

import http.client
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from benchmarks.harness import Figure, median, process_env, rss_mb, scratch
from benchmarks.server import standalone
from kestractl.config import Home
from kestractl.engine.runner import Runner
from kestractl.model import Execution, LogEntry, State, StateInfo, new_id, utcnow
from kestractl.server.api import Api
from kestractl.server.http import Request, Router
from kestractl.storage import LocalStorage
from kestractl.store import Store, open_store
from kestractl.ui import app as ui_app
from kestractl.ui.context import UiContext

DAYS = 60
NAMESPACES = [f"company.team{i}" for i in range(10)] + [f"company.team{i}.etl" for i in range(10)]
STATES = [(State.SUCCESS, 85), (State.FAILED, 8), (State.WARNING, 4), (State.KILLED, 3)]
LEVELS = ["INFO"] * 7 + ["DEBUG", "WARN", "ERROR"]
TARGET_MS = 100.0
BATCH = 5_000
LIVE = 5  # the newest executions, still running
LOG_TASK = "io.kestra.plugin.core.log.Log"


def _execution(index: int, now: datetime, rng: random.Random) -> Execution:
    """The `index`-th execution, newest first: ended ones but the first few (still running)."""
    start = now - timedelta(seconds=index * DAYS * 86400 / _execution.total)  # type: ignore[attr-defined]
    namespace = NAMESPACES[index % len(NAMESPACES)]
    state = State.RUNNING if index < LIVE else rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
    info = StateInfo.new(State.CREATED, start)
    info.moved(State.RUNNING, start + timedelta(milliseconds=5))
    if state != State.RUNNING:
        info.moved(state, start + timedelta(seconds=rng.uniform(1, 120)))
    labels = [("env", "prod" if index % 3 else "dev"), ("team", namespace.split(".")[1])]
    flow_id = f"flow{index % 50}"
    trigger = {"id": "schedule", "type": "io.kestra.plugin.core.trigger.Schedule"} if index % 4 == 0 else None
    return Execution(new_id(), namespace, flow_id, 1, labels=labels, state=info, trigger=trigger)


def _lines(execution: Execution, count: int, rng: random.Random) -> Iterator[LogEntry]:
    start = execution.state.start_date or utcnow()
    for i in range(count):
        level = rng.choice(LEVELS)
        message = f"task t{i} processed {rng.randrange(10_000)} rows" if level != "ERROR" else "connection refused"
        yield LogEntry(
            execution.id, execution.namespace, execution.flow_id, level, message, start + timedelta(seconds=i), f"t{i}"
        )


def build_store(path: Path, executions: int, lines: int, now: datetime) -> Store:
    """A store of `executions` executions with `lines` log lines in all, written in batches of one transaction."""
    store, rng = open_store(path), random.Random(14)
    _execution.total = executions  # type: ignore[attr-defined]
    per = max(1, lines // executions)
    for first in range(0, executions, BATCH):
        batch = [_execution(i, now, rng) for i in range(first, min(first + BATCH, executions))]
        with store.transaction():
            store.save_executions(batch)
            store.append_logs([line for e in batch for line in _lines(e, per, rng)])
    return store


PAGES = [
    ("executions list, 25 FAILED of one namespace (and children)",
     "/ui/executions?state=FAILED&namespace=company.team3",
     ("GET", "/api/v1/executions/search?size=25&state=FAILED&namespace=company.team3&timeRange=P7D", b"")),
    ("dashboard", "/ui/dashboards", ("POST", "/api/v1/stats/executions/daily", b"{}")),
    ("logs search page, 100 newest lines of the last 24 h", "/ui/logs",
     ("GET", "/api/v1/logs/search?size=100&timeRange=PT24H", b"")),
    ("logs search page, WARN and above of one namespace, last 24 h", "/ui/logs?minLevel=WARN&namespace=company.team3",
     ("GET", "/api/v1/logs/search?size=100&timeRange=PT24H&minLevel=WARN&namespace=company.team3", b"")),
]  # fmt: skip
UI_RSS_MB = 15.0


def run(quick: bool) -> list[Figure]:
    executions, lines, repeat = (2_000, 20_000, 5) if quick else (100_000, 1_000_000, 15)
    figures = []
    with scratch("ui") as folder:
        home = Home(folder / "home").ensure()
        built = time.perf_counter()
        store = build_store(home.db_path, executions, lines, utcnow())
        built = time.perf_counter() - built
        router = _router(store, home)
        for name, path, (method, api, body) in PAGES:
            page_ms = _timed(lambda: _call(router, "GET", path, b""), repeat)  # noqa: B023 (called right here)
            api_ms = _timed(lambda: _call(router, method, api, body), repeat)  # noqa: B023
            note = f"{executions:,} executions, {lines:,} log lines (built in {built:.0f} s)"
            figures.append(Figure("ui", f"{name}, server-side render", page_ms, "ms", api_ms, f"{method} {api[:40]}…",
                                  f"≤ {TARGET_MS:.0f} ms", page_ms <= TARGET_MS, note))  # fmt: skip
        store.close()
        figures.append(_memory(folder))
    figures.append(_imports())
    return figures


def _router(store: Store, home: Home) -> Router:
    """The standalone server's routes (the API and the UI) on this store, without a socket."""
    runner = Runner(store, LocalStorage(home.storage_root), workers=1)
    router = Api(runner).routes()
    ui_app.add_routes(router, UiContext(runner))
    return router


def _call(router: Router, method: str, target: str, body: bytes) -> Any:
    """One request through the router as the server dispatches it; a failure stops the scenario."""
    parts = urlsplit(target)
    handler, bound = router.match(method, parts.path)
    response = handler(Request(method, parts.path, parse_qs(parts.query), body=body, path_params=bound))
    if response.status >= 300:
        raise RuntimeError(f"{method} {target} -> {response.status}: {str(response.body)[:300]}")
    return response.body


def _memory(folder: Path) -> Figure:
    """The idle server's RSS, then again once every UI page has rendered (templates compiled, modules loaded)."""
    flows = folder / "flows"
    flows.mkdir()
    for i in range(LIVE):  # the flows of the executions left running, which the server takes up again at start
        source = f"id: flow{i}\nnamespace: {NAMESPACES[i]}\ntasks:\n  - id: t\n    type: {LOG_TASK}\n    message: hi\n"
        (flows / f"flow{i}.yaml").write_text(source)
    with standalone(folder, flows) as running:
        time.sleep(1.0)
        before = _rss(running.process.pid)
        for path in ("/ui/dashboards", "/ui/executions", "/ui/logs", "/ui/flows", "/ui/executions?timeRange=all"):
            _get(running.host, running.port, path)
        time.sleep(1.0)
        after = _rss(running.process.pid)
    return Figure("ui", "idle server RSS once every UI page rendered", after, "MB", before, "same server before",
                  f"≤ +{UI_RSS_MB:.0f} MB", after - before <= UI_RSS_MB, f"+{after - before:.1f} MB")  # fmt: skip


def _rss(pid: int) -> float:
    samples = []
    for _ in range(5):
        samples.append(rss_mb(pid))
        time.sleep(0.1)
    return median(samples)


def _get(host: str, port: int, path: str) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} -> {response.status}")
    finally:
        conn.close()


def _imports() -> Figure:
    """Modules of the UI that `kestractl --version` and `kestractl execute` load: none may be."""
    loaded = ui_modules([sys.executable, "-X", "importtime", "-m", "kestractl", "--version"])
    return Figure("ui", "UI modules imported by `kestractl --version`", float(len(loaded)), "modules", None, "",
                  "0", not loaded, ", ".join(loaded) or "none")  # fmt: skip


def ui_modules(command: list[str]) -> list[str]:
    """The UI's modules (and jinja2's) that a command imports, from `python -X importtime`."""
    result = subprocess.run(command, capture_output=True, text=True, env=process_env())
    names = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return [n for n in names if n.startswith(("kestractl.ui", "jinja2"))]


def _timed(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000
