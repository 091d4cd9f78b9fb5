"""The HTTP plumbing against a real server on 127.0.0.1, spoken to by real clients (urllib, http.client, requests)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kestractl.errors import ConflictError, NotFoundError, ValidationError
from kestractl.server.http import MethodNotAllowed, Request, Response, Router, make_server

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers on OS-assigned ports; each is shut down after the test."""
    servers = []

    def start(router: Router, **options: Any) -> str:
        server = make_server(router, "127.0.0.1", 0, **options)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def echo(request: Request) -> Response:
    return Response(
        body={"method": request.method, "path": request.path, "params": request.path_params, "query": request.params}
    )


def router_with(*routes: tuple[str | list[str], str, Callable[[Request], Response]]) -> Router:
    router = Router()
    for methods, pattern, handler in routes:
        router.add(methods, pattern, handler)
    return router


def get_json(url: str, **kwargs: Any) -> tuple[int, Any]:
    response = requests.get(url, timeout=5, **kwargs)
    return response.status_code, response.json()


def test_path_params_are_extracted_and_literal_segments_beat_parameters(serve: Serve) -> None:
    search = lambda request: Response(body={"search": True})  # noqa: E731
    base = serve(
        router_with(
            ("GET", "/api/v1/executions/{executionId}", echo),
            ("GET", "/api/v1/executions/search", search),
            (["POST", "DELETE"], "/api/v1/executions/{executionId}/kill", echo),
        )
    )
    assert get_json(base + "/api/v1/executions/search") == (200, {"search": True})
    assert get_json(base + "/api/v1/executions/abc")[1]["params"] == {"executionId": "abc"}
    killed = requests.delete(base + "/api/v1/executions/x%2Fy%20z/kill", timeout=5).json()
    assert killed["params"] == {"executionId": "x/y z"}


def test_router_match_prefers_literals_whatever_the_registration_order() -> None:
    first, second = (lambda r: Response()), (lambda r: Response())  # noqa: E731
    router = router_with(("GET", "/a/{x}/c", first), ("GET", "/a/b/{y}", second))
    assert router.match("GET", "/a/b/c") == (second, {"y": "c"})
    assert router.match("GET", "/a/z/c") == (first, {"x": "z"})
    with pytest.raises(NotFoundError):
        router.match("GET", "/a/b")
    with pytest.raises(MethodNotAllowed):
        router.match("PUT", "/a/b/c")


def test_every_api_route_also_answers_under_the_main_tenant(serve: Serve) -> None:
    base = serve(router_with(("GET", "/api/v1/flows/{namespace}/{id}", echo)))
    status, body = get_json(base + "/api/v1/main/flows/company.team/hello")
    assert status == 200
    assert body["params"] == {"namespace": "company.team", "id": "hello"}
    assert get_json(base + "/api/v1/flows/company.team/hello")[0] == 200


def test_json_body_round_trips(serve: Serve) -> None:
    base = serve(router_with(("POST", "/echo", lambda r: Response(201, {"got": r.json()}))))
    sent: dict[str, Any] = {"labels": ["a:1"], "nested": {"n": 1.5, "ok": True, "none": None}, "text": "héllo"}
    response = requests.post(base + "/echo", json=sent, timeout=5)
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"got": sent}


def test_invalid_json_body_is_a_400_json_error(serve: Serve) -> None:
    base = serve(router_with(("POST", "/echo", lambda r: Response(body=r.json()))))
    response = requests.post(base + "/echo", data=b"{not json", timeout=5)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert response.json()["message"].startswith("Invalid JSON body")
    assert requests.post(base + "/echo", timeout=5).json()["message"] == "Request body is empty; expected JSON"


def form_echo(request: Request) -> Response:
    fields, files = request.form()
    return Response(body={"fields": fields, "files": [[f.field, f.filename, f.data.decode("latin-1")] for f in files]})


def test_multipart_fields_and_files_sent_like_curl_dash_f(serve: Serve) -> None:
    base = serve(router_with(("POST", "/form", form_echo)))
    binary = bytes(range(256)) + b"\r\n--not-a-boundary\r\n\r\n"
    files: dict[str, Any] = {
        "greeting": (None, "hey there"),
        "name": (None, "héllo"),
        "data": ("in.bin", binary, "application/x"),
    }
    body = requests.post(base + "/form", files=files, timeout=5).json()
    assert body["fields"] == {"greeting": ["hey there"], "name": ["héllo"]}
    assert body["files"] == [["data", "in.bin", binary.decode("latin-1")]]


def test_urlencoded_form_and_empty_post_body(serve: Serve) -> None:
    base = serve(router_with(("POST", "/form", form_echo)))
    body = requests.post(base + "/form", data={"a": "1 2", "b": ""}, timeout=5).json()
    assert body == {"fields": {"a": ["1 2"], "b": [""]}, "files": []}
    assert requests.post(base + "/form", timeout=5).json() == {"fields": {}, "files": []}


