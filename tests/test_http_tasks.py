"""Request, Download and the polling HTTP trigger against a real HTTP server on 127.0.0.1 (an OS-assigned
port), run through the real CLI and a real `server standalone`; the server checks what it received."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import FLOWS, Cli, executions_of, runs, state, wait_for

from kestractl.server.app import StandaloneServer

CSV = b"id,name\n1,ada\n2,linus\n"


class Upstream(ThreadingHTTPServer):
    """The far end: answers by path and keeps every request it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict[str, Any]] = []
        self.ready = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"] == path]


class Handler(BaseHTTPRequestHandler):
    server: Upstream

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        self.server.received.append({"method": self.command, "path": path, "headers": self.headers, "body": body})
        route = ROUTES.get(path)
        if route is None:
            self._send(404, b"no such thing", [("Content-Type", "text/plain")])
        else:
            route(self, body)

    def _send(self, code: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(code)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, code: int = 200) -> None:
        self._send(code, json.dumps(value).encode(), [("Content-Type", "application/json")])


def _json(handler: Handler, body: bytes) -> None:
    handler._send(
        200,
        b'{"hello": "world", "items": [1, 2]}',
        [("Content-Type", "application/json"), ("X-Multi", "one"), ("X-Multi", "two")],
    )


def _echo(handler: Handler, body: bytes) -> None:
    """What the request carried: method, content type, body text, form fields or multipart parts."""
    content_type = handler.headers.get("Content-Type", "")
    seen: dict[str, Any] = {"method": handler.command, "contentType": content_type, "body": body.decode()}
    if content_type.startswith("application/x-www-form-urlencoded"):
        seen["form"] = parse_qs(body.decode())
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        seen["parts"] = {
            part.get_param("name", header="content-disposition"): {
                "filename": part.get_filename(),
                "content": bytes(part.get_payload(decode=True)).decode(),
            }
            for part in message.iter_parts()
        }
    handler._json(seen)


def _redirect(handler: Handler, body: bytes) -> None:
    handler._send(302, b"", [("Location", "/json")])


def _slow(handler: Handler, body: bytes) -> None:
    time.sleep(3)
    handler._send(200, b"late")


def _basic(handler: Handler, body: bytes) -> None:
    expected = "Basic " + base64.b64encode(b"ada:s3cret").decode()
    ok = handler.headers.get("Authorization") == expected
    handler._send(200 if ok else 401, b"welcome" if ok else b"who are you?")


def _bearer(handler: Handler, body: bytes) -> None:
    ok = handler.headers.get("Authorization") == "Bearer tok-42"
    handler._send(200 if ok else 401, b"token ok" if ok else b"bad token")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest(handler: Handler, body: bytes) -> None:
    """RFC 7616 digest (MD5, qop=auth) for ada / s3cret: a challenge first, then the check."""
    header = handler.headers.get("Authorization", "")
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', header.removeprefix("Digest ")))
    ha1, ha2 = _md5("ada:lab:s3cret"), _md5(f"{handler.command}:{params.get('uri')}")
    expected = _md5(f"{ha1}:n0nce:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}")
    if header.startswith("Digest ") and params.get("response") == expected:
        handler._send(200, b"digest ok")
    else:
        handler._send(401, b"", [("WWW-Authenticate", 'Digest realm="lab", nonce="n0nce", qop="auth", algorithm=MD5')])


def _report(handler: Handler, body: bytes) -> None:
    disposition = "attachment; filename=\"ignored.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.csv"
    handler._send(200, CSV, [("Content-Type", "text/csv"), ("Content-Disposition", disposition)])


def _plain(handler: Handler, body: bytes) -> None:
    handler._send(200, CSV, [("Content-Type", "text/csv")])


def _empty(handler: Handler, body: bytes) -> None:
    handler._send(200, b"")


def _ready(handler: Handler, body: bytes) -> None:
    if handler.server.ready:
        handler._send(200, b'{"status": "go"}', [("Content-Type", "application/json"), ("X-Batch", "7")])
    else:
        handler._send(503, b"not yet")


