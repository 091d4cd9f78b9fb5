"""The UI's routes on the server's router: `/` and `/ui/` lead to the dashboard, `/ui/static/*` serves the
package's own assets (no CDN), and each page module adds its own routes."""

from __future__ import annotations

from importlib import resources

from kestractl.errors import NotFoundError
from kestractl.server.http import Request, Response, Router
from kestractl.ui import pages
from kestractl.ui.context import UiContext
from kestractl.ui.render import HEADERS

HOME = "/ui/dashboards"
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/", _home)
    router.add("GET", "/ui", _home)
    router.add("GET", "/ui/static/{name}", _static)
    for module in pages.MODULES:
        module.add_routes(router, ui)


def _home(request: Request) -> Response:
    return Response(302, None, headers={"Location": HOME})


def _static(request: Request) -> Response:
    """Files of `kestractl/ui/static` by name; nothing outside it (a name is one path segment)."""
    name = request.path_params["name"]
    kind = CONTENT_TYPES.get(name[name.rfind(".") :]) if "." in name else None
    asset = resources.files("kestractl.ui") / "static" / name
    if kind is None or name.startswith(".") or not asset.is_file():
        raise NotFoundError(f"Not Found: /ui/static/{name}")
    headers = {**HEADERS, "Cache-Control": "public, max-age=300"}
    return Response(200, asset.read_bytes(), kind, headers=headers)
