"""Query parameters as the API and the pages read them: the last value given wins, a blank one is absent, and a
value of the wrong shape is the client's mistake (a 400 naming the parameter), never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, overload

from kestractl.server.http import BadRequest

Params = Mapping[str, list[str]]


def param(params: Params, name: str) -> str | None:
    """The last value of a query parameter, stripped; None when absent or blank."""
    values = [v for v in params.get(name, []) if v.strip()]
    return values[-1].strip() if values else None


def required(params: Params, name: str) -> str:
    value = param(params, name)
    if value is None:
        raise BadRequest(f"Required query parameter `{name}` is missing")
    return value


@overload
def int_param(params: Params, name: str, default: int, minimum: int = 0) -> int: ...
@overload
def int_param(params: Params, name: str, default: None = None, minimum: int = 0) -> int | None: ...
def int_param(params: Params, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    """An integer of at least `minimum` (9 digits at most: an offset SQLite takes), else `default`."""
    text = param(params, name)
    if text is None:
        return default
    if not (text.isdigit() and int(text) >= minimum):
        raise BadRequest(f"`{name}` must be an integer of at least {minimum}, got `{text}`")
    return int(text[:9])


def flag(params: Params, name: str) -> bool:
    return (param(params, name) or "false").lower() == "true"


def page_param(params: Params, default_size: int) -> tuple[int, int]:
    """(page from 1, size from 1): Kestra's `page` and `size`, with no upper bound on the size, as Kestra's."""
    return int_param(params, "page", 1, minimum=1), int_param(params, "size", default_size, minimum=1)


def labels_param(params: Params, name: str = "labels") -> list[tuple[str, str]]:
    """Kestra's repeated `labels=key:value`."""
    return [_label(v) for v in params.get(name, []) if v.strip()]


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.strip().partition(":")
    if not sep or not key:
        raise BadRequest(f"labels must be key:value, got `{text}`")
    return key, value


def date_param(params: Params, name: str) -> datetime | None:
    """Kestra's `yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]`; a date without an offset is UTC."""
    return parse_date(param(params, name), name)


def parse_date(text: Any, name: str) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"`{name}` must be a date like 2026-01-31T12:00:00Z, got `{text}`") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
