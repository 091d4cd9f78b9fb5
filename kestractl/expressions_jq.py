"""The `jq` filter's engine: full jq (the `jq` package, C bindings) in a child process of its own.

Full jq can loop forever (`repeat`, `last(range(1e12))`), build values of any size (`[range(1e9)]`), read the
process environment (`env`, `$ENV`: where `SECRET_*` values and the encryption key live) and files (`import`).
So it runs in one long-lived child with an empty environment and a memory cap, killed (and started again on
the next call) when a program runs past its time; renders only wait for its one-line answer. Calls from
several threads take turns: a jq program is short, and one that is not is stopped after `TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
from typing import IO, Any

TIMEOUT_SECONDS = 30.0
MAX_RESULTS = 1_000_000
MAX_ANSWER_CHARS = 10_000_000
_MEMORY_BYTES = 512 << 20

_CHILD = f"""
import json, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, ({_MEMORY_BYTES}, {_MEMORY_BYTES}))
except (ImportError, ValueError, OSError):
    pass
import jq

def answer(request):
    program = jq.compile(request["p"])
    results = []
    for value in program.input_text(request["v"]):
        results.append(value)
        if len(results) > request["n"]:
            return {{"e": f"the jq expression gives more than {{request['n']:,}} results"}}
    return {{"r": results}}

for line in sys.stdin:
    try:
        text = json.dumps(answer(json.loads(line)))
    except MemoryError:
        text = json.dumps({{"e": "the jq expression needs more than {_MEMORY_BYTES >> 20} MB"}})
    except Exception as error:
        text = json.dumps({{"e": str(error) or type(error).__name__}})
    if len(text) > {MAX_ANSWER_CHARS}:
        text = json.dumps({{"e": "the result of the jq expression is over {MAX_ANSWER_CHARS:,} characters"}})
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()
"""

_MODULES = re.compile(r"(?:^|[;|\s(])(?:import|include)\s*\"")


def _jq_path() -> str:
    """A line putting the folder `jq` imports from here first on the child's path: `-I` ignores PYTHONPATH, and
    kestractl.pyz's unpacked dependencies are on no path the interpreter knows of."""
    import importlib.util

    spec = importlib.util.find_spec("jq")
    return f"import sys; sys.path.insert(0, {os.path.dirname(spec.origin)!r})\n" if spec and spec.origin else ""


class _Child:
    """The one jq process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def ask(self, program: str, document: str) -> dict[str, Any]:
        request = (json.dumps({"p": program, "v": document, "n": MAX_RESULTS}) + "\n").encode("utf-8")
        with self._lock:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(request)
                process.stdin.flush()
                line = _read_line(process.stdout, TIMEOUT_SECONDS)
            except BrokenPipeError:
                line = b""
            if not line:
                self.stop()
                if line is None:
                    raise ValueError(f"the jq expression takes more than {TIMEOUT_SECONDS:g} seconds")
                raise ValueError("the jq expression stopped its process (out of memory?)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _jq_path() + _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={},
                cwd="/",
            )
        return self._process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    """One answer line (empty when the child died), or None when none comes in time."""
    if not select.select([stream], [], [], timeout)[0]:
        return None
    return stream.readline()


_CHILD_PROCESS = _Child()
atexit.register(_CHILD_PROCESS.stop)


def jq_all(program: str, document: str) -> list[Any]:
    """Every result of a jq program on a JSON text, as Kestra's `JqFilter` collects them."""
    if _MODULES.search(program):
        raise ValueError("jq modules (`import`, `include`) are not available in expressions")
    answer = _CHILD_PROCESS.ask(program, document)
    if "e" in answer:
        raise ValueError(_one_line(str(answer["e"])))
    results: list[Any] = answer["r"]
    return results


def _one_line(message: str) -> str:
    """jq's compile errors span lines (the program and a caret follow): the first line says why."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "failed")
    return first.removeprefix("jq: error: ").removesuffix(":")
