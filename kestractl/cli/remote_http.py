"""The HTTP side of `--server`: one client for Kestra's API, its answers turned into the errors local mode raises,
and server-sent events read. The API is at `/api/v1/main` (tenant `main`, which Kestra 1.x requires and our server
serves too) unless the URL names its own API path (`http://host:8080/api/v1` for Kestra 0.x, another tenant).

Anything that goes wrong on the way (refused, unknown host, timeout, a bad URL, 401, 5xx) is one `KestraError`
line naming the server, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from kestractl.errors import ConflictError, KestraError, NotFoundError, ValidationError

# Seconds a request may take to connect or to answer; a stream of events waits as long as the execution runs.
TIMEOUT_SECONDS = 30.0
STATUS_ERRORS: dict[int, type[KestraError]] = {404: NotFoundError, 409: ConflictError}


class Unreachable(KestraError):
    """The server could not be asked, or answered as no API would (auth, 5xx): no answer about the request."""


class ApiClient:
    def __init__(self, server: str, user: str | None) -> None:
        self.server = server.rstrip("/")
        try:
            url = httpx.URL(self.server)
        except httpx.InvalidURL as exc:
            raise Unreachable(f"--server {server}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise Unreachable(f"--server {server}: expected an http:// or https:// URL")
        self._auth = _basic_auth(user)
        self._client = self.new_client()

    def new_client(self) -> httpx.Client:
        """A client of its own for a thread that follows a stream while another one asks."""
        api = self.server if "/api/" in self.server else f"{self.server}/api/v1/main"
        return httpx.Client(base_url=api, auth=self._auth, timeout=TIMEOUT_SECONDS)

    def untenanted(self, path: str) -> str:
        """The URL of an endpoint Kestra keeps out of tenants (`/plugins/…`), whatever API path `--server` names."""
        return f"{self.server.split('/api/')[0]}/api/v1{path}"

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The answer to a request; any failure raises the error local mode would (or `Unreachable`)."""
        try:
            response = self._client.request(method, path, **options)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self.unreachable(exc) from None
        self.check(response)
        return response

    def json(self, method: str, path: str, **options: Any) -> Any:
        response = self.send(method, path, **options)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise Unreachable(f"{self.server} answered {method} {path} with something else than JSON") from None

    def events(self, path: str, client: httpx.Client | None = None) -> Iterator[str]:
        """The data of each server-sent event of a stream, until the server ends it (or the caller stops reading)."""
        timeout = httpx.Timeout(TIMEOUT_SECONDS, read=None)
        try:
            with (client or self._client).stream("GET", path, timeout=timeout) as response:
                self.check(response, read=True)
                yield from _parse_events(response.iter_lines())
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self.unreachable(exc) from None

    def check(self, response: httpx.Response, read: bool = False) -> None:
        """Raise the error an answer of 4xx or 5xx means, with the server's own message."""
        if response.is_success:
            return
        if read:
            response.read()
        status, message = response.status_code, _message(response)
        if status == 401:
            raise Unreachable(f"{self.server} refused the credentials (401): give --user user:password")
        if message is None:  # not an error of Kestra's API: the URL points elsewhere, or a proxy answered
            raise Unreachable(f"{self.server} answered {status} to {response.request.url.path}: no Kestra API there?")
        if status in (400, 422):
            raise ValidationError(message, _problems(response) or None)
        if status in STATUS_ERRORS:
            raise STATUS_ERRORS[status](message)
        raise Unreachable(f"{self.server} answered {status}: {message}")

    def unreachable(self, exc: httpx.HTTPError | httpx.InvalidURL) -> Unreachable:
        if isinstance(exc, httpx.TimeoutException):
            return Unreachable(f"cannot reach {self.server}: no answer within {TIMEOUT_SECONDS:g} s")
        reason = str(exc) or type(exc).__name__
        return Unreachable(f"cannot reach {self.server}: {reason.rpartition('] ')[2]}")


def form(parts: list[tuple[str, tuple[str | None, Any]]]) -> dict[str, Any]:
    """Request options for a multipart form of these fields and files; an empty form is still multipart, which
    Kestra's executions and resume endpoints require."""
    if parts:
        return {"files": parts}
    return {"content": b"--kestractl--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=kestractl"}}


def _basic_auth(user: str | None) -> tuple[str, str] | None:
    if not user:
        return None
    name, sep, password = user.partition(":")
    if not sep or not name:
        raise Unreachable("--user: expected user:password")
    return name, password


def _message(response: httpx.Response) -> str | None:
    """The `message` of Kestra's (and our) error JSON; None for any other answer."""
    try:
        body = response.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


def _problems(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def _parse_events(lines: Iterator[str]) -> Iterator[str]:
    """The text/event-stream format: `data:` lines up to a blank line make one event; `id:`, `event:` and `:`
    (comment) lines say nothing the callers need."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
