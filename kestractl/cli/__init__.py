"""The command-line interface. `main` is the console script: `kestractl --version` answers before Typer and
the engine are imported (a third of a second saved, as `python -c pass` is the floor users compare with).

A start-up imports some 250 modules whose objects all live until exit; the cyclic collector scanned them
about 50 times as they piled up (7 ms of a 110 ms `execute`). `main` pauses it until the command opens its
home (`CliState.home`), by when the command has imported what it runs, and that freezes them (`gc.freeze`):
later collections never scan them again (0.2 ms)."""

from __future__ import annotations

import gc
import sys
from typing import Any


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from kestractl import __version__

        sys.stdout.write(f"kestractl {__version__}\n")
        return 0
    gc.disable()  # resumed by CliState.home
    try:
        from kestractl.cli.app import main as app_main

        return app_main(argv)
    finally:  # a command that never opened its home (help, a refused argument) must not leave it paused
        gc.enable()
