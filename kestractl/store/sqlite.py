"""The SQLite store, the default: one file (WAL) in the home folder, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from kestractl.errors import KestraError, StoreError
from kestractl.store.dialect import SQLITE
from kestractl.store.repository import SqlStore
from kestractl.store.schema import connect, migrate, store_error


class SqliteStore(SqlStore):
    """The repositories over one SQLite file."""

    dialect = SQLITE
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: Path, background_checkpoints: bool = False) -> None:
        """`background_checkpoints`: commits never copy the WAL into the database themselves (SQLite does it
        every 4 MB, an fsync that stalled a server's executions for up to a second); the owner calls
        `checkpoint_every` from a thread of its own instead."""
        super().__init__()
        self.path = path
        self.background_checkpoints = background_checkpoints
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self.conn)  # type: ignore[arg-type]
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise store_error(path, exc) from None

    def connect(self) -> sqlite3.Connection:
        return connect(self.path, autocheckpoint=not self.background_checkpoints)

    def error(self, exc: Exception) -> StoreError:
        return store_error(self.path, exc)

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database without waiting for readers or writers (PASSIVE);
        returns the frames in the WAL and how many of them are now in the database."""
        try:
            _, frames, copied = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        return int(frames), int(copied)

    def checkpoint_every(self, seconds: float, stop: threading.Event, on_error: Callable[[KestraError], None]) -> None:
        """Until `stop` is set: copy the WAL into the database every `seconds`, off the path of every commit (run
        on a thread of its own, with `background_checkpoints`); then close this thread's connection."""
        while not stop.wait(seconds):
            try:
                self.checkpoint()
            except KestraError as exc:
                on_error(exc)
        self.close()
