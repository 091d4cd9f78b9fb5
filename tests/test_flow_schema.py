"""`kestractl flow schema` and `/api/v1/plugins/schemas/flow`: the flow's JSON Schema, checked with the
`jsonschema` library against every flow the project ships, and served by a real server with the other endpoints
Kestra's VS Code extension calls."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from kestractl.flow_schema import TASK, flow_schema
from kestractl.parser import load_yaml, parse_flow, split_documents, to_plain
from kestractl.tasks import registry

ROOT = Path(__file__).resolve().parents[1]
FLOWS = sorted([*ROOT.glob("sample_flows/**/*.y*ml"), *ROOT.glob("tests/flows/**/*.y*ml")])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = flow_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, flow: Any) -> list[str]:
    """`path: message` of each error, and of the errors inside a `oneOf` (why each type did not fit)."""
    return [_message(error) for top in validator.iter_errors(flow) for error in _nested(top)]


def _nested(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    yield error
    for inner in error.context or []:
        yield from _nested(inner)


def _message(error: jsonschema.ValidationError) -> str:
    return f"{'/'.join(map(str, error.absolute_path))}: {error.message}"


def _documents(path: Path) -> list[tuple[str, Any]]:
    """Each flow of a file, as text and as the data the parser reads (YAML 1.2, as editors read it)."""
    return [(text, to_plain(load_yaml(text))) for text in split_documents(path.read_text())]


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_flow_validates(validator: jsonschema.Draft7Validator, path: Path) -> None:
    for text, document in _documents(path):
        parse_flow(text)  # the parser accepts it: the schema must too
        assert _errors(validator, document) == []


def test_there_are_flows_to_check() -> None:
    assert len(FLOWS) >= 30


def _flow(*tasks: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": "f", "namespace": "dev", "tasks": list(tasks), **more}


LOG = {"id": "hello", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}
GREET = {"id": "greet", "type": "io.kestra.plugin.hello.Greet", "name": "you"}


def test_an_unknown_property_is_an_error_where_the_parser_refuses_it(validator: jsonschema.Draft7Validator) -> None:
    assert _errors(validator, _flow(LOG)) == []
    assert _errors(validator, _flow({**LOG, "mesage": "typo"}))
    assert _errors(validator, _flow(LOG, owner="me"))  # a flow key Kestra does not have
    trigger = {"id": "t", "type": "io.kestra.plugin.core.trigger.Schedule", "cron": "@daily", "cronn": "x"}
    assert _errors(validator, _flow(LOG, triggers=[trigger]))
    assert _errors(validator, _flow(LOG, inputs=[{"id": "n", "type": "INT", "validator": "x"}]))


def test_a_wrong_type_is_an_error_and_an_expression_is_not(validator: jsonschema.Draft7Validator) -> None:
    assert _errors(validator, _flow({**GREET, "times": [3]}))
    assert _errors(validator, _flow({**GREET, "times": "three"}))
    assert _errors(validator, _flow({**GREET, "style": "QUIET"}))  # not one of the enumeration
    assert _errors(validator, _flow({**LOG, "allowFailure": {"yes": 1}}))
    assert _errors(validator, _flow({**LOG, "id": "no spaces"}))
    assert _errors(validator, _flow({**LOG, "type": "io.kestra.plugin.core.log.Nope"}))
    assert _errors(validator, _flow(LOG, inputs=[{"id": "n", "type": "NUMBER"}]))
    for times in (3, "3", "{{ inputs.times }}"):  # as the parser: the text form Jackson coerces, and expressions
        assert _errors(validator, _flow({**GREET, "times": times})) == []
    assert _errors(validator, _flow({**GREET, "style": "{{ inputs.style }}"})) == []


def test_a_missing_required_property_is_an_error(validator: jsonschema.Draft7Validator) -> None:
    greet = {key: value for key, value in GREET.items() if key != "name"}
    assert any("'name' is a required property" in error for error in _errors(validator, _flow(greet)))
    assert _errors(validator, {"id": "f", "namespace": "dev"})


def test_every_task_type_and_plugin_is_a_definition_whose_type_is_a_const() -> None:
    schema = flow_schema()
    definitions = schema["definitions"]
    assert _members(schema, TASK) == {name for name in registry.all_types(plugins=True) if "$" not in name}
    greet = definitions["io.kestra.plugin.hello.Greet"]  # examples/plugin-hello, installed by entry point
    assert greet["properties"]["type"] == {
        "const": "io.kestra.plugin.hello.Greet",
        "description": "`io.kestra.plugin.hello.Greet`",
    }
    assert greet["properties"]["style"]["oneOf"][0] == {"enum": ["PLAIN", "LOUD"]}
    assert greet["properties"]["name"]["description"] == "Who to greet."
    assert greet["required"] == ["id", "name", "type"] and greet["additionalProperties"] is False
    legacy = definitions["io.kestra.core.tasks.log.Log"]
    assert legacy["$deprecated"] and "io.kestra.plugin.core.log.Log" in legacy["deprecationMessage"]


def _kestractl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kestractl", *args], capture_output=True, text=True, timeout=120)


def _members(schema: dict[str, Any], union: str) -> set[str]:
    return {member["$ref"].rsplit("/", 1)[-1] for member in schema["definitions"][union]["oneOf"]}


@pytest.fixture(scope="module")
def printed() -> dict[str, Any]:
    """`kestractl flow schema`, in a fresh process (this one also has the types test modules register)."""
    done = _kestractl("flow", "schema")
    assert done.returncode == 0, done.stderr
    schema: dict[str, Any] = json.loads(done.stdout)
    return schema


def test_the_cli_prints_the_schema_of_the_types_it_has(printed: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(printed)
    listed = json.loads(_kestractl("plugins", "list", "--json").stdout)
    assert _members(printed, TASK) == {row["type"] for row in listed if row["kind"] == "task"}
    assert "io.kestra.plugin.hello.Greet" in _members(printed, TASK)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kestractl server standalone --basic-auth …` in its own process, on an OS-assigned port: its API's URL."""
    home = tmp_path_factory.mktemp("home")
    command = [sys.executable, "-m", "kestractl", "--home", str(home), "server", "standalone", "--port", "0"]
    command += ["--no-watch", "--grace", "2", "--basic-auth", "admin@kestra.io:kestra"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    url = next((line.split()[-1] for line in process.stdout if "listening on " in line), "")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keeps its log pipe from filling
    yield f"{url}/api/v1"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin@kestra.io:kestra").decode()}


def test_the_server_serves_the_same_schema_as_the_cli(server: str, printed: dict[str, Any]) -> None:
    for url in (f"{server}/plugins/schemas/flow", f"{server}/main/plugins/schemas/flow"):
        response = httpx.get(url, headers=AUTH, timeout=30)
        assert response.status_code == 200 and response.headers["cache-control"] == "public, max-age=3600"
        assert response.json() == printed
    task = httpx.get(f"{server}/plugins/schemas/task", headers=AUTH, timeout=30).json()
    assert task["$ref"] == "#/definitions/io.kestra.core.models.tasks.Task"
    missing = httpx.get(f"{server}/plugins/schemas/dashboard", headers=AUTH, timeout=30)
    assert missing.status_code == 404 and "flow, task and trigger" in missing.json()["message"]
    assert httpx.get(f"{server}/plugins/schemas/flow", timeout=30).status_code == 401


def test_the_cli_prints_a_servers_schema_and_names_a_wrong_server(server: str, printed: dict[str, Any]) -> None:
    """`--server` asks the server for its schema (at the API's root: Kestra keeps `/plugins` out of tenants)."""
    for url in (server.removesuffix("/api/v1"), f"{server}/main"):
        done = _kestractl("--server", url, "--user", "admin@kestra.io:kestra", "flow", "schema")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == printed
    refused = _kestractl("--server", server, "--user", "admin@kestra.io:wrong", "flow", "schema")
    assert refused.returncode == 1 and refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1
    assert "401" in refused.stderr and "Traceback" not in refused.stderr


def test_the_vs_code_extensions_other_calls(server: str) -> None:
    """What kestra-io/vscode-kestra's apiClient.ts reads from each endpoint."""
    get = lambda path: httpx.get(server + path, headers=AUTH, timeout=30)  # noqa: E731
    assert get("/configs").json()["version"]
    greet = get("/plugins/io.kestra.plugin.hello.Greet").json()
    assert set(greet["schema"]["outputs"]["properties"]) == {"greeting", "count"}
    assert "times" in greet["schema"]["properties"]["properties"] and "Greet" in greet["markdown"]
    assert get("/plugins/io.kestra.plugin.nope.Nope").status_code == 404
    entries = get("/plugins/groups/subgroups").json()
    hello = next(entry for entry in entries if entry["group"] == "io.kestra.plugin.hello")
    assert hello["tasks"] == [
        {"cls": "io.kestra.plugin.hello.Greet", "title": "Greet someone, as many times as asked.", "deprecated": None}
    ]
    flow = next(e for e in entries if e["subGroup"] == "io.kestra.plugin.core.flow")
    assert {"cls": "io.kestra.plugin.core.flow.Switch"}.items() <= next(
        t for t in flow["tasks"] if t["cls"].endswith("Switch")
    ).items()
    icons = get("/plugins/icons").json()
    assert (
        icons["io.kestra.plugin.core.flow.Switch"]["flowable"] and not icons["io.kestra.plugin.hello.Greet"]["flowable"]
    )
    assert "io.kestra.plugin.hello" in get("/plugins/icons/groups").json()
    assert "upper" in get("/pebble/filters").json() and "now" in get("/pebble/functions").json()


def test_the_extensions_validate_save_and_run_on_the_tenant_paths(server: str) -> None:
    """flowRunner.ts: validate, PUT the flow (404: POST it), POST an execution, follow it, read its end."""
    base, yaml_type = f"{server}/main", {**AUTH, "Content-Type": "application/x-yaml"}
    task = "  - id: hi\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    source = f"id: from-editor\nnamespace: dev\ntasks:\n{task}"
    checked = httpx.post(f"{base}/flows/validate", content=source + "    mesage: typo\n", headers=yaml_type, timeout=30)
    assert "mesage" in checked.json()[0]["constraints"]
    assert httpx.put(f"{base}/flows/dev/from-editor", content=source, headers=yaml_type, timeout=30).status_code == 404
    assert httpx.post(f"{base}/flows", content=source, headers=yaml_type, timeout=30).json()["revision"] == 1
    execution = httpx.post(f"{base}/executions/dev/from-editor", files={"x": ("", "")}, headers=AUTH, timeout=30)
    with httpx.stream("GET", f"{base}/executions/{execution.json()['id']}/follow", headers=AUTH, timeout=30) as events:
        assert any("SUCCESS" in line for line in events.iter_lines())
    final = httpx.get(f"{base}/executions/{execution.json()['id']}", headers=AUTH, timeout=30).json()
    assert final["state"]["current"] == "SUCCESS"
