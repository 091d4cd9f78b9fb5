"""ISO-8601 durations (`PT5M6S`, `P1DT2H`, `PT0.250S`) as Kestra and Java's `Duration` read them."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<days>[-+]?\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>[-+]?\d+(?:\.\d+)?)H)?(?:(?P<minutes>[-+]?\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>[-+]?\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: object) -> timedelta:
    """Parse an ISO-8601 duration; raises ValueError with the offending text."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        try:
            return timedelta(seconds=float(text))
        except OverflowError:
            raise ValueError(f"'{text}' seconds is too long a duration") from None
    raw = str(text).strip()
    match = _DURATION_RE.match(raw)
    if not match or raw.upper() in ("P", "PT") or raw.upper().endswith("T"):
        raise ValueError(f"'{raw}' is not an ISO-8601 duration (e.g. PT30S, PT5M, P1D)")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"}
    try:
        delta = timedelta(
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
    except OverflowError:
        raise ValueError(f"'{raw}' is too long a duration") from None
    return -delta if match.group("sign") == "-" else delta


def is_duration(text: object) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True
