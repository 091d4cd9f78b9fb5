"""Kestra's HTTP tasks, `Request` and `Download` (`io.kestra.plugin.core.http.*`), on httpx.

Follows Kestra 1.x's `AbstractHttp` + `HttpClient` + `HttpConfiguration`:
- `contentType` defaults to `application/json`; `body` is sent as text in `defaultCharset` (UTF-8) with
  `Content-Type: <contentType>; charset=UTF-8`; `formData` is url-encoded, or multipart when `contentType` is
  `multipart/form-data` (a `kestra://` value is a file part, `{name, content}` a file part with that file
  name, other text a text part, other values JSON text). Without a body, `Content-Type` is still sent.
- `options`: `timeout.connectTimeout` / `timeout.readIdleTimeout` (PT5M), `auth` BASIC / BEARER / DIGEST,
  `followRedirects` (true), `allowFailed` (false), `allowedResponseCodes` (when set, only those codes pass),
  `defaultCharset`, `logs`, `proxy`, `ssl`; and the deprecated flat keys Kestra still maps (`connectTimeout`,
  `readTimeout`, `basicAuthUser`/`basicAuthPassword`, `proxy*`, `logLevel`). The top-level `allowFailed` and
  `sslOptions` are the deprecated spellings of `options.allowFailed` and `options.ssl`.
- Outputs: `uri` (the request's), `code`, `headers` (name → list of values, names as the server sent them),
  and for Request `body` (the text, never parsed), for Download `uri` (kestra://) and `length`.
A status the options do not allow fails the task with Kestra's message; a connection that cannot be made or
a timeout is one line. The exchange runs on a thread of its own so a kill or a task `timeout` ends the task
at once, whatever the socket is doing.

httpx is imported inside the functions that send (CLI start-up does not pay for it).
"""

from __future__ import annotations

import contextlib
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kestractl.durations import is_duration, parse_duration
from kestractl.errors import KestraError, TaskError, unrecognized
from kestractl.expressions_text import to_text
from kestractl.storage import SCHEME, Storage
from kestractl.tasks.base import Killed, RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

if TYPE_CHECKING:
    import httpx

Render = Callable[[Any], Any]
Log = Callable[[str, str], None]

DEFAULT_CONTENT_TYPE = "application/json"
MULTIPART = "multipart/form-data"
USER_AGENT = "Kestra"
DEFAULT_CONNECT_TIMEOUT = 180.0  # Apache HttpClient's default, which Kestra keeps when none is set
DEFAULT_READ_IDLE_TIMEOUT = "PT5M"
STOP_POLL_SECONDS = 0.05
ERROR_BODY_CHARS = 1_000
CHUNK = 64 * 1024

