"""Kestra 1.x functions, filters and operators through real renders (and the CLI): full jq, ION, encryption that
interoperates with Kestra's, identifiers, calendar tests, `http`, and the `tasks` variable of conditional outputs."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, needs_tool, runs

from kestractl import expressions_jq
from kestractl.engine import variables
from kestractl.errors import ExpressionError
from kestractl.expressions import render

KESTRA_TEST_KEY = "I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"  # Kestra's application-test.yml `kestra.encryption.secret-key`
# "It's a secret" encrypted with that key by Java's JCE, AES/GCM/NoPadding with a random 12-byte IV written
# first, the way Kestra's EncryptionService does (the text of Kestra's DefaultRunContextTest).
JAVA_ENCRYPTED = "sQGdovGieauHBPPHMokLQU/K3GQwS3i/4tcCJHjPkvp0HeWL12izpFQ="


def error_of(template: str, **variables: Any) -> str:
    with pytest.raises(ExpressionError) as caught:
        render(template, variables)
    return caught.value.message


# ---------------------------------------------------------------- jq


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('{{ data | jq(\'has("a"), has("zz")\') }}', "[true,false]"),
        ("{{ data | jq('.tags | join(\"-\")') | first }}", "x-y"),
        ("{{ data | jq('.a | tostring') | first }}", "1"),
        ("{{ data | jq('[.items[] | select(.n > 1) | .name]') | first }}", '["two","three"]'),
        ("{{ data | jq('{total: ([.items[].n] | add), count: (.items | length)}') | first }}", '{"total":6,"count":3}'),
        ("{{ data | jq('.items[] | .name') }}", '["one","two","three"]'),
        ("{{ data | jq('.items | map(.n * 10) | .[1]') }}", "[20]"),
        ("{{ data | jq('.missing') }}", "[null]"),
        ("{{ '{\"k\": [1, 2]}' | jq('.k[-1]') }}", "[2]"),  # text is read as JSON, like Kestra
        ("{{ data | jq('empty') }}", "[]"),
        ("{{ nothing | jq('.') }}", ""),  # null in, null out
    ],
)
def test_jq_is_full_jq_with_kestras_list_of_results(template: str, text: str) -> None:
    data = {
        "a": 1,
        "tags": ["x", "y"],
        "items": [{"name": n, "n": i} for i, n in enumerate(["one", "two", "three"], 1)],
    }
    assert render(template, {"data": data, "nothing": None}) == text


def test_jq_cannot_read_the_environment_or_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", base64.b64encode(b"hunter2").decode())
    expressions_jq._CHILD_PROCESS.stop()  # the next call starts a child after the variable was set
    assert render("{{ {} | jq('$ENV | has(\"SECRET_TOKEN\")') }}", {}) == "[false]"
    assert render("{{ {} | jq('env.SECRET_TOKEN') }}", {}) == "[null]"
    assert "not available" in error_of("{{ {} | jq('import \"etc/passwd\" as $p; $p') }}")


def test_a_runaway_jq_program_is_stopped_and_the_next_one_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expressions_jq, "TIMEOUT_SECONDS", 1.0)
    started = time.monotonic()
    assert "takes more than 1 seconds" in error_of("{{ 0 | jq('last(range(1e15))') }}")
    assert time.monotonic() - started < 10
    monkeypatch.setattr(expressions_jq, "MAX_RESULTS", 100)
    assert "more than 100 results" in error_of("{{ 0 | jq('repeat(1)') }}")
    assert render("{{ [3] | jq('.[0] + 1') }}", {}) == "[4]"


def test_jq_errors_are_one_line() -> None:
    assert error_of("{{ 'not json' | jq('.') }}").count("\n") == 0
    assert "jq expression '.a[' failed: syntax error" in error_of("{{ {} | jq('.a[') }}")


# ---------------------------------------------------------------- ION


def test_from_ion_reads_kestras_ion_and_round_trips_to_ion() -> None:
    assert render("{{ fromIon('{id:1,name:\"a\"}').name }}", {}) == "a"
    assert render("{{ fromIon(rows, allRows=true) | length }}", {"rows": "{a:1}\n{a:2}\n"}) == "2"
    assert render("{{ fromIon(nothing) is null }}", {"nothing": None}) == "true"
    value = {"id": 1, "my key": "x", "list": [1.5, None, True]}
    assert render("{{ fromIon(v | toIon) == v }}", {"v": value}) == "true"
    assert render("{{ v | toIon }}", {"v": value}) == "{id:1,'my key':\"x\",list:[1.5e0,null,true]}"
    assert "Invalid ion" in error_of("{{ fromIon('{a:') }}")


# ---------------------------------------------------------------- encrypt / decrypt


def test_encrypt_then_decrypt_with_a_key_argument() -> None:
    encrypted = render("{{ encrypt(key, 'toto') }}", {"key": KESTRA_TEST_KEY})
    assert encrypted != "toto" and len(base64.b64decode(encrypted)) == 12 + 4 + 16  # IV, text, GCM tag
    assert render("{{ decrypt(key, value) }}", {"key": KESTRA_TEST_KEY, "value": encrypted}) == "toto"
    assert render("{{ decrypt(key=key, encrypted=value) }}", {"key": KESTRA_TEST_KEY, "value": encrypted}) == "toto"
    assert (
        render("{{ encrypt(key, '') }}|{{ encrypt(key, nothing) }}", {"key": KESTRA_TEST_KEY, "nothing": None}) == "|"
    )


def test_decrypt_reads_a_value_java_encrypted_like_kestra() -> None:
    assert render("{{ decrypt(key, value) }}", {"key": KESTRA_TEST_KEY, "value": JAVA_ENCRYPTED}) == "It's a secret"


@needs_tool("java")
def test_java_decrypts_what_encrypt_wrote(tmp_path: Path) -> None:
    source = tmp_path / "Dec.java"
    source.write_text(
        "import javax.crypto.Cipher; import javax.crypto.spec.*; import java.util.*;\n"
        "public class Dec { public static void main(String[] a) throws Exception {\n"
        '  byte[] in = Base64.getDecoder().decode(a[1]); Cipher c = Cipher.getInstance("AES/GCM/NoPadding");\n'
        '  c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(Base64.getDecoder().decode(a[0]), "AES"),\n'
        "    new GCMParameterSpec(128, Arrays.copyOf(in, 12)));\n"
        "  System.out.print(new String(c.doFinal(Arrays.copyOfRange(in, 12, in.length)))); } }\n"
    )
    encrypted = render("{{ encrypt(key, 'héllo from kestractl') }}", {"key": KESTRA_TEST_KEY})
    done = subprocess.run(["java", str(source), KESTRA_TEST_KEY, encrypted], capture_output=True, timeout=120)
    assert done.stdout.decode("utf-8") == "héllo from kestractl", done.stderr


def test_the_configured_key_is_used_when_none_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KESTRACTL_ENCRYPTION_SECRET_KEY", raising=False)
    monkeypatch.delenv("KESTRA_ENCRYPTION_SECRET_KEY", raising=False)
    assert "set KESTRACTL_ENCRYPTION_SECRET_KEY" in error_of("{{ encrypt('toto') }}")
    monkeypatch.setenv("KESTRA_ENCRYPTION_SECRET_KEY", KESTRA_TEST_KEY)
    assert render("{{ decrypt('" + JAVA_ENCRYPTED + "') }}", {}) == "It's a secret"
    monkeypatch.setenv("KESTRACTL_ENCRYPTION_SECRET_KEY", base64.b64encode(b"k" * 32).decode())
    assert render("{{ decrypt(encrypt('toto')) }}", {}) == "toto"


def test_wrong_keys_and_damaged_values_are_one_clear_line() -> None:
    other = base64.b64encode(b"o" * 16).decode()
    assert "not encrypted with this key" in error_of("{{ decrypt(k, v) }}", k=other, v=JAVA_ENCRYPTED)
    assert "must be base64" in error_of("{{ encrypt('not a key!', 'x') }}")
    assert "AES needs 128, 192 or 256 bits" in error_of("{{ encrypt('YWJj', 'x') }}")


def test_the_encryption_key_is_not_an_envs_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTRA_ENCRYPTION_SECRET_KEY", KESTRA_TEST_KEY)
    monkeypatch.setenv("KESTRA_REGION", "eu")
    variables.envs.cache_clear()
    try:
        assert variables.envs()["region"] == "eu" and "encryption_secret_key" not in variables.envs()
    finally:
        variables.envs.cache_clear()


# ---------------------------------------------------------------- identifiers, ports, environment


def test_uuid_is_a_time_ordered_version_7_like_kestra() -> None:
    first = render("{{ uuid() }}", {})
    time.sleep(0.002)
    second = render("{{ uuid() }}", {})
    assert uuid.UUID(first).version == 7 and uuid.UUID(second).version == 7 and first < second


def test_nano_id_ksuid_and_random_port() -> None:
    assert len(render("{{ nanoId() }}", {})) == 21
    assert set(render("{{ nanoId(length=40, alphabet='ab') }}", {})) <= {"a", "b"}
    assert "lower than: 1000" in error_of("{{ nanoId(length=1001) }}")
    first, second = render("{{ ksuid() }}", {}), render("{{ ksuid() }}", {})
    assert len(first) == 27 and first != second and first.isalnum()
    port = int(render("{{ randomPort() }}", {}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # it was free


def test_env_tasks_with_state_and_loop_outputs() -> None:
    context = {
        "envs": {"region": "eu", "blank": ""},
        "tasks": {"a": {"state": "FAILED"}, "e": {"v1": {"state": "FAILED"}, "v2": {"state": "SUCCESS"}}},
        "loop": [{"outputs": {"n": 1}}, {"outputs": {}}, {"outputs": {"n": 3}}],
    }
    assert render("{{ env('region') }} {{ env('blank', 'dflt') }} {{ env('none', 'x') }}", context) == "eu dflt x"
    failed = [{"taskId": "a", "state": "FAILED"}, {"taskId": "e", "state": "FAILED", "value": "v1"}]
    assert json.loads(render("{{ tasksWithState('failed') }}", context)) == failed
    assert render("{{ loopOutputs(loop, 'n') }}", context) == "[1,null,3]"


# ---------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    ("template", "text"),
    [
        (
            "{{ dayOfWeek('2024-06-01') }} {{ isWeekend('2024-06-01') }} {{ isWeekend('2024-06-03') }}",
            "SATURDAY true false",
        ),
        ("{{ dayOfMonth('2024-06-09T23:30:00+02:00') }} {{ monthOfYear(day) }} {{ hourOfDay(at) }}", "9 1 10"),
        (
            "{{ isDayWeekInMonth('2024-06-03', 'MONDAY', 'FIRST') }}"
            " {{ isDayWeekInMonth('2024-06-10', 'monday', 'FIRST') }}",
            "true false",
        ),
        (
            "{{ isDayWeekInMonth('2024-06-24', 'MONDAY', 'LAST') }}"
            " {{ isDayWeekInMonth('2024-06-17', 'MONDAY', 'THIRD') }}",
            "true true",
        ),
        (
            "{{ isLastWorkingDay('2024-05-31') }} {{ isLastWorkingDay('2024-06-28') }}"
            " {{ isLastWorkingDay('2024-06-27') }}",
            "true true false",
        ),
        ("{{ isLastWorkingDay('2024-06-30', 'SUNDAY') }}", "true"),
        ("{{ isDateBetween('2026-03-01T00:00:00Z', '2025-12-31T23:59:59Z', '2026-06-30T23:59:59Z') }}", "true"),
        ("{{ isDateBetween('2026-01-01T01:00:00+02:00', '2025-12-31T23:30:00Z', '2026-06-30T00:00:00Z') }}", "false"),
        ("{{ isPublicHoliday('2024-07-14', 'FR') }} {{ isPublicHoliday('2024-07-15', 'FR') }}", "true false"),
        ("{{ isPublicHoliday('2024-01-06', 'DE', 'DE-BY') }} {{ isPublicHoliday('2024-01-06', 'DE') }}", "true false"),
    ],
)
def test_calendar_functions(template: str, text: str) -> None:
    from datetime import UTC, date, datetime

    assert render(template, {"day": date(2024, 1, 31), "at": datetime(2024, 1, 1, 10, 5, tzinfo=UTC)}) == text


def test_calendar_functions_refuse_bad_arguments_in_one_line() -> None:
    assert "could not parse 'date'" in error_of("{{ dayOfWeek('someday') }}")
    assert "invalid 'position'" in error_of("{{ isDayWeekInMonth('2024-06-03', 'MONDAY', 'FIFTH') }}")
    assert "expects a 'countryCode'" in error_of("{{ isPublicHoliday('2024-06-03') }}")


# ---------------------------------------------------------------- filters and isIn


def test_string_and_regex_filters() -> None:
    assert render("{{ 12 | string }} {{ '1e3' | string }} {{ 2.5 | string }}", {}) == "12 1E+3 2.5"
    assert "invalid numeric string" in error_of("{{ 'abc' | string }}")
    assert render("{{ 'a1b22' | regexReplace('(\\\\d+)', '<$1>') }}", {}) == "a<1>b<22>"
    assert render("{{ 'order-12345-done' | regexExtract('\\\\d+') }}", {}) == "12345"
    assert render("{{ 'k=v' | regexExtract('(\\\\w)=(\\\\w)', 2) }}|{{ 'x' | regexExtract('\\\\d') }}", {}) == "v|"
    assert render("{{ 'hello world' | regexMatch('o w') }} {{ 'abc' | regexMatch('^b') }}", {}) == "true false"
    assert render("{{ 'a\nb' | nl2br }}", {}) == "a<br />b"


def test_regex_replace_is_sized_before_it_builds() -> None:
    assert "`regexReplace` would be over" in error_of("{{ ('a'|center(100000)) | regexReplace('', ''|center(200)) }}")


def test_is_in_operator() -> None:
    template = "{{ 'a' isIn ['a', 'b'] }} {{ 2 isIn {'x': 2} }} {{ 'z' isIn ['a'] }} {{ 1 isIn ['1'] }}"
    assert render(template, {}) == "true true false true"
    assert render("{{ not 'a' isIn ['b'] and 'b' isIn ['b'] }}", {}) == "true"


# ---------------------------------------------------------------- http


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path.startswith("/missing"):
                self.send_error(404, "Not Found")
                return
            self.reply({"path": self.path, "accept": self.headers["Accept"], "token": self.headers["X-Token"]})

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.reply({"got": json.loads(body), "type": self.headers["Content-Type"]})

        def reply(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_function_gets_posts_and_reports_errors(http_server: str) -> None:
    got = "{{ http(uri=base ~ '/items', query={'q': 'a b'}, headers={'X-Token': 't'}) }}"
    assert json.loads(render(got, {"base": http_server})) == {
        "path": "/items?q=a+b",
        "accept": "application/json",
        "token": "t",
    }
    posted = "{{ http(base ~ '/new', method='POST', body={'n': 1}).got.n }}"
    assert render(posted, {"base": http_server}) == "1"
    assert "status 404 : Not Found" in error_of("{{ http(base ~ '/missing') }}", base=http_server)
    assert "only fetches http://" in error_of("{{ http('file:///etc/passwd') }}")


# ---------------------------------------------------------------- through the CLI


def test_tasks_variable_gives_conditional_outputs_after_if_and_switch(cli: Cli) -> None:
    cli.deploy("conditional-outputs.yaml")
    code, execution = cli.execute("tests", "conditional-outputs")
    assert code == 0
    assert execution["outputs"] == {"branch_result": "from then", "route_result": "case yes"}
    assert runs(execution, "states")[0]["outputs"]["value"] == "SUCCESS NOT_RUN SUCCESS SUCCESS RUNNING 7"
    code, execution = cli.execute("tests", "conditional-outputs", "--input", "pick=no")
    assert execution["outputs"] == {"branch_result": "from else", "route_result": "case other"}
    assert runs(execution, "states")[0]["outputs"]["value"].startswith("SUCCESS SUCCESS ")


def test_new_functions_render_inside_a_flow_run_by_the_cli(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTRACTL_ENCRYPTION_SECRET_KEY", KESTRA_TEST_KEY)
    flow = tmp_path / "functions.yaml"
    flow.write_text(
        "id: functions\nnamespace: tests\ntasks:\n"
        "  - id: secret\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ encrypt('s3cr3t') }}\"\n"
        "  - id: use\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: >-\n"
        "      {{ decrypt(outputs.secret.value) }} {{ fromIon('{n:2}').n }} {{ nanoId(length=4) | length }}\n"
        "      {{ isWeekend('2024-06-01') }} {{ {'a': [1, 2]} | jq('.a | map(tostring) | join(\"+\")') | first }}\n"
    )
    assert cli("flow", "deploy", str(flow)).exit_code == 0
    code, execution = cli.execute("tests", "functions")
    assert code == 0, execution
    assert runs(execution, "use")[0]["outputs"]["value"] == "s3cr3t 2 4 true 1+2"
    assert runs(execution, "secret")[0]["outputs"]["value"] != "s3cr3t"
