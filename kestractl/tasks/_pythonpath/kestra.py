"""`from kestra import Kestra` in Python script tasks: outputs, metrics and logs as `::{json}::` lines.

kestractl puts this folder last on the scripts' PYTHONPATH, so the import works with nothing installed, as
in Kestra's Python images. When the `kestra` package is installed too (in the task's `dependencies` or the
interpreter's site-packages), this module steps aside and loads that one, so `Flow`, `Kestra.read` … work.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}


class Kestra:
    """What a script sends to its task, printed on standard output in the format the task parses."""

    _logger: logging.Logger | None = None

    @staticmethod
    def format(payload: dict[str, Any]) -> str:
        return "::" + json.dumps(payload) + "::"

    @staticmethod
    def _send(payload: dict[str, Any]) -> None:
        print(Kestra.format(payload), flush=True)

    @staticmethod
    def _metrics(name: str, kind: str, value: float, tags: dict[str, Any] | None = None) -> None:
        Kestra._send({"metrics": [{"name": name, "type": kind, "value": value, "tags": tags or {}}]})

    @staticmethod
    def outputs(outputs: dict[str, Any]) -> None:
        """Values the task returns as `outputs.<task>.vars`."""
        Kestra._send({"outputs": outputs})

    @staticmethod
    def assets(asset: dict[str, Any]) -> None:
        Kestra._send({"assets": asset})

    @staticmethod
    def counter(name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        Kestra._metrics(name, "counter", value, tags)

    @staticmethod
    def gauge(name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        Kestra._metrics(name, "gauge", value, tags)

    @staticmethod
    def timer(name: str, duration: float | Callable[[], Any], tags: dict[str, Any] | None = None) -> None:
        """A duration in seconds, or a function to call and time."""
        if callable(duration):
            start = time.perf_counter()
            duration()
            duration = time.perf_counter() - start
        Kestra._metrics(name, "timer", duration, tags)

    @staticmethod
    def read(path: str) -> list[dict[str, Any]]:
        raise RuntimeError("Kestra.read needs the `kestra` package: add `kestra` to the task's `dependencies`")

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records become task logs: up to INFO on stdout, WARNING and above on stderr."""
        if Kestra._logger is None:
            logger = logging.getLogger("Kestra")
            logger.setLevel(logging.DEBUG)
            logger.addHandler(_handler(sys.stdout, logging.DEBUG, lambda record: record.levelno <= logging.INFO))
            logger.addHandler(_handler(sys.stderr, logging.WARNING, lambda record: True))
            Kestra._logger = logger
        return Kestra._logger


class _LogLine(logging.Formatter):
    """A record as a `::{"logs": [...]}::` line; the message starts with its UTC time, as Kestra's does."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        level = LEVELS.get(record.levelno, "ERROR" if record.levelno > logging.WARNING else "TRACE")
        message = f"{when.replace('+00:00', 'Z')} - {record.getMessage()}"
        return Kestra.format({"logs": [{"level": level, "message": message}]})


def _handler(stream: Any, level: int, keep: Callable[[logging.LogRecord], bool]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.addFilter(keep)
    handler.setFormatter(_LogLine())
    return handler


def _step_aside() -> None:
    """Load an installed `kestra` package in this module's place, if one is on sys.path besides this folder."""
    here = os.path.dirname(os.path.abspath(__file__))
    others = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec(__name__, others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    stand_in = sys.modules[__name__]
    sys.modules[__name__] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:  # installed without its own dependencies: keep this one
        sys.modules[__name__] = stand_in


_step_aside()