PROPERTIES: dict[str, Prop | str] = {
    "uri": Prop("The fully-qualified URI that points to the HTTP destination.", type="string", required=True),
    "method": Prop("The HTTP method to use.", type="string", default="GET"),
    "headers": Prop("The headers to pass to the request (name → value).", type="object"),
    "body": Prop("The full body as a string."),
    "formData": Prop(
        "The form data to send: url-encoded, or multipart when `contentType` is `multipart/form-data`.", "object"
    ),
    "contentType": Prop("The request content type.", type="string", default=DEFAULT_CONTENT_TYPE),
    "options": Prop(
        "The HTTP request options: timeout, auth, proxy, ssl, followRedirects, allowFailed, logs ….",
        type="object",
        dynamic=False,
    ),
    "sslOptions": Prop("Deprecated, use `options.ssl`: `insecureTrustAllCertificates`.", type="object", dynamic=False),
    "allowFailed": Prop(
        "Deprecated, use `options.allowFailed`: if true, allow a response code >= 400.", type="boolean", default=False
    ),
}
TIMEOUT_KEYS = frozenset({"connectTimeout", "readIdleTimeout"})
PROXY_KEYS = frozenset({"type", "address", "port", "username", "password"})
AUTH_KEYS = {
    "BASIC": frozenset({"type", "username", "password"}),
    "BEARER": frozenset({"type", "token"}),
    "DIGEST": frozenset({"type", "username", "password"}),
}
SSL_KEYS = frozenset({"insecureTrustAllCertificates"})
LOG_TYPES = ("REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY")
# The deprecated `options.logLevel` → the logs it turns on (Kestra's HttpConfiguration).
LOG_LEVEL_LOGS = {"TRACE": LOG_TYPES, "DEBUG": ("REQUEST_HEADERS", "RESPONSE_HEADERS"), "INFO": ("RESPONSE_HEADERS",)}
OPTION_KEYS = frozenset(
    {
        "timeout",
        "proxy",
        "auth",
        "ssl",
        "followRedirects",
        "allowFailed",
        "allowedResponseCodes",
        "defaultCharset",
        "logs",
        # deprecated flat keys, mapped onto the ones above
        "connectTimeout",
        "readTimeout",
        "proxyType",
        "proxyAddress",
        "proxyPort",
        "proxyUsername",
        "proxyPassword",
        "basicAuthUser",
        "basicAuthPassword",
        "logLevel",
        # deprecated, silently ignored by Kestra
        "readIdleTimeout",
        "connectionPoolIdleTimeout",
        "maxContentLength",
    }
)
FLAT_PROXY = {"proxyType": "type", "proxyAddress": "address", "proxyPort": "port"}
FLAT_PROXY |= {"proxyUsername": "username", "proxyPassword": "password"}
ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


# ------------------------------------------------------------------------------------------------ deploy checks


def request_problems(spec: Mapping[str, Any]) -> list[str]:
    """`field: reason` inside the request's maps (`options`, `sslOptions`), shared by the tasks and the trigger;
    the declarations check the rest."""
    options, ssl = spec.get("options"), spec.get("sslOptions")
    problems = _option_problems(options, "options") if isinstance(options, Mapping) else []
    return problems + (_keys_problems(ssl, SSL_KEYS, "sslOptions") if isinstance(ssl, Mapping) else [])


def _option_problems(options: Mapping[str, Any], path: str) -> list[str]:
    """The parts of `options` are objects in Kestra, not expressions: each must be a map of known keys."""
    problems = _keys_problems(options, OPTION_KEYS, path)
    if problems:
        return problems
    problems += _keys_problems(options.get("timeout"), TIMEOUT_KEYS, f"{path}.timeout")
    problems += _keys_problems(options.get("proxy"), PROXY_KEYS, f"{path}.proxy")
    problems += _keys_problems(options.get("ssl"), SSL_KEYS, f"{path}.ssl")
    problems += _auth_problems(options.get("auth"), f"{path}.auth")
    return problems or _value_problems(options, path)


def _value_problems(options: Mapping[str, Any], path: str) -> list[str]:
    """Durations, logs and response codes that can be checked before the run (no `{{` in them)."""
    durations = [(f"{path}.{k}", options.get(k)) for k in ("connectTimeout", "readTimeout")]
    durations += [(f"{path}.timeout.{k}", v) for k, v in (options.get("timeout") or {}).items()]
    problems = [f"{where}: `{v}` is not an ISO-8601 duration (e.g. PT30S)" for where, v in durations if _bad(v)]
    problems += _logs_problems(options, path)
    codes = options.get("allowedResponseCodes")
    if codes is not None and not _dynamic(codes) and not _int_list(codes):
        problems.append(f"{path}.allowedResponseCodes: must be a list of status codes")
    return problems


