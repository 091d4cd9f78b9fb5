"""HTTP plumbing for the local server: a route table, request parsing, JSON responses, errors.

No Kestra logic lives here. The API layer registers handlers on a `Router`; this module turns
sockets into `Request`s, handler results into bytes, and `KestraError`s into JSON with the
right status, so every handler stays a few lines of domain code.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import hmac
import json
import math
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email.message import Message
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePath
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from kestractl.errors import KestraError, NotFoundError, ValidationError

TENANT_PREFIX, API_PREFIX = "/api/v1/main/", "/api/v1/"
_DRAIN_SECONDS, _DRAIN_BYTES = 2.0, 16 * 1024 * 1024


# Paths reachable without basic auth: a webhook's key is its secret, as in Kestra.
PUBLIC_PREFIXES = ("/api/v1/executions/webhook/", "/api/v1/main/executions/webhook/")
# Methods that read: a page on another site may make a browser send them, they change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BadRequest(KestraError):
    http_status = 400


class PayloadTooLarge(KestraError):
    http_status = 413


class MethodNotAllowed(KestraError):
    """The path exists but not for this method; `Allow` tells the client which ones do."""

    http_status = 405

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.headers = {"Allow": ", ".join(allowed)}


class CrossOrigin(KestraError):
    http_status = 403


class Unauthorized(KestraError):
    http_status = 401
    headers = {"WWW-Authenticate": 'Basic realm="kestractl"'}


@dataclass
class UploadedFile:
    field: str
    filename: str
    data: bytes


def save_uploads(files: list[UploadedFile], folder: str) -> dict[str, str]:
    """Each uploaded file written under `folder` (its own sub-folder per field, the client's base name kept), as
    a path per field: what input resolution reads a FILE from."""
    paths: dict[str, str] = {}
    for upload in files:
        path = Path(folder) / upload.field / (Path(upload.filename).name or "upload")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(upload.data)
        paths[upload.field] = str(path)
    return paths


def _content_type(value: str | None) -> tuple[str, Message]:
    """Parse a Content-Type value with the stdlib's parameter rules (quoting, RFC 2231)."""
    header = Message()
    header["Content-Type"] = value or "application/octet-stream"
    return header.get_content_type(), header


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, list[str]] = field(default_factory=dict)
    headers: Message = field(default_factory=Message)
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)

    def header_lists(self) -> dict[str, list[str]]:
        """Every header as sent, repeats kept: Kestra reads some (labels, trigger headers) as lists."""
        lists: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            lists.setdefault(name, []).append(str(value))
        return lists

    def json(self) -> Any:
        """The body as JSON; a client's malformed body is its mistake (400), never a 500."""
        if not self.body.strip():
            raise BadRequest("Request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as error:
            raise BadRequest(f"Invalid JSON body: {error.msg} (line {error.lineno}, column {error.colno})") from None
        except UnicodeDecodeError:
            raise BadRequest("Invalid JSON body: not UTF-8") from None

    def text(self) -> str:
        """The body decoded with the charset the client declared (UTF-8 if none)."""
        _, header = _content_type(self.headers.get("Content-Type"))
        return _decode(self.body, str(header.get_param("charset") or "utf-8"), "request body")

    def form(self) -> tuple[dict[str, list[str]], list[UploadedFile]]:
        """Fields and files of a form post, however the client encoded it (curl -F, requests files=, -d)."""
        if not self.body:
            return {}, []
        kind, header = _content_type(self.headers.get("Content-Type"))
        if kind == "multipart/form-data":
            boundary = header.get_param("boundary")
            if not isinstance(boundary, str) or not boundary:
                raise BadRequest("multipart/form-data without a boundary")
            return _parse_multipart(self.body, boundary)
        if kind == "application/x-www-form-urlencoded":
            return parse_qs(self.text(), keep_blank_values=True), []
        raise BadRequest(f"Expected multipart/form-data or application/x-www-form-urlencoded, got {kind}")


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    """Split on the boundary ourselves: binary-safe and linear, unlike a line-based mail parser."""
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(chunks) < 2:
        raise BadRequest("Malformed multipart body: boundary not found")
    fields: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise BadRequest("Malformed multipart body: part without a header block")
        part = HeaderParser(policy=email.policy.HTTP).parsestr(head.partition(b"\r\n")[2].decode("utf-8", "replace"))
        name, filename = part.get_param("name", header="content-disposition"), part.get_filename()
        if not isinstance(name, str):
            raise BadRequest("Malformed multipart body: part without a name")
        if filename is not None:
            files.append(UploadedFile(name, filename, data))
        else:
            fields.setdefault(name, []).append(_decode(data, part.get_content_charset() or "utf-8", f"field {name}"))
    return fields, files


def _decode(data: bytes, charset: str, what: str) -> str:
    """Text in a charset the client chose; a wrong one is the client's mistake (400)."""
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError) as error:
        raise BadRequest(f"Cannot decode {what} as {charset}: {error}") from None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None


