"""Scenario 1, start-up: whole `kestractl` processes against `python -c pass` on the same interpreter.

`--version` answers before Typer and the engine are imported; `execute dev hello-world` is the seed's flow,
deployed beforehand, run synchronously to its end (start-up, store, render, log, exit). The three commands
take turns, so a neighbour's load on the machine falls on all of them alike and the ratios stay fair.
"""

from __future__ import annotations

import sys

from benchmarks.harness import KESTRACTL, ROOT, Figure, cli_env, commands_seconds, kestractl, scratch

HELLO = ["dev", "hello-world"]


def run(quick: bool) -> list[Figure]:
    repeat = 3 if quick else 21
    with scratch("startup") as folder:
        home = folder / "home"
        kestractl(home, "flow", "deploy", str(ROOT / "sample_flows" / "hello-world.yaml"))
        commands = [[sys.executable, "-c", "pass"], [KESTRACTL, "--version"], [KESTRACTL, "execute", *HELLO]]
        python, version, execute = (seconds * 1000 for seconds in commands_seconds(commands, repeat, cli_env(home)))
    return [
        Figure("startup", "kestractl --version", version, "ms", python, "python -c pass", "≤ 1.5× baseline",
               version <= 1.5 * python),
        Figure("startup", "kestractl execute dev hello-world", execute, "ms", python, "python -c pass",
               "≤ 5× baseline", execute <= 5 * python),
    ]  # fmt: skip