def _keys_problems(value: Any, known: frozenset[str], path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{path}: must be a map"]
    return [f"{path}: {unrecognized(str(key), path)}" for key in value if key not in known]


def _auth_problems(auth: Any, path: str) -> list[str]:
    if auth is None:
        return []
    if not isinstance(auth, Mapping) or str(auth.get("type", "")).upper() not in AUTH_KEYS:
        return [f"{path}: must be a map with type BASIC, BEARER or DIGEST"]
    return _keys_problems(auth, AUTH_KEYS[str(auth["type"]).upper()], path)


def _logs_problems(options: Mapping[str, Any], path: str) -> list[str]:
    logs, level = options.get("logs"), options.get("logLevel")
    problems = []
    if logs is not None and not _dynamic(logs):
        if not isinstance(logs, list) or any(str(item) not in LOG_TYPES for item in logs):
            problems.append(f"{path}.logs: must be a list of {', '.join(LOG_TYPES)}")
    levels = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF")
    if level is not None and str(level).upper() not in levels:
        problems.append(f"{path}.logLevel: must be one of {', '.join(levels)}")
    return problems


def _dynamic(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _bad(duration: Any) -> bool:
    return duration is not None and not _dynamic(duration) and not is_duration(duration)


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) or (_dynamic(i) or str(i).isdigit()) for i in value)


# ------------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    """`options` rendered and resolved: the deprecated spellings mapped onto the current ones."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = 300.0
    follow_redirects: bool = True
    allow_failed: bool = False
    allowed_codes: tuple[int, ...] = ()
    charset: str = "UTF-8"
    logs: frozenset[str] = frozenset()
    auth: dict[str, Any] = field(default_factory=dict)
    proxy: dict[str, Any] = field(default_factory=dict)
    verify: bool = True

    def allows(self, code: int) -> bool:
        """Kestra's `isAllowedStatusCode`: the allowed list when given, else `allowFailed`, else < 400."""
        if self.allowed_codes:
            return code in self.allowed_codes
        return self.allow_failed or code < 400


def resolve_options(spec: Mapping[str, Any], render: Render) -> Options:
    raw = render(spec.get("options") or {})
    if not isinstance(raw, Mapping):
        raise TaskError("options: must be a map")
    timeout = {"readIdleTimeout": raw.get("readTimeout"), "connectTimeout": raw.get("connectTimeout")}
    timeout |= {k: v for k, v in (raw.get("timeout") or {}).items() if v is not None}
    ssl = raw.get("ssl") or render(spec.get("sslOptions")) or {}
    allow_failed = raw.get("allowFailed", render(spec.get("allowFailed")))
    return Options(
        connect_timeout=_seconds(timeout["connectTimeout"], "connectTimeout") or DEFAULT_CONNECT_TIMEOUT,
        read_timeout=_seconds(timeout["readIdleTimeout"] or DEFAULT_READ_IDLE_TIMEOUT, "readIdleTimeout") or 0.0,
        follow_redirects=_flag(raw.get("followRedirects"), True),
        allow_failed=_flag(allow_failed, False),
        allowed_codes=tuple(_code(c) for c in raw.get("allowedResponseCodes") or ()),
        charset=str(raw.get("defaultCharset") or "UTF-8"),
        logs=_logs(raw),
        auth=_auth(raw),
        proxy=_proxy(raw),
        verify=not _flag(ssl.get("insecureTrustAllCertificates") if isinstance(ssl, Mapping) else None, False),
    )


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise TaskError(f"options.timeout.{name}: {exc}") from None


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TaskError(f"options.allowedResponseCodes: `{value}` is not a status code") from None


def _logs(raw: Mapping[str, Any]) -> frozenset[str]:
    if raw.get("logs"):
        return frozenset(str(item).upper() for item in raw["logs"])
    return frozenset(LOG_LEVEL_LOGS.get(str(raw.get("logLevel") or "").upper(), ()))


def _auth(raw: Mapping[str, Any]) -> dict[str, Any]:
    if raw.get("auth"):
        return dict(raw["auth"])
    if raw.get("basicAuthUser") is not None:
        return {"type": "BASIC", "username": raw["basicAuthUser"], "password": raw.get("basicAuthPassword")}
    return {}


