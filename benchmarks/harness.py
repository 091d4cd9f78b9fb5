"""What every scenario shares: the Figure it reports, medians, scratch homes and process measurements.

A scenario is a module with `run(quick: bool) -> list[Figure]`. It builds its own scratch home, measures
its baseline in the same run (the machine is shared and noisy: only medians and ratios are quoted), and
says for each figure whether its target is met.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KESTRACTL = str(Path(sys.executable).parent / "kestractl")


@dataclass
class Figure:
    """One measured figure, its baseline from the same run, and its target."""

    scenario: str
    name: str
    value: float | None  # None: not measured here (a missing outside tool); the note says why
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.value is not None and self.baseline else None

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "ratio": self.ratio}


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def samples_of(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall seconds of `repeat` calls."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        out.append(time.perf_counter() - started)
    return out


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a measured process: bytecode caches allowed, as a pip-installed kestractl has them
    (a shell with PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "NO_COLOR": "1", **extra}


def command_seconds(command: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall seconds of a whole process after one warm-up run, output discarded; a failure stops the
    scenario."""
    return commands_seconds([command], repeat, env)[0]


def commands_seconds(commands: list[list[str]], repeat: int, env: dict[str, str] | None = None) -> list[float]:
    """Median wall seconds of each whole process, the commands taking turns (`repeat` rounds after a warm-up
    one), so that load from elsewhere falls on each alike; output discarded, a failure stops the scenario."""

    def once(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(
            command, env=env or process_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return time.perf_counter() - started

    for command in commands:
        once(command)
    rounds = [[once(command) for command in commands] for _ in range(repeat)]
    return [median([times[i] for times in rounds]) for i in range(len(commands))]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A scratch folder for one scenario's homes and files, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"kbench-{prefix}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a `kestractl` subprocess on `home`."""
    return process_env(KESTRACTL_HOME=str(home))


def kestractl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI on `home`; a failure stops the scenario with its output."""
    result = subprocess.run([KESTRACTL, *args], env=cli_env(home), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kestractl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def peak_run(command: list[str], env: dict[str, str], output: Path) -> tuple[float, float]:
    """Run a command to its end, its standard output into `output`: (wall seconds, its peak RSS in MB); a failure
    stops the scenario. GNU time reports the peak of the process it starts itself; a child's `wait4` counts the
    memory of the process it was forked from (this benchmark, over 100 MB after the distributed scenario), so it
    is only the fallback, an upper bound."""
    peak_file = output.with_name(output.name + ".peak-kib")
    measured = [GNU_TIME, "-f", "%M", "-o", str(peak_file), *command] if GNU_TIME else command
    started = time.perf_counter()
    with output.open("w") as stdout:
        process = subprocess.Popen(measured, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[1:4])} failed ({os.waitstatus_to_exitcode(status)})")
    peak_kib = int(peak_file.read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return seconds, peak_kib / 1024


def rss_mb(pid: int, peak: bool = False) -> float:
    """Resident memory of a live process (`VmHWM`, its peak, with `peak`), from /proc."""
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for process {pid}")


def at_most(value: float, limit: float) -> bool:
    return value <= limit
