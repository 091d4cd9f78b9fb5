"""Scenario 7, watch latency: a flow file edited in the server's watched folder, until its new revision is live.

Each edit rewrites the file (a new description, so a new source and a new revision); the clock stops when
the API serves that revision, polled every few milliseconds on one keep-alive connection: what a user
would see. Edits are spaced irregularly so they do not fall in step with the server's own polling.
The baseline is one API read of the flow, the floor any detection through the API pays.
"""

from __future__ import annotations

import http.client
import json
import random
import time

from benchmarks.harness import Figure, median, scratch
from benchmarks.server import standalone

FLOW = """id: watched
namespace: bench.watch
description: edit {edit}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
"""
PATH = "/api/v1/flows/bench.watch/watched"
POLL_SECONDS = 0.005


def _revision(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", PATH)
    response = conn.getresponse()
    body = response.read()
    return int(json.loads(body)["revision"]) if response.status == 200 else 0


def _until_revision(conn: http.client.HTTPConnection, wanted: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while _revision(conn) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"revision {wanted} never went live")
        time.sleep(POLL_SECONDS)


def run(quick: bool) -> list[Figure]:
    edits = 5 if quick else 25
    shuffle = random.Random(7)
    with scratch("watch") as folder:
        flows = folder / "flows"
        flows.mkdir()
        path = flows / "watched.yaml"
        path.write_text(FLOW.format(edit=0))
        with standalone(folder, flows) as server:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
            _until_revision(conn, 1)
            reads, samples = [], []
            for edit in range(1, edits + 1):
                time.sleep(shuffle.uniform(0.05, 0.3))
                started = time.perf_counter()
                _revision(conn)
                reads.append(time.perf_counter() - started)
                started = time.perf_counter()
                path.write_text(FLOW.format(edit=edit))
                _until_revision(conn, edit + 1)
                samples.append(time.perf_counter() - started)
            conn.close()
    latency, read = median(samples) * 1000, median(reads) * 1000
    note = f"median of {edits} edits; slowest {max(samples) * 1000:.0f} ms"
    return [
        Figure("watch", "file edited -> new revision live", latency, "ms", read, "one API read", "≤ 250 ms",
               latency <= 250, note),
    ]  # fmt: skip