def _proxy(raw: Mapping[str, Any]) -> dict[str, Any]:
    flat = {new: raw[old] for old, new in FLAT_PROXY.items() if raw.get(old) is not None}
    return {**flat, **(raw.get("proxy") or {})}


# ------------------------------------------------------------------------------------------------ the request


@dataclass
class Outgoing:
    """The rendered request, ready for httpx."""

    method: str
    uri: str
    headers: list[tuple[str, str]]
    content: bytes | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, Path]]] = field(default_factory=list)


def build_request(spec: Mapping[str, Any], render: Render, storage: Storage, options: Options) -> Outgoing:
    """Kestra's `AbstractHttp.request`: the body (form, multipart or text) and the headers."""
    uri = str(render(spec["uri"])).replace(" ", "%20")
    method = str(render(spec.get("method") or "GET")).upper()
    content_type = str(render(spec.get("contentType") or DEFAULT_CONTENT_TYPE))
    out = Outgoing(method, uri, [])
    form = render(spec.get("formData"))
    if form:
        if not isinstance(form, Mapping):
            raise TaskError("formData: must be a map")
        _add_form(out, form, content_type, storage, options.charset)
    elif spec.get("body") is not None:
        out.content = _encode(to_text(render(spec["body"])), options.charset)
        out.headers.append(("Content-Type", _with_charset(content_type, options.charset)))
    else:
        out.headers.append(("Content-Type", content_type))
    headers = render(spec.get("headers")) or {}
    if not isinstance(headers, Mapping):
        raise TaskError("headers: must be a map of header name to value")
    user = {str(k): to_text(v) for k, v in headers.items()}
    out.headers = [(k, v) for k, v in out.headers if k.lower() not in {u.lower() for u in user}] + list(user.items())
    return out


def _add_form(out: Outgoing, form: Mapping[str, Any], content_type: str, storage: Storage, charset: str) -> None:
    if content_type.split(";")[0].strip().lower() != MULTIPART:
        pairs = [(str(k), to_text(v)) for k, v in form.items()]
        out.content = urllib.parse.urlencode(pairs, encoding=charset).encode("ascii")
        out.headers.append(("Content-Type", _with_charset("application/x-www-form-urlencoded", charset)))
        return
    out.data = {}
    for key, value in form.items():
        if isinstance(value, str) and value.startswith(SCHEME):
            out.files.append((str(key), (_file_name(value), _stored(storage, value))))
        elif isinstance(value, Mapping) and "name" in value and "content" in value:
            out.files.append((str(key), (str(value["name"]), _stored(storage, str(value["content"])))))
        else:
            out.data[str(key)] = to_text(value)


def _stored(storage: Storage, uri: str) -> Path:
    try:
        path = storage.local_copy(uri)
    except KestraError as exc:
        raise TaskError(exc.message) from None
    if not path.is_file():
        raise TaskError(f"formData: file not found in internal storage: {uri}")
    return path


def _file_name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _with_charset(content_type: str, charset: str) -> str:
    return content_type if "charset=" in content_type.lower() else f"{content_type}; charset={charset}"


def _encode(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset)
    except LookupError:
        raise TaskError(f"options.defaultCharset: unknown charset `{charset}`") from None


# ------------------------------------------------------------------------------------------------ the exchange


@dataclass
class Exchange:
    """What came back: Kestra's `code`, `headers` (name → list) and the request's `uri`."""

    uri: str
    code: int
    headers: dict[str, list[str]]
    body: bytes = b""
    length: int = 0

    def outputs(self) -> dict[str, Any]:
        return {"uri": self.uri, "code": self.code, "headers": self.headers}


Consume = Callable[["httpx.Response", threading.Event], Exchange]