Handler = Callable[[Request], Response]


def _json_default(value: Any) -> Any:
    """Dates and paths are common in payloads; anything else unknown is a handler bug."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(response: Response) -> tuple[bytes, str | None]:
    """Body bytes and content type, chosen from the body's Python type; idempotent."""
    body = response.body
    if body is None:
        return b"", response.content_type
    if isinstance(body, bytes):
        return body, response.content_type or "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8", "replace"), response.content_type or "text/plain; charset=utf-8"
    try:
        text = json.dumps(body, default=_json_default, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or Infinity (YAML's `.nan`) is not JSON: written as text, as Jackson does
        text = json.dumps(_finite(body), default=_json_default, ensure_ascii=False)
    # A lone surrogate (YAML's "\ud800") can only be inside a JSON string, where `\ud800` is its escape.
    return text.encode("utf-8", "backslashreplace"), response.content_type or "application/json"


def _finite(value: Any) -> Any:
    """Non-finite numbers as the strings Jackson writes for them (`"NaN"`, `"Infinity"`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error_response(error: KestraError) -> Response:
    """The JSON every error takes, so clients parse one shape whatever went wrong."""
    body: dict[str, Any] = {"message": error.message, "status": error.http_status}
    if isinstance(error, ValidationError):
        body["errors"] = list(error.problems)
    headers: dict[str, str] = dict(getattr(error, "headers", {}))
    return Response(error.http_status, body, headers=headers)


@dataclass
class _Route:
    methods: frozenset[str]
    segments: tuple[str | None, ...]  # None marks a "{name}" segment
    names: tuple[str, ...]
    handler: Handler

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if `segments` (as many as this route's) fits its shape, else None."""
        pairs = list(zip(self.segments, segments, strict=True))
        if any(mine not in (None, theirs) for mine, theirs in pairs):
            return None
        return dict(zip(self.names, [theirs for mine, theirs in pairs if mine is None], strict=True))

    def specificity(self) -> tuple[int, ...]:
        """Sorts literal segments before parameters, position by position, so `search` beats `{id}`."""
        return tuple(1 if segment is None else 0 for segment in self.segments)


def _split(path: str) -> list[str]:
    return path.rstrip("/").split("/")[1:] if path != "/" else []


class Router:
    """A route table where every `/api/v1/...` route also answers under Kestra's default tenant."""

    def __init__(self) -> None:
        # The routes by segment count: a request is matched against those of its length only.
        self._by_length: dict[int, list[_Route]] = {}

    def add(self, methods: str | list[str], pattern: str, handler: Handler) -> None:
        wanted = frozenset(m.upper() for m in ([methods] if isinstance(methods, str) else methods))
        self._add(wanted, pattern, handler)
        if pattern.startswith(API_PREFIX) and not pattern.startswith(TENANT_PREFIX):
            self._add(wanted, TENANT_PREFIX + pattern.removeprefix(API_PREFIX), handler)

    def _add(self, methods: frozenset[str], pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"Route pattern must start with '/': {pattern}")
        parts = _split(pattern)
        segments = tuple(None if p.startswith("{") and p.endswith("}") else p for p in parts)
        names = tuple(p[1:-1] for p in parts if p.startswith("{") and p.endswith("}"))
        same_length = self._by_length.setdefault(len(segments), [])
        for route in same_length:
            if route.segments == segments and route.methods & methods:
                raise ValueError(f"Route already registered: {sorted(route.methods & methods)} {pattern}")
        same_length.append(_Route(methods, segments, names, handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler for an already-decoded path, and its path parameters."""
        return self.resolve(method, _split(path))

    def resolve(self, method: str, segments: list[str]) -> tuple[Handler, dict[str, str]]:
        """Match decoded segments, so an encoded '/' (%2F) stays inside its segment."""
        candidates = self._by_length.get(len(segments), [])
        fits = [(route, bound) for route in candidates if (bound := route.bind(segments)) is not None]
        path = "/" + "/".join(segments)
        if not fits:
            raise NotFoundError(f"Not Found: {path}")
        head = method.upper() == "HEAD"
        allowed = [(r, bound) for r, bound in fits if method.upper() in r.methods or (head and _answers_head(r))]
        if not allowed:
            methods = sorted({m for r, _ in fits for m in r.methods} | {"HEAD" for r, _ in fits if _answers_head(r)})
            raise MethodNotAllowed(f"Method Not Allowed: {method} {path}", methods)
        route, bound = min(allowed, key=lambda pair: pair[0].specificity())
        return route.handler, bound


def _cross_origin(headers: Message) -> bool:
    """A browser's request made by a page of another origin (the UI's requests are same-origin; curl and
    Kestra's client send neither header). Sec-Fetch-Site says it outright; older browsers send `Origin`, whose
    host and port must be the ones the request was sent to."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("Origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != (headers.get("Host") or "").lower()


def _answers_head(route: _Route) -> bool:
    """HEAD is answered by a route that only reads (GET alone): a webhook, which also takes GET, never runs for it."""
    return route.methods == frozenset({"GET"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many clients connecting at once must queue, not be reset (the stdlib default is 5).
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        router: Router,
        basic_auth: tuple[str, str] | None,
        max_body: int,
        log: Callable[[str], None] | None,
    ) -> None:
        self.router, self.max_body, self.log = router, max_body, log or (lambda line: None)
        self.credentials = f"{basic_auth[0]}:{basic_auth[1]}".encode() if basic_auth else None
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A vanished client is routine; anything else goes to the log, never to stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            self.log(traceback.format_exc())


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version, sys_version = "kestractl", ""
    timeout = 120  # frees the thread of an idle keep-alive connection
    disable_nagle_algorithm = True  # headers and body go out as separate writes; don't stall on delayed ACKs
    _consumed = True

    @property
    def app(self) -> _Server:
        return cast(_Server, self.server)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the server's `log` callback gets one line per request instead."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines get the same JSON error shape as everything else."""
        self.close_connection = True
        error = KestraError(message or self.responses.get(code, ("Error",))[0])
        error.http_status = code
        self._send(error_response(error))

    def handle_expect_100(self) -> bool:
        """Refuse an oversized or unauthenticated upload before the client sends it (curl -F does this)."""
        try:
            self._precheck()
        except KestraError as error:
            self.close_connection = True
            self._send(error_response(error))
            self._log(error.http_status, time.monotonic())
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        started = time.monotonic()
        self._consumed = not self._declares_body()
        response = self._respond()
        if not self._consumed:
            self.close_connection = True
        try:
            self._send(response)
        except OSError:
            self.close_connection = True
        if not self._consumed:
            self._drain()
        self._log(response.status, started)

    def _log(self, status: int, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        self.app.log(f"{self.command} {unquote(urlsplit(self.path).path)} -> {status} ({elapsed:.1f} ms)")

    def _respond(self) -> Response:
        """Run the handler; every failure becomes a JSON error and a bug's traceback goes to the log only."""
        try:
            self._precheck()
            split = urlsplit(self.path)
            segments = [unquote(s) for s in _split(split.path or "/")]
            query = parse_qs(split.query, keep_blank_values=True)
            request = Request(self.command, "/" + "/".join(segments), query, self.headers, self._read_body())
            handler, request.path_params = self.app.router.resolve(self.command, segments)
            response = handler(request)
            body, content_type = _encode(response)  # here, so an unserialisable body is a 500, not a dropped socket
            return replace(response, body=body, content_type=content_type)
        except KestraError as error:
            return error_response(error)
        except Exception as error:
            self.app.log(traceback.format_exc())
            return Response(500, {"message": f"Internal server error: {error}", "status": 500})

    def _precheck(self) -> None:
        """Checks that need no body: credentials, then the declared size."""
        expected = self.app.credentials
        public = any(self.path.startswith(prefix) for prefix in PUBLIC_PREFIXES)
        if expected is not None and not public and not hmac.compare_digest(self._given_credentials(), expected):
            raise Unauthorized("Unauthorized: valid credentials are required")
        if not public and self.command not in SAFE_METHODS and _cross_origin(self.headers):
            raise CrossOrigin("Forbidden: a state-changing request from another origin")
        length = self._content_length()
        if length is not None and length > self.app.max_body:
            raise PayloadTooLarge(f"Request body of {length} bytes exceeds the limit of {self.app.max_body} bytes")

    def _given_credentials(self) -> bytes:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        try:
            return base64.b64decode(token.strip(), validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            return b""

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is not None and not (value.strip().isascii() and value.strip().isdigit()):
            raise BadRequest(f"Invalid Content-Length: {value}")
        return None if value is None else int(value)

    def _declares_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or (self.headers.get("Content-Length") or "0") != "0"

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = self._content_length() or 0
            body = self.rfile.read(length)
            if len(body) != length:
                raise BadRequest("Request body shorter than its Content-Length")
        self._consumed = True
        return body

    def _read_chunked(self) -> bytes:
        """Transfer-Encoding: chunked, held to the same size limit as a declared length."""
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("Malformed chunked request body") from None
            if size == 0:
                break
            total += size
            if total > self.app.max_body:
                raise PayloadTooLarge(f"Request body exceeds the limit of {self.app.max_body} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers: read and ignored
        return b"".join(parts)

    def _drain(self) -> None:
        """Read what the client still sends before closing, so it sees our answer, not a reset."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline, total = time.monotonic() + _DRAIN_SECONDS, 0
            while time.monotonic() < deadline and total < _DRAIN_BYTES and (chunk := self.rfile.read1(65536)):
                total += len(chunk)
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        if response.stream is not None:
            self._send_stream(response)
            return
        body, content_type = _encode(response)
        headers = {**({"Content-Type": content_type} if content_type else {}), **response.headers}
        empty = response.status in (204, 304)  # no body, and no Content-Length either (RFC 9110)
        if not empty:
            headers["Content-Length"] = str(len(body))
        self._start(response.status, {**headers, **self._connection_header()})
        if not empty and self.command != "HEAD":
            self.wfile.write(body)

    def _connection_header(self) -> dict[str, str]:
        """`close` when we close; HTTP/1.0 keeps a connection only if the answer says `keep-alive` (the stdlib
        keeps it for `Connection: keep-alive` but does not say so, and ab -k then waits for a close that never
        comes); HTTP/1.1 keeps it by default."""
        if self.close_connection:
            return {"Connection": "close"}
        return {"Connection": "keep-alive"} if self.request_version == "HTTP/1.0" else {}

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_stream(self, response: Response) -> None:
        """Chunk by chunk until the iterator ends or the client leaves; either way the iterator is closed."""
        assert response.stream is not None
        self.close_connection = True
        headers = {"Content-Type": response.content_type or "application/octet-stream", "Cache-Control": "no-cache"}
        self._start(response.status, {**headers, **response.headers, "Connection": "close"})
        try:
            for chunk in response.stream if self.command != "HEAD" else ():
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            pass  # the client disconnected
        except Exception:
            self.app.log(traceback.format_exc())
        finally:
            close = getattr(response.stream, "close", None)
            if callable(close):
                close()


def make_server(
    router: Router,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    basic_auth: tuple[str, str] | None = None,
    max_body: int = 100 * 1024 * 1024,
    log: Callable[[str], None] | None = None,
) -> ThreadingHTTPServer:
    """A bound server; the caller runs `serve_forever()` in a thread and `shutdown()` to stop it."""
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), router, basic_auth, max_body, log)
