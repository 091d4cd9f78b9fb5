"""An HTTP sink on 127.0.0.1: a threaded `http.server` that records every request (method, path, headers, body) and
answers what the test set for the path (200 `{"ok": true}` unless told otherwise). Webhook tests point tasks at it.

Use the fixture in a test module with `from tests.services.http_sink import http_sink  # noqa: F401`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Received:
    """One request as the sink saw it; header names in lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    """The running sink: `url` to send to, `requests` received, `answer()` to choose a path's response."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, path: str, status: int, body: str | bytes = b"") -> None:
        """Answer requests to `path` with this status and body."""
        self._answers[path] = (status, body.encode() if isinstance(body, str) else body)

    def only(self) -> Received:
        """The one request received (fails when there were none or several)."""
        assert len(self.requests) == 1, self.requests
        return self.requests[0]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _record(self, request: Received) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(request)
        return self._answers.get(request.path, (200, b'{"ok": true}'))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, body = sink._record(Received(self.command, self.path, headers, self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.close()