def send(out: Outgoing, options: Options, log: Log, stop: threading.Event, consume: Consume) -> Exchange:
    """Send on a thread of its own and wait for it, or for `stop` (a kill or the task's timeout)."""
    done = threading.Event()
    result: list[Exchange | BaseException] = []

    def work() -> None:
        try:
            result.append(_exchange(out, options, log, stop, consume))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            result.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name="http", daemon=True).start()
    while not done.wait(STOP_POLL_SECONDS):
        if stop.is_set():
            raise Killed()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _exchange(out: Outgoing, options: Options, log: Log, stop: threading.Event, consume: Consume) -> Exchange:
    import httpx

    try:
        with _client(options) as client, _opened(out.files) as files:
            headers = [(name.encode(), value.encode()) for name, value in out.headers]  # UTF-8, not only ASCII
            request = client.build_request(
                out.method, out.uri, headers=headers, content=out.content, data=out.data, files=files or None
            )
            _log_request(request, out, options, log)
            response = client.send(request, stream=True)
            try:
                _log_response(response, options, log)
                if not options.allows(response.status_code):
                    raise TaskError(_failure(response))
                return consume(response, stop)
            finally:
                response.close()
    except httpx.TimeoutException as exc:
        raise TaskError(f"{_what(exc)} after {_limit(exc, options)}: {out.method} {out.uri}") from None
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise TaskError(f"{out.method} {out.uri} failed: {_reason(exc)}") from None


def _client(options: Options) -> httpx.Client:
    import httpx

    headers = {"User-Agent": USER_AGENT}
    auth = _httpx_auth(options.auth)
    if str(options.auth.get("type", "")).upper() == "BEARER":
        headers["Authorization"] = f"Bearer {to_text(options.auth.get('token'))}"
    return httpx.Client(
        timeout=httpx.Timeout(options.read_timeout or None, connect=options.connect_timeout),
        follow_redirects=options.follow_redirects,
        verify=options.verify,
        auth=auth,
        proxy=_proxy_url(options.proxy),
        headers=headers,
        trust_env=False,
    )


def _httpx_auth(auth: Mapping[str, Any]) -> httpx.Auth | None:
    """BASIC (sent with the first request, as Kestra does) or DIGEST; BEARER is a header (see `_client`)."""
    import httpx

    kind = str(auth.get("type", "")).upper()
    if kind in ("BASIC", "DIGEST"):
        user, password = to_text(auth.get("username")), to_text(auth.get("password"))
        return httpx.BasicAuth(user, password) if kind == "BASIC" else httpx.DigestAuth(user, password)
    if auth and kind != "BEARER":
        raise TaskError(f"options.auth.type: must be BASIC, BEARER or DIGEST, not `{auth.get('type')}`")
    return None


def _proxy_url(proxy: Mapping[str, Any]) -> str | None:
    kind = str(proxy.get("type") or "HTTP").upper()
    if not proxy.get("address") or kind == "DIRECT":
        return None
    if kind != "HTTP":
        raise TaskError(f"options.proxy.type: {kind} proxies are not supported here (use HTTP)")
    user = proxy.get("username")
    credentials = f"{urllib.parse.quote(str(user))}:{urllib.parse.quote(str(proxy.get('password') or ''))}@"
    return f"http://{credentials if user else ''}{proxy['address']}:{proxy.get('port') or 80}"


@contextlib.contextmanager
def _opened(files: list[tuple[str, tuple[str, Path]]]) -> Iterator[list[tuple[str, Any]]]:
    with contextlib.ExitStack() as stack:
        yield [
            (key, (name, stack.enter_context(path.open("rb")), "application/octet-stream"))
            for key, (name, path) in files
        ]


def _failure(response: httpx.Response) -> str:
    """Kestra's `Failed http request with response code '404' and body: …`, on one line, cut short."""
    body = response.read().decode("utf-8", errors="replace").strip()
    message = f"Failed http request with response code '{response.status_code}'"
    if body:
        flat = " ".join(body.split())
        message += f" and body: {flat[:ERROR_BODY_CHARS]}{' …' if len(flat) > ERROR_BODY_CHARS else ''}"
    return message