ROUTES = {
    "/json": _json,
    "/echo": _echo,
    "/redirect": _redirect,
    "/slow": _slow,
    "/basic": _basic,
    "/bearer": _bearer,
    "/digest": _digest,
    "/reports/latest": _report,
    "/data/orders.csv": _plain,
    "/empty": _empty,
    "/ready": _ready,
}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _flow(tmp_path: Path, tasks: str, inputs: str = "") -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(f"id: web\nnamespace: tests.http\n{inputs}tasks:\n{textwrap.indent(textwrap.dedent(tasks), '  ')}")
    return path


def _run(cli: Cli, tmp_path: Path, tasks: str, *args: str, inputs: str = "") -> tuple[dict[str, Any], str]:
    """Deploy and execute the flow; (the execution, its logs)."""
    deployed = cli("flow", "deploy", str(_flow(tmp_path, tasks, inputs)))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    result = cli("execute", "tests.http", "web", "--json", *args)
    return json.loads(result.stdout), result.stderr


def _outputs(execution: dict[str, Any], task_id: str = "http") -> dict[str, Any]:
    return dict(runs(execution, task_id)[0]["outputs"])


def _errors(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if " ERROR " in line]


# ------------------------------------------------------------------------------------------------ Request


def test_get_json_gives_code_headers_as_lists_and_the_body_as_text(
    cli: Cli, tmp_path: Path, upstream: Upstream
) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: "{upstream.url}/json?q={{{{ 'a b' }}}}"
        - id: use
          type: io.kestra.plugin.core.debug.Return
          format: "{{{{ outputs.http.body | jq('.items[1]') | first }}}} {{{{ fromJson(outputs.http.body).hello }}}}"
        """,
    )
    assert state(execution) == "SUCCESS"
    out = _outputs(execution)
    assert out["code"] == 200 and out["uri"] == f"{upstream.url}/json?q=a%20b"
    assert out["body"] == '{"hello": "world", "items": [1, 2]}'
    assert out["headers"]["X-Multi"] == ["one", "two"] and out["headers"]["Content-Type"] == ["application/json"]
    assert _outputs(execution, "use")["value"] == "2 world"
    got = upstream.hits("/json")[0]
    assert got["method"] == "GET" and got["headers"]["User-Agent"] == "Kestra"
    assert got["headers"]["Content-Type"] == "application/json"  # Kestra sends the default content type


def test_post_json_body_with_rendered_headers(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.fs.http.Request
          uri: {upstream.url}/echo
          method: POST
          headers:
            X-Team: "{{{{ flow.namespace }}}}"
          body: |
            {{{{ {{"title": "Kestra Pen", "price": 12}} }}}}
        """,
    )
    assert state(execution) == "SUCCESS"
    seen = json.loads(_outputs(execution)["body"])
    assert seen["method"] == "POST" and seen["contentType"] == "application/json; charset=UTF-8"
    assert json.loads(seen["body"]) == {"title": "Kestra Pen", "price": 12}
    assert upstream.hits("/echo")[0]["headers"]["X-Team"] == "tests.http"


def test_form_data_is_url_encoded(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/echo
          method: POST
          formData:
            user: "ada lovelace"
            age: 36
            ok: true
        """,
    )
    seen = json.loads(_outputs(execution)["body"])
    assert seen["contentType"] == "application/x-www-form-urlencoded; charset=UTF-8"
    assert seen["form"] == {"user": ["ada lovelace"], "age": ["36"], "ok": ["true"]}


def test_multipart_uploads_kestra_files_named_parts_and_text(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    upload = tmp_path / "notes.txt"
    upload.write_text("file body\n")
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/echo
          method: POST
          contentType: multipart/form-data
          formData:
            plain: "{{{{ inputs.doc }}}}"
            named:
              name: renamed.txt
              content: "{{{{ inputs.doc }}}}"
            user: John Doe
            meta:
              tags: [a, b]
        """,
        "--input",
        f"doc={upload}",
        inputs="inputs:\n  - id: doc\n    type: FILE\n",
    )
    assert state(execution) == "SUCCESS", logs
    seen = json.loads(_outputs(execution)["body"])
    assert seen["contentType"].startswith("multipart/form-data; boundary=")
    parts = seen["parts"]
    assert parts["plain"] == {"filename": "notes.txt", "content": "file body\n"}
    assert parts["named"] == {"filename": "renamed.txt", "content": "file body\n"}
    assert parts["user"] == {"filename": None, "content": "John Doe"}
    assert json.loads(parts["meta"]["content"]) == {"tags": ["a", "b"]}


