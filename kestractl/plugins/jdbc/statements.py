"""SQL text as Kestra's JDBC tasks read it: split into statements (`SqlSplitter`), `:name` parameters bound.

The splitter cuts at `;` outside quotes ('…', "…", `…`, […]), comments (-- and /* */), dollar-quoted bodies
($$…$$, $tag$…$tag$) and BEGIN … END blocks (a trigger's or a procedure's body); `BEGIN;` and
`BEGIN TRANSACTION` are statements, not blocks. Empty statements, and those of comments only, are dropped
(Kestra counts a trailing comment as a statement, so `SELECT 1; -- done` fails its Query; it runs here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# A token that matters to the splitter: a quoted or commented span (kept whole), a dollar quote opener, a word,
# or a semicolon.
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|\Z)"""
    r"""|(?P<dollar>\$(?:[A-Za-z_]\w*)?\$)|(?P<word>[A-Za-z_]\w*)|(?P<semi>;)""",
    re.DOTALL,
)
_NOT_A_BLOCK = frozenset({"TRANSACTION", "WORK", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "READ"})
_COMMENTS = re.compile(r"\s*(?:(?:--[^\n]*|/\*.*?\*/)\s*)*", re.DOTALL)
# A named parameter outside quotes and comments; `::type` casts are not parameters.
_PARAMETER = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(?<![:\w]):(?P<name>[A-Za-z_]\w*)""", re.DOTALL
)


class _Splitter:
    """Walks the tokens once, remembering BEGIN … END depth."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.statements: list[str] = []
        self.start = 0
        self.depth = 0
        self.previous = ""  # the last word seen, upper-cased
        self.pending_begin = False
        self.cases = 0  # open CASE … END expressions: their END closes no block

    def split(self) -> list[str]:
        position = 0
        while (match := _TOKEN.search(self.sql, position)) is not None:
            position = self._dollar_end(match) if match.group("dollar") else match.end()
            if match.group("word"):
                self._word(match.group("word").upper())
            elif match.group("semi"):
                self._semicolon(match.end())
        self._add(len(self.sql))
        return self.statements

    def _dollar_end(self, match: re.Match[str]) -> int:
        """The end of a dollar-quoted body (the whole rest when it is not closed)."""
        close = self.sql.find(match.group("dollar"), match.end())
        return len(self.sql) if close < 0 else close + len(match.group("dollar"))

    def _word(self, word: str) -> None:
        if self.pending_begin:
            self.pending_begin = False
            if word not in _NOT_A_BLOCK:
                self.depth += 1
        if word == "BEGIN":
            self.pending_begin = True
        elif word == "CASE":
            self.cases += 1
        elif word == "END" and self.cases:
            self.cases -= 1
            word = "END CASE"
        self.previous = word

    def _semicolon(self, end: int) -> None:
        self.pending_begin = False
        if self.depth and self.previous == "END":
            self.depth -= 1
        if self.depth == 0:
            self._add(end - 1)
            self.start = end
        self.previous = ";"

    def _add(self, end: int) -> None:
        statement = self.sql[self.start : end].strip()
        if not _COMMENTS.fullmatch(statement):
            self.statements.append(statement)


def split(sql: str) -> list[str]:
    """The statements of `sql`, without their trailing `;`."""
    return _Splitter(sql).split()


def bind(sql: str, parameters: Mapping[str, Any], placeholder: Callable[[str], str]) -> tuple[str, list[Any]]:
    """`:name`s replaced by the driver's placeholder, and the values in their order (a missing one is null)."""
    values: list[Any] = []

    def replace(match: re.Match[str]) -> str:
        if match.group("name") is None:
            return match.group(0)
        values.append(parameters.get(match.group("name")))
        return placeholder(match.group(0))

    return _PARAMETER.sub(replace, sql), values