def _what(exc: httpx.TimeoutException) -> str:
    import httpx

    return "Connection timed out" if isinstance(exc, httpx.ConnectTimeout) else "Read timed out"


def _limit(exc: httpx.TimeoutException, options: Options) -> str:
    import httpx

    from kestractl.model import iso_duration

    connect = isinstance(exc, httpx.ConnectTimeout)
    seconds = options.connect_timeout if connect else options.read_timeout
    return f"{iso_duration(timedelta(seconds=seconds))} ({'connectTimeout' if connect else 'readIdleTimeout'})"


def _reason(exc: BaseException) -> str:
    """The innermost cause, without Python's `[Errno 111]` prefix."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = ERRNO_PREFIX.sub("", str(exc)) or type(exc).__name__
    return text[0].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Name → values, names as the server wrote them (the first spelling wins, as in Java's HttpHeaders)."""
    headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        headers.setdefault(names.setdefault(name.lower(), name), []).append(raw_value.decode("latin-1"))
    return headers


def _log_request(request: httpx.Request, out: Outgoing, options: Options, log: Log) -> None:
    if "REQUEST_HEADERS" in options.logs:
        log("INFO", f"Request '{request.method} {request.url}' headers: {_header_text(request.headers.raw)}")
    if "REQUEST_BODY" in options.logs and out.content is not None:
        log("INFO", f"Request '{request.method} {request.url}' body: {out.content.decode('utf-8', 'replace')}")


def _log_response(response: httpx.Response, options: Options, log: Log) -> None:
    if "RESPONSE_HEADERS" in options.logs:
        log("INFO", f"Response {response.status_code} headers: {_header_text(response.headers.raw)}")
    if "RESPONSE_BODY" in options.logs:
        log("INFO", f"Response {response.status_code} body: {response.read().decode('utf-8', 'replace')}")


def _header_text(raw: list[tuple[bytes, bytes]]) -> str:
    return ", ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in raw)


# ------------------------------------------------------------------------------------------------ Request


def read_body(response: httpx.Response, stop: threading.Event) -> Exchange:
    """The whole body in memory (Request): Kestra keeps it as the `body` output."""
    chunks = []
    for chunk in response.iter_bytes(CHUNK):
        if stop.is_set():
            raise Killed()
        chunks.append(chunk)
    body = b"".join(chunks)
    return Exchange(str(response.request.url), response.status_code, response_headers(response), body, len(body))


def request_outputs(
    spec: Mapping[str, Any], render: Render, storage: Storage, log: Log, stop: threading.Event
) -> dict[str, Any]:
    """Run a `Request` and give its outputs; also what the polling Trigger runs, with failures allowed."""
    options = resolve_options(spec, render)
    out = build_request(spec, render, storage, options)
    exchange = send(out, options, log, stop, read_body)
    outputs = {**exchange.outputs(), "uri": out.uri}
    if exchange.body:
        outputs["body"] = exchange.body.decode("utf-8", errors="replace")
    return outputs


def refuse_encryption(encrypt_body: Any) -> None:
    """`encryptBody: true` needs Kestra's `kestra.encryption.secret-key`, which kestractl does not have."""
    if _flag(encrypt_body, False):
        raise TaskError("encryptBody: kestractl has no encryption key configured (kestra.encryption.secret-key)")


class _Http(RunnableTask):
    """What Request and Download share (Kestra's `AbstractHttp`)."""

    properties: ClassVar[dict[str, Prop | str]] = PROPERTIES

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        return super().validate(spec) + request_problems(spec)


