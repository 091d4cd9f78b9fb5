"""Splitting a text file into batches the way Kestra's StorageService does: by `rows`, by `bytes`
(`10MB`), or round-robin into `partitions`; each line written with `separator` after it.

Rows are moved in blocks (`islice` + one `write` per batch), so a million lines split at close to
the speed of `split -l`, in constant memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

# Opens the file for batch number `index` (1-based) and returns it with its name.
Opener = Callable[[int], BinaryIO]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
}
ROWS_PER_READ = 10_000


def parse_size(value: object) -> int:
    """`1024`, `"10MB"`, `"1.5 KB"` → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(f"`{value}` is not a size (e.g. 1024, 10KB, 10MB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _normalise(lines: list[bytes], separator: bytes) -> bytes:
    """Each line ends with `separator`, whatever end it had (`\\n`, `\\r\\n`, none)."""
    data = b"".join(lines)
    if separator == b"\n" and b"\r" not in data:
        return data if data.endswith(b"\n") or not data else data + b"\n"
    return b"".join(line.rstrip(b"\r\n") + separator for line in lines)


def by_rows(source: BinaryIO, rows: int, separator: bytes) -> Iterator[bytes]:
    """Batches of `rows` lines."""
    while True:
        lines = list(islice(source, rows))
        if not lines:
            return
        yield _normalise(lines, separator)


def by_bytes(source: BinaryIO, limit: int, separator: bytes) -> Iterator[bytes]:
    """Batches that close as soon as they reach `limit` bytes."""
    batch: list[bytes] = []
    size = 0
    for line in source:
        batch.append(line)
        size += len(line)
        if size >= limit:
            yield _normalise(batch, separator)
            batch, size = [], 0
    if batch:
        yield _normalise(batch, separator)


def split(
    source: Path,
    opener: Opener,
    *,
    rows: int | None = None,
    size: int | None = None,
    partitions: int | None = None,
    separator: str = "\n",
) -> int:
    """Write the batches through `opener`; returns how many files were written (empty ones never are)."""
    sep = separator.encode()
    with source.open("rb") as fh:
        if partitions:
            return _round_robin(fh, partitions, opener, sep)
        count = 0
        for count, data in enumerate(batches(fh, rows=rows, size=size, separator=sep), start=1):
            with opener(count) as out:
                out.write(data)
        return count


def batches(source: BinaryIO, *, rows: int | None = None, size: int | None = None, separator: bytes) -> Iterator[bytes]:
    """The batches by `size` (bytes) if given, else by `rows` (1 by default), one after the other."""
    return by_bytes(source, size, separator) if size else by_rows(source, rows or 1, separator)


def _round_robin(source: BinaryIO, partitions: int, opener: Opener, separator: bytes) -> int:
    """Lines dealt in turn to the partitions, each written in blocks: about ROWS_PER_READ lines held in all."""
    outputs: list[BinaryIO] = []
    buckets: list[list[bytes]] = [[] for _ in range(partitions)]
    block = max(1, ROWS_PER_READ // partitions)
    try:
        for index, line in enumerate(source):
            slot = index % partitions
            if slot == len(outputs):
                outputs.append(opener(slot + 1))
            buckets[slot].append(line)
            if len(buckets[slot]) >= block:
                outputs[slot].write(_normalise(buckets[slot], separator))
                buckets[slot] = []
        for out, lines in zip(outputs, buckets, strict=False):
            if lines:
                out.write(_normalise(lines, separator))
    finally:
        for out in outputs:
            out.close()
    return len(outputs)
