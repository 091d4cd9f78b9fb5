"""Packed batches: many small files of one folder stored as ONE file (`.kestractl.pack`), served by name.

ForEachItem's split of 10,000 one-row batches made 10,000 files, and on ext4 creating files after many deletions
costs the inode allocator more than the bytes (half of a 10,000-children execution). The split now writes the
batches one after the other into one pack with their offsets; the storage serves `<folder>/000001.ion` from it
when no file has that name. The layout, from the start of the file:

    the members' bytes, one after the other
    offsets: count + 1 little-endian u64 (member n, from 1, spans offsets[n - 1] to offsets[n])
    the members' extension (UTF-8), then the trailer: count, offsets' position, extension's length, magic

Members are named `{n:06d}{extension}`, so finding one reads the trailer and two offsets, whatever the count.
A member deleted later is marked by an empty `.kestractl.pack-deleted.<name>` beside the pack (the pack itself
is never rewritten: readers of other members go on undisturbed, in a bucket too).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

PACK = ".kestractl.pack"
DELETED = ".kestractl.pack-deleted."
_MAGIC = b"KPACK1"
_TRAILER = struct.Struct("<QQH6s")  # count, offsets' position, extension's length, magic
_OFFSET = struct.Struct("<Q")
_LONGEST_EXTENSION = 255
TAIL = _TRAILER.size + _LONGEST_EXTENSION  # the most a reader needs from the end to know the pack

# Reads `length` bytes of a pack from `start`; a negative start asks for its last `length` bytes (fewer if shorter).
Read = Callable[[int, int], bytes]


def hidden(name: str) -> bool:
    """The pack (and one being written) and its deletion marks are how a folder's members are stored, not files of
    their own."""
    return name.startswith(PACK)


def member_name(number: int, extension: str) -> str:
    return f"{number:06d}{extension}"


def packable(extension: str) -> bool:
    return len(extension.encode()) <= _LONGEST_EXTENSION


class PackWriter:
    """Writes members one after the other into an open file; `close` adds the offsets and the trailer."""

    def __init__(self, out: BinaryIO, extension: str) -> None:
        self.out, self.extension = out, extension
        self.offsets = [0]

    def add(self, data: bytes) -> str:
        """Appends the next member; returns its name."""
        self.out.write(data)
        self.offsets.append(self.offsets[-1] + len(data))
        return member_name(len(self.offsets) - 1, self.extension)

    def close(self) -> None:
        count, extension = len(self.offsets) - 1, self.extension.encode()
        self.out.write(struct.pack(f"<{count + 1}Q", *self.offsets))
        self.out.write(extension + _TRAILER.pack(count, self.offsets[-1], len(extension), _MAGIC))


class Index:
    """A pack's offsets, read once (two reads: the trailer, then the offsets), then asked by name."""

    def __init__(self, count: int, extension: str, offsets: bytes) -> None:
        self.count, self.extension, self.offsets = count, extension, offsets

    def span(self, name: str) -> tuple[int, int] | None:
        """(start, end) of member `name`, None when the pack holds none so named."""
        stem = name.removesuffix(self.extension) if self.extension else name
        if not stem.isdigit() or not 0 < int(stem) <= self.count or member_name(int(stem), self.extension) != name:
            return None
        start, end = struct.unpack_from("<QQ", self.offsets, _OFFSET.size * (int(stem) - 1))
        return (int(start), int(end)) if start <= end else None

    def members(self) -> Iterator[tuple[str, int]]:
        """Every member's name and size, in order."""
        offsets = struct.unpack(f"<{self.count + 1}Q", self.offsets)
        for number in range(1, self.count + 1):
            yield member_name(number, self.extension), offsets[number] - offsets[number - 1]


def load(read: Read) -> Index | None:
    """The pack's index, None when the file is not a pack (or is cut short)."""
    tail = read(-TAIL, TAIL)
    if len(tail) < _TRAILER.size:
        return None
    count, at, length, magic = _TRAILER.unpack_from(tail, len(tail) - _TRAILER.size)
    if magic != _MAGIC or length > len(tail) - _TRAILER.size:
        return None
    extension = tail[len(tail) - _TRAILER.size - length : len(tail) - _TRAILER.size].decode(errors="replace")
    offsets = read(at, (count + 1) * _OFFSET.size)
    if len(offsets) != (count + 1) * _OFFSET.size or _OFFSET.unpack_from(offsets, count * _OFFSET.size)[0] != at:
        return None
    return Index(count, extension, offsets)