@register
class Request(_Http):
    """Make an HTTP request and keep the response (code, headers, body as text) as outputs."""

    type_name = "io.kestra.plugin.core.http.Request"
    aliases = ("io.kestra.plugin.fs.http.Request",)
    properties: ClassVar[dict[str, Prop | str]] = {
        "encryptBody": Prop(
            "If true, the body is encrypted in the `encryptedBody` output (needs an encryption key).",
            type="boolean",
            default=False,
        ),
    }
    outputs = {
        "uri": "The request's URI.",
        "code": "The status code.",
        "headers": "The response headers: name → list of values.",
        "body": "The response body as text (absent when empty).",
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        refuse_encryption(ctx.render(self.spec.get("encryptBody")))
        outputs = request_outputs(self.spec, ctx.render, ctx.storage, ctx.log, ctx.stop)
        ctx.metric("response.length", "counter", len(outputs.get("body", "").encode()))
        return outputs


# ------------------------------------------------------------------------------------------------ Download


@register
class Download(_Http):
    """Download a file from an HTTP server into internal storage."""

    type_name = "io.kestra.plugin.core.http.Download"
    aliases = ("io.kestra.plugin.fs.http.Download",)
    properties: ClassVar[dict[str, Prop | str]] = {
        "failOnEmptyResponse": Prop("Fail the task when the response is empty.", type="boolean", default=True),
    }
    outputs = {
        "uri": "The downloaded file (a `kestra://` internal storage URI).",
        "code": "The status code.",
        "length": "The file's size in bytes.",
        "headers": "The response headers: name → list of values.",
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        options = resolve_options(self.spec, ctx.render)
        out = build_request(self.spec, ctx.render, ctx.storage, options)
        exchange = send(out, options, ctx.log, ctx.stop, lambda response, stop: self._store(ctx, response, stop))
        if exchange.length == 0:
            if ctx.prop("failOnEmptyResponse") and not options.allow_failed:
                raise TaskError(
                    f"No response from server: {out.method} {out.uri} answered {exchange.code} with no body"
                )
            ctx.log("WARN", f"File '{out.uri}' is empty")
        ctx.metric("response.length", "counter", exchange.length)
        return {**exchange.outputs(), "uri": exchange.uri, "length": exchange.length}

    def _store(self, ctx: RunContext, response: httpx.Response, stop: threading.Event) -> Exchange:
        """Stream the body straight into internal storage under the Content-Disposition name."""
        headers = response_headers(response)
        name = disposition_filename(response.headers.get("Content-Disposition")) or _uri_name(response)
        path, uri = ctx.output_file(name)
        size = 0
        with path.open("wb") as target:
            for chunk in response.iter_bytes(CHUNK):
                if stop.is_set():
                    raise Killed()
                size += target.write(chunk)
        expected = response.headers.get("Content-Length")
        if expected and expected.isdigit() and "Content-Encoding" not in response.headers and int(expected) != size:
            raise TaskError(f"Invalid size, got {size}, expected {expected}")
        return Exchange(uri, response.status_code, headers, length=size)


def disposition_filename(header: str | None) -> str | None:
    """The file name of a `Content-Disposition` header (`filename*=UTF-8''…` wins), without any folder."""
    if not header:
        return None
    name = None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "filename" and name is None:
            name = value.strip().strip('"')
        elif key.strip().lower() == "filename*":
            name = urllib.parse.unquote(value.strip().strip('"').split("'", 2)[-1])
    return _safe_name(name.replace("\\", "/").rsplit("/", 1)[-1]) if name else None


def _uri_name(response: httpx.Response) -> str:
    """The last segment of the requested URI's path, else `download`."""
    return _safe_name(urllib.parse.unquote(response.request.url.path.rstrip("/").rsplit("/", 1)[-1])) or "download"


def _safe_name(name: str) -> str | None:
    """URL-encoded as Kestra's `URLEncoder` does (`a b.csv` → `a+b.csv`), so it is one plain file name."""
    return urllib.parse.quote_plus(name, safe="*") if name not in ("", ".", "..") else None
