"""What templates may call besides Jinja's own: dates the browser shows in its own time zone, durations as
people read them, a state's colour, and links that keep the page's filters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from kestractl.model import State, StateInfo, iso
from kestractl.server.http import Request


def when(value: datetime | None) -> Markup:
    """A `<time>` the page's script rewrites in the browser's time zone; UTC text until it does."""
    if value is None:
        return Markup("")
    text = value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{}</time>').format(iso(value), text)


def duration(value: timedelta | StateInfo | None) -> str:
    """`1h 02m`, `3m 07s`, `4.2s`, `12ms`: the shape Kestra's UI shows."""
    if isinstance(value, StateInfo):
        start, end = value.start_date, value.end_date or datetime.now().astimezone()
        value = end - start if start else None
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def state_badge(state: State | str) -> Markup:
    value = state.value if isinstance(state, State) else str(state)
    return Markup('<span class="state state-{0}">{0}</span>').format(escape(value))


def with_query(request: Request, **changes: Any) -> str:
    """The current page's URL with some query parameters changed (None removes one): paging and sorting
    links keep every filter the user set."""
    params = {k: list(v) for k, v in request.params.items()}
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    query = urlencode([(k, v) for k, values in params.items() for v in values])
    return request.path + ("?" + query if query else "")


FILTERS = {"when": when, "duration": duration, "state_badge": state_badge}
GLOBALS = {"with_query": with_query, "STATES": [s.value for s in State]}
