"""Per-invocation CLI state (the `--home` option) and the error handling every command shares."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from pathlib import Path

    from kestractl.cli.backend import Backend
    from kestractl.config import Home
    from kestractl.storage import Storage
    from kestractl.store import Store

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    home_option: str | None = None
    database_option: str | None = None  # `--database URL`: a PostgreSQL (or SQLite) store instead of the home's
    storage_option: str | None = None  # `--storage URL`: internal storage elsewhere than the home's folder
    server: str | None = None  # `--server URL`: commands go to that server's API instead of the local store
    user: str | None = None  # `--user user:password` for its basic auth

    def home(self) -> Home:
        """The home folder, created if needed; the command's imports are done, so collection resumes (see
        `kestractl.cli.main`)."""
        from kestractl.config import resolve_home

        _imports_done()
        return replace(resolve_home(self.home_option), storage_url=self.storage_option).ensure()

    def database(self) -> str | Path:
        """`--database` (or `KESTRACTL_DATABASE_URL`), else the SQLite file in the home."""
        return self.database_option or self.home().db_path

    def open(self, background_checkpoints: bool = False) -> tuple[Store, Storage]:
        from kestractl.storage import open_storage
        from kestractl.store import open_store

        home = self.home()
        return open_store(self.database(), background_checkpoints), open_storage(home)

    def backend(self) -> Backend:
        """Where the command's flows and executions live: the server given with `--server`, or this machine."""
        if self.server:
            from kestractl.cli.remote import RemoteBackend

            _imports_done()
            return RemoteBackend(self.server, self.user)
        from kestractl.cli.local import LocalBackend

        return LocalBackend(self)


def _imports_done() -> None:
    if not gc.isenabled():  # paused by `main`: what start-up made lives on, so is never scanned again
        gc.freeze()
        gc.enable()


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