def test_redirects_are_followed_unless_told_not_to(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/redirect
        - id: stay
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/redirect
          options:
            followRedirects: false
        """,
    )
    followed = _outputs(execution)
    assert followed["code"] == 200 and followed["body"].startswith('{"hello"')
    assert followed["uri"] == f"{upstream.url}/redirect"  # Kestra's output is the request's URI
    stayed = _outputs(execution, "stay")
    assert stayed["code"] == 302 and stayed["headers"]["Location"] == ["/json"] and "body" not in stayed


def test_a_404_fails_the_task_with_kestras_message(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/nowhere
        """,
    )
    assert state(execution) == "FAILED"
    assert _errors(logs) == [
        _errors(logs)[0].split(" ERROR ")[0]
        + " ERROR http Failed http request with response code '404' and body: no such thing"
    ]


def test_a_404_is_an_output_when_failures_are_allowed(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/nowhere
          options:
            allowFailed: true
        - id: legacy
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/nowhere
          allowFailed: true
        - id: listed
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/nowhere
          options:
            allowedResponseCodes: [404]
        """,
    )
    assert state(execution) == "SUCCESS"
    for task_id in ("http", "legacy", "listed"):
        out = _outputs(execution, task_id)
        assert (out["code"], out["body"]) == (404, "no such thing")


def test_allowed_response_codes_refuse_every_other_code(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/json
          options:
            allowedResponseCodes: [201]
        """,
    )
    assert state(execution) == "FAILED" and "response code '200'" in logs


def test_a_read_timeout_is_one_error_line(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    started = time.monotonic()
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/slow
          options:
            timeout:
              readIdleTimeout: PT0.5S
        """,
    )
    assert state(execution) == "FAILED" and time.monotonic() - started < 2.5
    assert [line.split(" ERROR ")[1] for line in _errors(logs)] == [
        f"http Read timed out after PT0.5S (readIdleTimeout): GET {upstream.url}/slow"
    ]


def test_the_task_timeout_stops_a_request_that_hangs(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    started = time.monotonic()
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/slow
          timeout: PT0.5S
        """,
    )
    assert state(execution) == "FAILED" and "Timeout after PT0.5S" in logs
    assert time.monotonic() - started < 2.5


def test_a_refused_connection_is_one_error_line(cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: http://127.0.0.1:{port}/json
        """,
    )
    assert state(execution) == "FAILED"
    assert [line.split(" ERROR ")[1] for line in _errors(logs)] == [
        f"http GET http://127.0.0.1:{port}/json failed: connection refused"
    ]
    assert "Traceback" not in logs


def test_basic_bearer_and_the_deprecated_basic_auth_keys(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/basic
          options:
            auth:
              type: BASIC
              username: ada
              password: "{{{{ 's3' ~ 'cret' }}}}"
        - id: bearer
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/bearer
          options:
            auth: {{type: BEARER, token: tok-42}}
        - id: legacy
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/basic
          options:
            basicAuthUser: ada
            basicAuthPassword: s3cret
        - id: digest
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/digest
          options:
            auth: {{type: DIGEST, username: ada, password: s3cret}}
        - id: wrong
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/bearer
          options:
            auth: {{type: BEARER, token: nope}}
        """,
    )
    bodies = [_outputs(execution, t)["body"] for t in ("http", "bearer", "legacy", "digest")]
    assert bodies == ["welcome", "token ok", "welcome", "digest ok"]
    assert "response code '401' and body: bad token" in logs