def test_query_params_keep_repeats_and_blanks(serve: Serve) -> None:
    base = serve(router_with(("GET", "/q", echo)))
    _, body = get_json(base + "/q?labels=a:1&labels=b:2&empty=&q=x%20y")
    assert body["query"] == {"labels": ["a:1", "b:2"], "empty": [""], "q": ["x y"]}
    assert body["path"] == "/q"


def test_headers_are_case_insensitive_and_listed_with_repeats(serve: Serve) -> None:
    def headers(request: Request) -> Response:
        return Response(body={"team": request.headers.get("X-Team"), "lists": request.header_lists()})

    base = serve(router_with(("GET", "/h", headers)))
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
    connection.putrequest("GET", "/h")
    for name, value in (("x-team", "data"), ("X-Label", "a"), ("X-Label", "b")):
        connection.putheader(name, value)
    connection.endheaders()
    body = json.loads(connection.getresponse().read())
    assert body["team"] == "data"
    assert body["lists"]["x-team"] == ["data"] and body["lists"]["X-Label"] == ["a", "b"]


def wait_for(condition: Callable[[], bool]) -> bool:
    """The server logs after it answers, so a client can see the answer before the log line."""
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def raiser(error: Exception) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        raise error

    return handler


def test_kestra_errors_become_their_http_status_as_json(serve: Serve) -> None:
    invalid = ValidationError("Invalid flow", ["id: missing", "tasks: empty"])
    base = serve(
        router_with(
            ("GET", "/missing", raiser(NotFoundError("Flow not found"))),
            ("GET", "/busy", raiser(ConflictError("Execution already ended"))),
            ("GET", "/invalid", raiser(invalid)),
        )
    )
    assert get_json(base + "/missing") == (404, {"message": "Flow not found", "status": 404})
    assert get_json(base + "/busy") == (409, {"message": "Execution already ended", "status": 409})
    status, body = get_json(base + "/invalid")
    assert (status, body["errors"]) == (422, ["id: missing", "tasks: empty"])


def test_a_lone_surrogate_in_an_answer_is_sent_as_a_json_escape(serve: Serve) -> None:
    """YAML's `"\\ud800"` reaches error messages; UTF-8 cannot encode it, so the answer escapes it."""
    base = serve(router_with(("GET", "/odd", raiser(ValidationError("x.yaml:1: \ud800: unknown property")))))
    assert get_json(base + "/odd") == (
        422,
        {
            "message": "x.yaml:1: \ud800: unknown property",
            "status": 422,
            "errors": ["x.yaml:1: \ud800: unknown property"],
        },
    )


def test_head_answers_read_routes_without_a_body_and_never_runs_a_webhook(serve: Serve) -> None:
    calls: list[str] = []

    def hook(request: Request) -> Response:
        calls.append(request.method)
        return Response(body={"ran": True})

    base = serve(router_with(("GET", "/read", lambda r: Response(body={"x": 1})), (["GET", "POST"], "/hook", hook)))
    head = requests.head(base + "/read", timeout=5)
    get = requests.get(base + "/read", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] != "0"
    refused = requests.head(base + "/hook", timeout=5)
    assert refused.status_code == 405 and calls == []
    assert requests.head(base + "/nowhere", timeout=5).status_code == 404


