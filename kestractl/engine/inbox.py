"""The runner loop's inbox: work other threads hand to the loop (results, inline runs, activations, calls).

It is taken in groups for group commit: items about different executions run one after the other, and the
loop then decides for all of them and commits those decisions at once. An execution still gets one result
per decision, as from Kestra's executor: an item about an execution that already has an undecided result is
held for the next group.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

# Executions decided on, then persisted in one transaction, per group.
GROUP_COMMIT = 128


@dataclass(frozen=True)
class Work:
    """An inbox item about one execution; other items (a resume, a restart …) are never taken into a group."""

    execution_id: str
    action: Callable[[], None]

    def __call__(self) -> None:
        self.action()


class Inbox:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._held: Callable[[], None] | None = None

    def put(self, work: Callable[[], None]) -> None:
        """Thread-safe."""
        self._queue.put(work)

    def pending(self) -> bool:
        return self._held is not None or bool(self._queue.qsize())

    def take(self, timeout: float, dirty: Collection[str]) -> Iterator[Callable[[], None]]:
        """The next group, one item at a time (waiting up to `timeout` for the first); `dirty`, the executions
        with an undecided result, is looked at after each item has run."""
        work, self._held = self._held, None
        try:
            work = work or self._queue.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            yield work
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                return
            if dirty and (len(dirty) >= GROUP_COMMIT or not isinstance(work, Work) or work.execution_id in dirty):
                self._held = work
                return