def test_request_and_response_logs(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/echo
          method: PUT
          body: ping
          contentType: text/plain
          options:
            logs: [REQUEST_BODY, RESPONSE_HEADERS]
        - id: legacy
          type: io.kestra.plugin.core.http.Request
          uri: {upstream.url}/json
          options:
            logLevel: INFO
        """,
    )
    assert state(execution) == "SUCCESS"
    assert re.search(r"INFO +legacy Response 200 headers: .*X-Multi: one, X-Multi: two", logs)
    assert f"Request 'PUT {upstream.url}/echo' body: ping" in logs
    assert "Response 200 headers: " in logs and "Content-Type: application/json" in logs


def test_a_proxy_receives_the_absolute_uri(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: http://example.invalid/json
          options:
            proxy:
              address: 127.0.0.1
              port: {upstream.server_address[1]}
        """,
    )
    assert state(execution) == "SUCCESS"  # the proxy (our server) answered for example.invalid
    assert upstream.hits("/json")[0]["headers"]["Host"] == "example.invalid"


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[Upstream]:
    """The same server behind TLS with a self-signed certificate."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = Upstream()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_self_signed_certificate_is_refused_unless_trusted(cli: Cli, tmp_path: Path, tls_upstream: Upstream) -> None:
    url = tls_upstream.url.replace("http://", "https://")
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: trusted
          type: io.kestra.plugin.core.http.Request
          uri: {url}/json
          options:
            ssl:
              insecureTrustAllCertificates: true
        - id: legacy
          type: io.kestra.plugin.core.http.Request
          uri: {url}/json
          sslOptions:
            insecureTrustAllCertificates: true
        - id: http
          type: io.kestra.plugin.core.http.Request
          uri: {url}/json
        """,
    )
    assert [_outputs(execution, t)["code"] for t in ("trusted", "legacy")] == [200, 200]
    assert state(execution) == "FAILED"
    (line,) = _errors(logs)
    assert f"http GET {url}/json failed: " in line and "certificate verify failed" in line


# ------------------------------------------------------------------------------------------------ Download


def test_download_stores_the_file_under_its_content_disposition_name(
    cli: Cli, tmp_path: Path, upstream: Upstream
) -> None:
    execution, _ = _run(
        cli,
        tmp_path,
        f"""
        - id: http
          type: io.kestra.plugin.core.http.Download
          uri: {upstream.url}/reports/latest
        - id: plain
          type: io.kestra.plugin.fs.http.Download
          uri: {upstream.url}/data/orders.csv
        - id: count
          type: io.kestra.plugin.core.debug.Return
          format: "{{{{ read(outputs.plain.uri) | length }}}}"
        """,
    )
    assert state(execution) == "SUCCESS"
    out = _outputs(execution)
    assert out["uri"].startswith("kestra:///tests/http/web/executions/")
    assert out["uri"].endswith("/r%C3%A9sum%C3%A9+final.csv")
    assert (out["code"], out["length"], out["headers"]["Content-Type"]) == (200, len(CSV), ["text/csv"])
    stored = cli("executions", "file", execution["id"], out["uri"])
    assert stored.stdout_bytes == CSV
    assert _outputs(execution, "plain")["uri"].endswith("/orders.csv")
    assert _outputs(execution, "count")["value"] == str(len(CSV))


def test_an_empty_download_fails_unless_told_otherwise(cli: Cli, tmp_path: Path, upstream: Upstream) -> None:
    execution, logs = _run(
        cli,
        tmp_path,
        f"""
        - id: lenient
          type: io.kestra.plugin.core.http.Download
          uri: {upstream.url}/empty
          failOnEmptyResponse: false
        - id: http
          type: io.kestra.plugin.core.http.Download
          uri: {upstream.url}/empty
        """,
    )
    assert state(execution) == "FAILED"
    assert _outputs(execution, "lenient")["length"] == 0 and f"File '{upstream.url}/empty' is empty" in logs
    assert "No response from server" in logs


# ------------------------------------------------------------------------------------------------ validation


def test_unknown_or_malformed_options_are_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    path = _flow(
        tmp_path,
        """
        - id: http
          type: io.kestra.plugin.core.http.Request
          options:
            retries: 3
        - id: auth
          type: io.kestra.plugin.core.http.Download
          uri: http://127.0.0.1/x
          options:
            timeout: {readIdleTimeout: soon}
            logs: [EVERYTHING]
        - id: kerberos
          type: io.kestra.plugin.core.http.Request
          uri: http://127.0.0.1/x
          options:
            auth: {type: KERBEROS}
            proxy: 127.0.0.1:3128
        """,
    )
    result = cli("flow", "validate", str(path))
    assert result.exit_code != 0
    text = result.stdout + result.stderr
    for expected in (
        "tasks[0].uri: required",
        'tasks[0].options: Unrecognized field "retries"',
        "tasks[2].options.auth: must be a map with type BASIC, BEARER or DIGEST",
        "tasks[2].options.proxy: must be a map",
        "tasks[1].options.timeout.readIdleTimeout: `soon` is not an ISO-8601 duration",
        "tasks[1].options.logs: must be a list of",
    ):
        assert expected in text, text


