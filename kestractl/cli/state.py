"""Per-invocation CLI state (the `--home` option) and the error handling every command shares."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from kestractl.config import Home
    from kestractl.storage import Storage
    from kestractl.store import Store

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    home_option: str | None = None
    storage_option: str | None = None

    def home(self) -> Home:
        """The home folder, created if needed; the command's imports are done, so collection resumes (see
        `kestractl.cli.main`)."""
        from kestractl.config import resolve_home

        if not gc.isenabled():  # paused by `main`: what start-up made lives on, so is never scanned again
            gc.freeze()
            gc.enable()
        return replace(resolve_home(self.home_option), storage_url=self.storage_option).ensure()

    def open(self, background_checkpoints: bool = False) -> tuple[Store, Storage]:
        from kestractl.storage import open_storage
        from kestractl.store import Store

        home = self.home()
        return Store(home.db_path, background_checkpoints), open_storage(home)


state = CliState()


def handles_errors(func: F) -> F:
    """Turn a KestraError into its message on stderr (every problem, one per line) and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from kestractl.cli.output import error
        from kestractl.errors import KestraError

        try:
            return func(*args, **kwargs)
        except KestraError as exc:
            problems = getattr(exc, "problems", None) or [exc.message]
            for problem in problems:
                error(problem)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a folder that cannot be created or written: the user's path
            error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
