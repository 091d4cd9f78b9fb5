"""Scenario 1b, the one-file build: kestractl.pyz's start-up against the pip-installed `kestractl`.

The file is built by `python -m build_onefile` into a scratch folder and run by an empty venv's Python (one
with no kestractl of its own, and the same interpreter start-up as the pip install's venv). Its first start
unpacks into a scratch cache; the figures are the warm starts after it, the two installs taking turns.
"""

from __future__ import annotations

import subprocess
import sys
import time
import venv

from benchmarks.harness import KESTRACTL, ROOT, Figure, cli_env, commands_seconds, kestractl, scratch

HELLO = ["execute", "dev", "hello-world"]


def run(quick: bool) -> list[Figure]:
    repeat = 3 if quick else 21
    with scratch("onefile") as folder:
        pyz, home = folder / "kestractl.pyz", folder / "home"
        subprocess.run(
            [sys.executable, "-m", "build_onefile", "--output", str(pyz)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        venv.create(folder / "python", with_pip=False)
        env = {**cli_env(home), "KESTRACTL_ONEFILE_CACHE": str(folder / "unpacked")}
        onefile = [str(folder / "python" / "bin" / "python"), str(pyz)]
        started = time.perf_counter()
        subprocess.run([*onefile, "--version"], env=env, check=True, stdout=subprocess.DEVNULL)
        first = time.perf_counter() - started
        kestractl(home, "flow", "deploy", str(ROOT / "sample_flows" / "hello-world.yaml"))
        commands = [[KESTRACTL, "--version"], [*onefile, "--version"], [KESTRACTL, *HELLO], [*onefile, *HELLO]]
        pip_version, version, pip_execute, execute = (s * 1000 for s in commands_seconds(commands, repeat, env))
    return [
        Figure("onefile", "kestractl.pyz --version", version, "ms", pip_version, "pip-installed", "≤ 1.5× baseline",
               version <= 1.5 * pip_version),
        Figure("onefile", "kestractl.pyz execute dev hello-world", execute, "ms", pip_execute, "pip-installed",
               "≤ 1.5× baseline", execute <= 1.5 * pip_execute),
        Figure("onefile", "kestractl.pyz first start (unpack, compile)", first, "s"),
    ]  # fmt: skip