def test_http_trigger_properties_are_checked_at_deploy(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "poll.yaml"
    path.write_text(
        textwrap.dedent(
            """
            id: poll
            namespace: tests.http
            tasks:
              - id: log
                type: io.kestra.plugin.core.log.Log
                message: hi
            triggers:
              - id: http
                type: io.kestra.plugin.fs.http.Trigger
                interval: every minute
                stopAfter: [DONE]
                options: {allowFailed: true, nope: 1}
            """
        )
    )
    text = cli("flow", "validate", str(path)).stderr
    assert "triggers[0].uri: required" in text
    assert "triggers[0].interval: `every minute` is not an ISO-8601 duration" in text
    assert "triggers[0].stopAfter: must be a list of execution states" in text
    assert 'triggers[0].options: Unrecognized field "nope"' in text


# ------------------------------------------------------------------------------------------------ Trigger


def test_the_http_trigger_starts_a_flow_only_when_the_condition_holds(
    standalone: tuple[StandaloneServer, Path], upstream: Upstream
) -> None:
    server, flows = standalone
    expression = "{{ trigger.code }} {{ fromJson(trigger.body).status }} {{ trigger.headers['X-Batch'] | first }}"
    (flows / "poll.yaml").write_text(
        textwrap.dedent(
            f"""
            id: poll
            namespace: tests.http
            tasks:
              - id: seen
                type: io.kestra.plugin.core.debug.Return
                format: "{expression}"
            triggers:
              - id: http
                type: io.kestra.plugin.core.http.Trigger
                uri: {upstream.url}/ready
                interval: PT0.2S
                stopAfter: [SUCCESS]
            """
        )
    )
    wait_for(lambda: len(upstream.hits("/ready")) >= 3)  # polled, answered 503: nothing starts
    assert executions_of(server, "poll") == []
    upstream.ready = True
    done = wait_for(lambda: [e for e in executions_of(server, "poll") if e.state.current.is_terminated()])
    execution = done[0]
    assert execution.state.current.value == "SUCCESS"
    assert execution.trigger is not None and execution.trigger["variables"]["code"] == 200
    assert execution.trigger["variables"]["uri"] == f"{upstream.url}/ready"
    assert execution.trigger["variables"]["headers"]["X-Batch"] == ["7"]
    assert execution.task_runs[0].outputs == {"value": "200 go 7"}
    time.sleep(1.0)  # stopAfter SUCCESS: the trigger polls no more
    assert len(executions_of(server, "poll")) == 1


def test_a_response_condition_on_the_body_and_a_slow_endpoint_do_not_delay_schedules(
    standalone: tuple[StandaloneServer, Path], upstream: Upstream
) -> None:
    server, flows = standalone
    (flows / "slow.yaml").write_text(
        textwrap.dedent(
            f"""
            id: slow
            namespace: tests.http
            tasks:
              - id: log
                type: io.kestra.plugin.core.log.Log
                message: "{{{{ trigger.body }}}}"
            triggers:
              - id: hang
                type: io.kestra.plugin.core.http.Trigger
                uri: {upstream.url}/slow
                interval: PT0.1S
              - id: never
                type: io.kestra.plugin.core.http.Trigger
                uri: {upstream.url}/json
                interval: PT0.1S
                responseCondition: "{{{{ fromJson(response.body).hello == 'mars' }}}}"
            """
        )
    )
    (flows / "every-second.yaml").write_text((FLOWS / "server" / "every-second.yaml").read_text())
    found = wait_for(
        lambda: [e for e in executions_of(server, "every-second") if e.state.current.value == "SUCCESS"][:2] or None
    )
    for execution in found:
        fired = execution.trigger["variables"]["date"]
        lag = execution.state.start_date.timestamp() - _timestamp(fired)
        assert 0 <= lag < 1.0, (fired, execution.state.start_date)
    assert wait_for(lambda: len(upstream.hits("/json")) >= 3 or None)  # polls go on while /slow hangs
    assert len(upstream.hits("/slow")) == 1  # one poll in flight at a time
    assert executions_of(server, "slow") == []


def _timestamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
