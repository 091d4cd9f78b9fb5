"""The command-line interface. `main` is the console script: `kestractl --version` answers before Typer and
the engine are imported (a third of a second saved, as `python -c pass` is the floor users compare with)."""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from kestractl import __version__

        sys.stdout.write(f"kestractl {__version__}\n")
        return 0
    from kestractl.cli.app import main as app_main

    return app_main(argv)
