"""Kestra's retry policies (constant, exponential, random): when the next attempt is due, if at all."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from kestractl.durations import parse_duration


def next_delay(retry: dict[str, Any] | None, attempts: int, first_start: datetime, now: datetime) -> timedelta | None:
    """Delay before attempt `attempts + 1`, or None when the policy is exhausted."""
    if not retry:
        return None
    max_attempt = retry.get("maxAttempt", retry.get("maxAttempts"))
    if max_attempt is not None and attempts >= int(max_attempt):
        return None
    delay = _delay(retry, attempts)
    max_duration = retry.get("maxDuration")
    if max_duration is not None and (now + delay) - first_start > parse_duration(max_duration):
        return None
    if max_attempt is None and max_duration is None:
        return None
    return delay


def _delay(retry: dict[str, Any], attempts: int) -> timedelta:
    kind = str(retry.get("type", "constant")).lower()
    if kind == "random":
        low = parse_duration(retry["minInterval"]).total_seconds()
        high = parse_duration(retry["maxInterval"]).total_seconds()
        return timedelta(seconds=random.uniform(low, high))
    interval = parse_duration(retry["interval"])
    if kind == "exponential":
        interval = interval * float(retry.get("delayFactor", 2)) ** max(0, attempts - 1)
        if retry.get("maxInterval") is not None:
            interval = min(interval, parse_duration(retry["maxInterval"]))
    return interval
