"""Scenario 1, start-up: whole `kestractl` processes against `python -c pass` on the same interpreter.

`--version` answers before Typer and the engine are imported; `execute dev hello-world` is the seed's flow,
deployed beforehand, run synchronously to its end (start-up, store, render, log, exit).
"""

from __future__ import annotations

import sys

from benchmarks.harness import KESTRACTL, ROOT, Figure, cli_env, command_seconds, kestractl, scratch


def run(quick: bool) -> list[Figure]:
    repeat = 3 if quick else 15
    python = command_seconds([sys.executable, "-c", "pass"], repeat) * 1000
    version = command_seconds([KESTRACTL, "--version"], repeat) * 1000
    with scratch("startup") as folder:
        home = folder / "home"
        kestractl(home, "flow", "deploy", str(ROOT / "sample_flows" / "hello-world.yaml"))
        execute = command_seconds([KESTRACTL, "execute", "dev", "hello-world"], repeat, env=cli_env(home)) * 1000
    return [
        Figure("startup", "kestractl --version", version, "ms", python, "python -c pass", "≤ 3× baseline",
               version <= 3 * python),
        Figure("startup", "kestractl execute dev hello-world", execute, "ms", python, "python -c pass",
               "≤ 300 ms", execute <= 300),
    ]  # fmt: skip
