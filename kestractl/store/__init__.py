"""The only package that speaks SQL. `Store` (the protocol) is what the engine, server and CLI use; `open_store`
gives one: a SQLite file (the default, under the home folder) or a PostgreSQL database (`postgresql://…`)."""

from __future__ import annotations

from pathlib import Path

from kestractl.errors import StoreError
from kestractl.store.protocol import Store
from kestractl.store.records import Delay, FlowRow, MultipleConditionWindow, TriggerState

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(where: str | Path, background_checkpoints: bool = False) -> Store:
    """The store at `where`: a path or `sqlite:///path` (SQLite; `background_checkpoints`: see `SqliteStore`),
    or `postgresql://user:pass@host:5432/db`. A wrong URL or an unreachable database raises a one-line StoreError."""
    text = str(where)
    if text.startswith(POSTGRES_SCHEMES):
        from kestractl.store.postgres import PostgresStore

        return PostgresStore(text)
    from kestractl.store.sqlite import SqliteStore

    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"{scheme}://…: not a database URL kestractl knows (postgresql://user:pass@host:5432/db, "
            "sqlite:///path/to/file.db)"
        )
    return SqliteStore(Path(text), background_checkpoints)


__all__ = ["Delay", "FlowRow", "MultipleConditionWindow", "Store", "TriggerState", "open_store"]
