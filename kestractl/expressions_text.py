"""How values print in expressions, and Pebble's strict-variable check: what every part of kestractl that shows
a value needs, without Jinja (a command that renders only plain `{{ path }}`s never imports it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from kestractl.javatext import java_double
from kestractl.model import iso, iso_duration


def is_undefined(value: Any) -> bool:
    """A Jinja undefined value; none exists before Jinja is imported, so this never imports it."""
    jinja = sys.modules.get("jinja2")
    return jinja is not None and isinstance(value, jinja.Undefined)


def require(value: Any) -> None:
    """Pebble's strict variables: an undefined value given to a filter or function fails the render."""
    if is_undefined(value):
        value._fail_with_undefined_error()


def to_text(value: Any) -> str:
    """How a value prints inside `{{ }}`: Kestra's JSON for maps/lists, Java's text for the rest."""
    if isinstance(value, str):
        return value
    require(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    if isinstance(value, datetime):
        return iso(value) or ""
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, Enum):
        return to_text(value.value)
    return str(value)


def _json_default(value: Any) -> Any:
    """Serialise what JSON lacks the way Jackson does in Kestra (instants as ISO text)."""
    require(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Mapping):  # a map built on first use (the `outputs` and `tasks` variables)
        return dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept: what `toJson` and `{{ map }}` print."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
