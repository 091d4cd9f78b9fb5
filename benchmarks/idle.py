"""Scenario 8, idle server RSS: `server standalone` after start-up, a few flows loaded, nothing running.

The flows are the sample flows, scenario 4's webhook flow and a daily schedule, so the scheduler, the
watcher and the HTTP listener are all live. Resident memory is sampled once the server has settled; the
baseline is a bare interpreter of the same Python, sleeping, sampled the same way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import server as scenario4
from benchmarks.harness import ROOT, Figure, median, rss_mb, scratch

SCHEDULED = """id: nightly
namespace: bench.idle
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.date }}"
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""


def _samples(pid: int, count: int) -> float:
    """Median VmRSS of `count` samples 0.1 s apart."""
    found = []
    for _ in range(count):
        found.append(rss_mb(pid))
        time.sleep(0.1)
    return median(found)


def _flows(folder: Path) -> Path:
    flows = folder / "flows"
    flows.mkdir()
    for path in (ROOT / "sample_flows").glob("*.yaml"):
        shutil.copy(path, flows / path.name)
    (flows / "benchmark01.yaml").write_text(scenario4.FLOW)
    (flows / "nightly.yaml").write_text(SCHEDULED)
    return flows


def run(quick: bool) -> list[Figure]:
    settle, count = (0.5, 5) if quick else (2.0, 20)
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(settle)
        baseline = _samples(bare.pid, count)
    finally:
        bare.kill()
        bare.wait()
    with scratch("idle") as folder:
        with scenario4.standalone(folder, _flows(folder)) as running:
            loaded = running.call("GET", "/api/v1/flows/search?size=100")["total"]
            time.sleep(settle)
            idle = _samples(running.process.pid, count)
    return [
        Figure("idle", "idle server RSS", idle, "MB", baseline, "bare python", "≤ 80 MB", idle <= 80,
               f"{loaded} flows loaded, sampled {settle:.1f} s after start-up"),
    ]  # fmt: skip
