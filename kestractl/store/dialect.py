"""What differs between SQLite and PostgreSQL in the store's SQL, and nothing else: every query is written once
(SQLite's spelling, `?` placeholders) and asks its dialect for the few expressions the two spell differently."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    # Starts a write transaction: SQLite takes the write lock at once (no upgrade deadlock between readers).
    begin: str
    # A column kept out of index selection (SQLite's unary `+`; PostgreSQL's planner needs no hint).
    unindexed: str
    # `instr(haystack, needle)`: the position of a text in another, 0 when absent.
    position: str
    # Matches a pattern regardless of (ASCII) case, as SQLite's LIKE does.
    like: str
    # The LIMIT that lets every row through.
    no_limit: int | None
    # Ends a SELECT that claims rows for the transaction: PostgreSQL locks them and passes over those another
    # transaction holds; SQLite's BEGIN IMMEDIATE already holds the whole file, so nothing is added.
    claim: str = ""
    # Ends a SELECT whose rows the transaction holds until it ends, waiting for another transaction holding them.
    lock: str = ""
    # Takes a lock named by a text, held till the transaction ends (SQLite's BEGIN IMMEDIATE holds the file).
    flow_lock: str = ""

    def json_text(self, column: str, *path: str) -> str:
        """A text value inside a JSON column, by its keys."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        return f"({column}::json #>> '{{{','.join(path)}}}')"

    def shifted_day(self, column: str, minutes: int) -> str:
        """The `YYYY-MM-DD` day of an ISO UTC date text, shifted by `minutes` (a time zone's offset)."""
        if self.name == "sqlite":
            return f"date({column}, '{minutes:+d} minutes')"
        return f"to_char(({column}::timestamptz AT TIME ZONE 'UTC') + interval '{minutes:+d} minutes', 'YYYY-MM-DD')"

    def order(self, column: str, desc: bool) -> str:
        """An ORDER BY term with SQLite's place for NULLs (smallest), which PostgreSQL puts the other way."""
        if self.name == "sqlite":
            return f"{column} {'DESC' if desc else 'ASC'}"
        return f"{column} {'DESC NULLS LAST' if desc else 'ASC NULLS FIRST'}"

    def contains(self, haystack: str, needle: str) -> str:
        """A condition: `needle` occurs in `haystack` (both SQL expressions)."""
        return f"{self.position}({haystack}, {needle})>0"


SQLITE = Dialect(name="sqlite", begin="BEGIN IMMEDIATE", unindexed="+", position="instr", like="LIKE", no_limit=-1)
POSTGRES = Dialect(
    name="postgresql",
    begin="BEGIN",
    unindexed="",
    position="strpos",
    like="ILIKE",
    no_limit=None,
    claim=" FOR UPDATE SKIP LOCKED",
    lock=" FOR UPDATE",
    flow_lock="SELECT pg_advisory_xact_lock(hashtext(?))",
)
