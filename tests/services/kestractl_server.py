"""`kestractl server standalone` as a real subprocess on an OS-assigned port, for tests that talk to it as users do."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def standalone(command: Sequence[str], home: Path, cwd: Path, log: Path) -> Iterator[str]:
    """Start `command` (a `server standalone` command line) with `--port 0`; yield its URL once it listens.
    Its output goes to `log`, so a chatty server never blocks on a full pipe; it is terminated on exit."""
    env = dict(os.environ, KESTRACTL_HOME=str(home), NO_COLOR="1")
    with log.open("w") as out:
        process = subprocess.Popen([*command, "--port", "0"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "listening on " not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield log.read_text().split("listening on ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)
