"""Pages as responses: one Jinja2 environment that escapes everything by default, the security headers every
page carries, and an HTML error page for a user's mistake (a JSON error is for API clients)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kestractl.errors import KestraError
from kestractl.server.http import Request, Response

if TYPE_CHECKING:
    import jinja2

# No inline script or style anywhere: a flow's text that slipped through escaping still cannot run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HTML = "text/html; charset=utf-8"
PageHandler = Callable[[Request], Response]


@functools.cache
def environment() -> jinja2.Environment:
    """Built on the first page: the server's start-up and the CLI never pay for it."""
    import jinja2

    from kestractl.ui import filters

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kestractl.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters.FILTERS)
    env.globals.update(filters.GLOBALS)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def page(template: str, request: Request, status: int = 200, **context: Any) -> Response:
    """A whole page; `request` gives templates the current path and query (filters kept in links)."""
    html = render(template, request=request, now=datetime.now().astimezone(), **context)
    return Response(status, html, HTML, headers=dict(HEADERS))


def fragment(template: str, **context: Any) -> Response:
    """A piece of a page that its script fetches and swaps in (a refreshed table, a topology)."""
    return Response(200, render(template, **context), HTML, headers=dict(HEADERS))


def html_errors(handler: PageHandler) -> PageHandler:
    """A missing flow or a bad filter on a page answers with a page saying so, in the status the API uses."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except KestraError as error:
            return page("error.html", request, error.http_status, message=error.message)

    return wrapped