def test_non_finite_numbers_are_written_as_jackson_writes_them(serve: Serve) -> None:
    """`variables: {x: .nan}` is valid YAML; `NaN` is not JSON, so it travels as text."""
    body = {"nan": float("nan"), "values": [float("inf"), -float("inf"), 1.5]}
    base = serve(router_with(("GET", "/odd", lambda r: Response(body=body))))
    response = requests.get(base + "/odd", timeout=5)
    assert json.loads(response.text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {
        "nan": "NaN",
        "values": ["Infinity", "-Infinity", 1.5],
    }


def test_unknown_route_is_404_and_wrong_method_is_405(serve: Serve) -> None:
    base = serve(router_with(("GET", "/only-get", echo)))
    assert get_json(base + "/nowhere") == (404, {"message": "Not Found: /nowhere", "status": 404})
    response = requests.put(base + "/only-get", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json()["status"] == 405


def test_too_large_bodies_are_refused_with_413(serve: Serve) -> None:
    base = serve(router_with(("POST", "/echo", lambda r: Response(body={"size": len(r.body)}))), max_body=100)
    assert requests.post(base + "/echo", data=b"x" * 100, timeout=5).json() == {"size": 100}
    response = requests.post(base + "/echo", data=b"x" * 5000, timeout=5)
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_chunked_bodies_are_read_and_held_to_the_limit(serve: Serve) -> None:
    base = serve(router_with(("POST", "/echo", lambda r: Response(body=r.body))), max_body=100)
    small = requests.post(base + "/echo", data=iter([b"hello ", b"chunked"]), timeout=5)
    assert small.content == b"hello chunked"
    big = requests.post(base + "/echo", data=iter([b"y" * 60, b"y" * 60]), timeout=5)
    assert big.status_code == 413


def test_expect_100_continue_is_refused_before_the_body_is_sent(serve: Serve) -> None:
    base = serve(router_with(("POST", "/echo", echo)), max_body=100)
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
    connection.putrequest("POST", "/echo")
    connection.putheader("Content-Length", "5000")
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["status"]) == (413, 413)


def test_a_handler_bug_is_a_500_without_traceback_which_goes_to_the_log(serve: Serve) -> None:
    lines: list[str] = []
    base = serve(
        router_with(
            ("GET", "/bug", raiser(RuntimeError("boom"))),
            ("GET", "/unserialisable", lambda r: Response(body={"x": object()})),
        ),
        log=lines.append,
    )
    assert get_json(base + "/bug") == (500, {"message": "Internal server error: boom", "status": 500})
    assert wait_for(lambda: any(line.startswith("GET /bug -> 500 (") for line in lines))
    assert any("Traceback" in line and "RuntimeError: boom" in line for line in lines)
    status, body = get_json(base + "/unserialisable")
    assert status == 500 and "not JSON serializable" in body["message"] and "Traceback" not in body["message"]


def test_one_log_line_per_request_and_keep_alive_reuses_the_connection(serve: Serve) -> None:
    lines: list[str] = []
    base = serve(router_with(("GET", "/ok", echo)), log=lines.append)
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
    sockets = set()
    for _ in range(3):
        connection.request("GET", "/ok")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["path"] == "/ok"
        sockets.add(id(connection.sock))
    assert len(sockets) == 1
    assert wait_for(lambda: len(lines) == 3)
    assert all(line.startswith("GET /ok -> 200 (") and line.endswith(" ms)") for line in lines)


def test_basic_auth_rejects_missing_or_wrong_credentials(serve: Serve) -> None:
    base = serve(router_with(("GET", "/ok", echo)), basic_auth=("admin", "s3cret"))
    missing = requests.get(base + "/ok", timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="kestractl"'
    assert requests.get(base + "/ok", auth=("admin", "wrong"), timeout=5).status_code == 401
    assert requests.get(base + "/nowhere", timeout=5).status_code == 401
    assert requests.get(base + "/ok", auth=("admin", "s3cret"), timeout=5).status_code == 200
    request = urllib.request.Request(base + "/ok", headers={"Authorization": "Basic YWRtaW46czNjcmV0"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_streamed_events_arrive_one_by_one_and_a_disconnect_stops_the_stream(serve: Serve) -> None:
    first_read, stopped = threading.Event(), threading.Event()

    def events() -> Iterator[bytes]:
        try:
            yield b"data: one\n\n"
            first_read.wait(5)
            while True:
                yield b"data: more\n\n"
                stopped.wait(0.01)
        finally:
            stopped.set()

    base = serve(router_with(("GET", "/follow", lambda r: Response(stream=events(), content_type="text/event-stream"))))
    with requests.get(base + "/follow", stream=True, timeout=5) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        lines = response.iter_lines(chunk_size=1)  # no read-ahead: proves each event is flushed
        assert next(lines) == b"data: one"
        first_read.set()
        assert next(lines) == b""
        assert next(lines) == b"data: more"
    assert stopped.wait(5)


def test_bodies_are_typed_by_python_type() -> None:
    assert Response().status == 200
    router = router_with(("GET", "/t", lambda r: Response(body="plain")), ("GET", "/b", lambda r: Response(body=b"\0")))
    server = make_server(router, port=0)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        text, raw = requests.get(base + "/t", timeout=5), requests.get(base + "/b", timeout=5)
        assert (text.text, text.headers["Content-Type"]) == ("plain", "text/plain; charset=utf-8")
        assert (raw.content, raw.headers["Content-Type"]) == (b"\0", "application/octet-stream")
    finally:
        server.shutdown()
        server.server_close()


def exchange(sock: socket.socket, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send one request and read one answer by its Content-Length: status line, headers, body."""
    sock.sendall(request)
    stream = sock.makefile("rb")
    status = stream.readline().strip()
    headers = {}
    while (line := stream.readline().strip()) != b"":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, stream.read(int(headers["content-length"]))


def test_http_1_0_keep_alive_is_answered_keep_alive_and_the_connection_serves_again(serve: Serve) -> None:
    """ApacheBench -k speaks HTTP/1.0 with `Connection: keep-alive` and waits for a close unless told otherwise."""
    port = int(serve(router_with(("POST", "/echo", lambda r: Response(body=r.body)))).rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for body in (b"first", b"second"):
            request = b"POST /echo HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
            status, headers, answer = exchange(sock, request)
            assert (status.split()[1], headers["connection"], answer) == (b"200", "keep-alive", body)


def test_http_1_0_without_keep_alive_is_answered_and_closed(serve: Serve) -> None:
    port = int(serve(router_with(("GET", "/ok", echo))).rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        status, headers, _ = exchange(sock, b"GET /ok HTTP/1.0\r\n\r\n")
        assert (status.split()[1], headers["connection"]) == (b"200", "close")
        assert sock.recv(1) == b""  # closed by the server


def test_http_1_1_keeps_the_connection_without_a_connection_header(serve: Serve) -> None:
    port = int(serve(router_with(("GET", "/ok", echo))).rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(2):
            status, headers, _ = exchange(sock, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status.split()[1] == b"200" and "connection" not in headers
