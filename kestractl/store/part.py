"""The base of `Store`'s parts kept in modules of their own (searches, the UI's views): `Store` gives them the
connection of the calling thread."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING


class StorePart:
    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...
