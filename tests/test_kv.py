"""The KV store as Kestra 1.x has it: tasks, the `kv()` function (parent namespaces, errorOnMissing), TTLs, the
deprecated State store, the CLI and the REST API of a real server."""

from __future__ import annotations

import json
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import Cli, runs, state
from test_server import Running, running  # noqa: F401 - the fixture of a real `server standalone`

from kestractl.kv import KVStore
from kestractl.storage import LocalStorage


def deploy(cli: Cli, tmp_path: Path, name: str, source: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(source))
    result = cli("flow", "deploy", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr


def run(cli: Cli, tmp_path: Path, namespace: str, tasks: str) -> dict[str, Any]:
    """Deploy a flow made of `tasks` (YAML) and run it; the execution's JSON."""
    flow_id = f"f{time.monotonic_ns()}"
    body = textwrap.indent(textwrap.dedent(tasks), "  ")
    deploy(cli, tmp_path, flow_id, f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{body}")
    _, execution = cli.execute(namespace, flow_id)
    return execution


def task(task_id: str, kind: str, **props: Any) -> str:
    """One task as a YAML line (JSON is YAML)."""
    return "- " + json.dumps({"id": task_id, "type": kind, **props})


RETURN, KV = "io.kestra.plugin.core.debug.Return", "io.kestra.plugin.core.kv."


def outputs(execution: dict[str, Any], task_id: str) -> Any:
    return runs(execution, task_id)[0].get("outputs")


def logs(cli: Cli, execution: dict[str, Any]) -> str:
    return str(cli("executions", "logs", execution["id"]).stdout)


def store(cli: Cli, namespace: str) -> KVStore:
    return KVStore(LocalStorage(cli.home / "storage"), namespace)


SET_IN_COMPANY = """
- id: number
  type: io.kestra.plugin.core.kv.Set
  key: orders
  value: "{{ 40 + 2 }}"
- id: map
  type: io.kestra.plugin.core.kv.Set
  key: config
  value: '{"region": {"name": "eu"}, "on": true}'
  kvType: JSON
"""


def test_a_value_set_in_one_flow_is_read_by_kv_in_a_child_namespace_flow(cli: Cli, tmp_path: Path) -> None:
    assert state(run(cli, tmp_path, "company", SET_IN_COMPANY)) == "SUCCESS"
    reader = """
    - id: read
      type: io.kestra.plugin.core.debug.Return
      format: "{{ kv('orders') + 1 }} {{ kv('config').region.name }} {{ kv(key='config', namespace='company').on }}"
    """
    execution = run(cli, tmp_path, "company.team.data", reader)
    assert state(execution) == "SUCCESS"
    assert outputs(execution, "read") == {"value": "43 eu true"}


def test_the_nearest_namespace_wins_and_an_explicit_namespace_is_not_walked(cli: Cli, tmp_path: Path) -> None:
    store(cli, "a").put("k", "from a")
    store(cli, "a.b").put("k", "from a.b")
    nearest = run(cli, tmp_path, "a.b.c", task("r", RETURN, format="{{ kv('k') }}"))
    assert outputs(nearest, "r") == {"value": "from a.b"}
    explicit = run(cli, tmp_path, "a", task("r", RETURN, format="{{ kv('k', 'a.b.c') }}"))
    assert state(explicit) == "FAILED"
    assert "The key 'k' does not exist in the namespace 'a.b.c'." in logs(cli, explicit)


def test_kv_fails_on_a_missing_key_unless_error_on_missing_is_false(cli: Cli, tmp_path: Path) -> None:
    tasks = """
    - id: lenient
      type: io.kestra.plugin.core.debug.Return
      format: "{{ kv('nope', errorOnMissing=false) ?? 'none' }}|{{ kv('nope', 'dev', false) ?? 'none' }}"
    - id: strict
      type: io.kestra.plugin.core.debug.Return
      format: "{{ kv('nope') }}"
    """
    execution = run(cli, tmp_path, "dev.team", tasks)
    assert outputs(execution, "lenient") == {"value": "none|none"}
    assert state(execution) == "FAILED"
    assert "The key 'nope' does not exist in the namespace 'dev.team'." in logs(cli, execution)


def test_set_renders_typed_values_and_converts_kv_type(cli: Cli, tmp_path: Path) -> None:
    tasks = """
    - {id: text, type: io.kestra.plugin.core.kv.Set, key: text, value: "42"}
    - {id: typed, type: io.kestra.plugin.core.kv.Set, key: typed, value: "{{ 40 + 2 }}"}
    - {id: number, type: io.kestra.plugin.core.kv.Set, key: number, value: "1.5", kvType: NUMBER}
    - {id: bool, type: io.kestra.plugin.core.kv.Set, key: bool, value: "TRUE", kvType: BOOLEAN}
    - {id: instant, type: io.kestra.plugin.core.kv.Set, key: instant, value: "2024-05-01T10:00:00Z", kvType: DATETIME}
    - {id: duration, type: io.kestra.plugin.core.kv.Set, key: duration, value: PT90M, kvType: DURATION}
    - {id: json, type: io.kestra.plugin.core.kv.Set, key: json, value: '[1, {"a": 2}]', kvType: JSON}
    """
    assert state(run(cli, tmp_path, "types", tasks)) == "SUCCESS"
    kv = store(cli, "types")
    values = {
        key: found.value for key in ("text", "typed", "number", "bool", "duration", "json") if (found := kv.get(key))
    }
    assert values == {
        "text": "42",
        "typed": 42,
        "number": 1.5,
        "bool": True,
        "duration": timedelta(minutes=90),
        "json": [1, {"a": 2}],
    }
    assert kv.get("instant").value == datetime(2024, 5, 1, 10, tzinfo=UTC)  # type: ignore[union-attr]
    raw = (cli.home / "storage" / "types" / "_kv" / "duration.ion").read_text()
    assert raw == "PT1H30M"  # Kestra writes a duration as its bare ISO text
    gets = "\n".join(task(f"g{k}", KV + "Get", key=k) for k in ("instant", "duration"))
    execution = run(cli, tmp_path, "types", gets)
    assert outputs(execution, "ginstant") == {"value": "2024-05-01T10:00:00.000Z"}
    assert outputs(execution, "gduration") == {"value": "PT1H30M"}


def test_set_refuses_to_overwrite_when_asked_and_bad_keys(cli: Cli, tmp_path: Path) -> None:
    store(cli, "dev").put("taken", 1)
    execution = run(cli, tmp_path, "dev", task("s", KV + "Set", key="taken", value="x", overwrite=False))
    assert state(execution) == "FAILED"
    refused = "Cannot set value for key 'taken'. Key already exists and `overwrite` is set to `false`."
    assert refused in logs(cli, execution)
    bad = run(cli, tmp_path, "dev", task("s", KV + "Set", key="_bad key", value="x"))
    assert "Key must start with an alphanumeric character" in logs(cli, bad)
    invalid = task("s", KV + "Set", key="k", value="v", ttl="soon", kvType="TEXT")
    result = cli("flow", "validate", str(_write(tmp_path, invalid)))
    assert result.exit_code == 2
    assert "ttl: `soon` is not an ISO-8601 duration" in result.stderr and "kvType: must be one of" in result.stderr


def _write(tmp_path: Path, tasks: str) -> Path:
    path = tmp_path / "invalid.yaml"
    path.write_text(f"id: invalid\nnamespace: dev\ntasks:\n{textwrap.indent(tasks, '  ')}\n")
    return path


def test_get_delete_and_get_keys_outputs(cli: Cli, tmp_path: Path) -> None:
    kv = store(cli, "dev")
    for key, value in (("app.one", 1), ("app.two", {"a": [1]}), ("other", "x")):
        kv.put(key, value)
    tasks = """
    - {id: get, type: io.kestra.plugin.core.kv.Get, key: app.two}
    - {id: missing, type: io.kestra.plugin.core.kv.Get, key: nope}
    - {id: keys, type: io.kestra.plugin.core.kv.GetKeys, prefix: app.}
    - {id: all, type: io.kestra.plugin.core.kv.GetKeys}
    - {id: delete, type: io.kestra.plugin.core.kv.Delete, key: other}
    - {id: again, type: io.kestra.plugin.core.kv.Delete, key: other}
    - {id: strict, type: io.kestra.plugin.core.kv.Get, key: other, errorOnMissing: true}
    """
    execution = run(cli, tmp_path, "dev", tasks)
    assert outputs(execution, "get") == {"value": {"a": [1]}}
    assert outputs(execution, "missing") == {}
    assert outputs(execution, "keys") == {"keys": ["app.one", "app.two"]}
    assert outputs(execution, "all") == {"keys": ["app.one", "app.two", "other"]}
    assert outputs(execution, "delete") == {"deleted": True}
    assert outputs(execution, "again") == {"deleted": False}
    assert state(execution) == "FAILED"
    expected = "No value found for key 'other' in namespace 'dev' and `errorOnMissing` is set to true"
    assert expected in logs(cli, execution)


def test_put_deep_merges_maps_patches_entries_and_keeps_the_ttl(cli: Cli, tmp_path: Path) -> None:
    kv = store(cli, "dev")
    kv.put("config", {"db": {"host": "h", "port": 1}, "tags": ["a"]}, ttl=timedelta(hours=1))
    kv.put("plain", "old")
    expiration = kv.entry("config").expiration_date  # type: ignore[union-attr]
    tasks = """
    - id: merge
      type: io.kestra.plugin.core.kv.Put
      key: config
      value: {db: {port: 2}, tags: ["b"]}
    - id: patch
      type: io.kestra.plugin.core.kv.Put
      key: config
      value: [{key: db.user, value: admin}, {key: new, value: 1}]
    - id: replace
      type: io.kestra.plugin.core.kv.Put
      key: plain
      value: [{value: {whole: "{{ 1 + 1 }}"}}]
    - id: create
      type: io.kestra.plugin.core.kv.Put
      key: fresh
      value: "{{ [1, 2] }}"
    - id: strict
      type: io.kestra.plugin.core.kv.Put
      key: absent
      value: x
      errorOnMissing: true
    """
    execution = run(cli, tmp_path, "dev", tasks)
    assert kv.get("config").value == {  # type: ignore[union-attr]
        "db": {"host": "h", "port": 2, "user": "admin"},
        "tags": ["b"],
        "new": 1,
    }
    assert kv.entry("config").expiration_date == expiration  # type: ignore[union-attr]
    assert kv.get("plain").value == {"whole": "2"}  # type: ignore[union-attr]
    assert kv.get("fresh").value == [1, 2]  # type: ignore[union-attr]
    assert state(execution) == "FAILED" and kv.get("absent") is None
    assert "No value found for key 'absent' in namespace 'dev'" in logs(cli, execution)


def test_purge_kv_deletes_expired_keys_by_default_and_filters_namespaces_and_keys(cli: Cli, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    for namespace in ("company", "company.team", "other"):
        kv = store(cli, namespace)
        kv.put("old", 1, expiration=past)
        kv.put("AI_live", 2)
        kv.put("keep", 3)
    tasks = """
    - {id: expired, type: io.kestra.plugin.core.kv.PurgeKV, namespaces: [company]}
    - id: ai
      type: io.kestra.plugin.core.kv.PurgeKV
      namespacePattern: "comp*"
      keyPattern: "AI_*"
      behavior: {type: key, expiredOnly: false}
    - id: own
      type: io.kestra.plugin.core.kv.PurgeKV
      namespaces: [other]
      includeChildNamespaces: false
      expiredOnly: false
    """
    execution = run(cli, tmp_path, "system", tasks)
    assert state(execution) == "SUCCESS"
    assert outputs(execution, "expired") == {"size": 2}
    assert outputs(execution, "ai") == {"size": 2}
    assert outputs(execution, "own") == {"size": 3}
    assert [e.key for e in store(cli, "company.team").list(include_expired=True)] == ["keep"]
    assert store(cli, "other").list(include_expired=True) == []
    both = cli(
        "flow", "validate", str(_write(tmp_path, task("p", KV + "PurgeKV", namespaces=["a"], namespacePattern="b*")))
    )
    assert both.exit_code == 2 and "can't be used at the same time" in both.stderr


def test_state_store_set_get_delete_with_kestras_keys(cli: Cli, tmp_path: Path) -> None:
    tasks = """
    - {id: first, type: io.kestra.plugin.core.state.Set, data: {a: 1, nested: {x: 1}}}
    - {id: second, type: io.kestra.core.tasks.states.Set, data: {b: "{{ 1 + 1 }}", nested: {y: 2}}}
    - {id: shared, type: io.kestra.plugin.core.state.Set, name: counts, namespace: true, data: {n: 1}}
    - {id: get, type: io.kestra.plugin.core.state.Get}
    - id: each
      type: io.kestra.plugin.core.flow.ForEach
      values: ["hello"]
      tasks:
        - {id: per_value, type: io.kestra.plugin.core.state.Set, data: {v: "{{ taskrun.value }}"}}
    - {id: delete, type: io.kestra.plugin.core.state.Delete}
    - {id: after, type: io.kestra.plugin.core.state.Get}
    - {id: strict, type: io.kestra.plugin.core.state.Get, errorOnMissing: true}
    """
    execution = run(cli, tmp_path, "dev", tasks)
    flow_key = f"{execution['flowId'].lower()}_states_tasks-states_default"
    assert outputs(execution, "first") == {"count": 2, "key": flow_key}
    assert outputs(execution, "second") == {"count": 3, "key": flow_key}
    assert outputs(execution, "shared") == {"count": 1, "key": "states_tasks-states_counts"}
    assert outputs(execution, "get") == {"count": 3, "data": {"a": 1, "b": "2", "nested": {"x": 1, "y": 2}}}
    # Inside Each, Kestra isolates the state by Guava's murmur3_128 of the value: "hello" is 029bbd41…
    assert outputs(execution, "per_value")["key"] == f"{flow_key}_029bbd41b3a7d8cb191dae486a901e5b"
    assert outputs(execution, "delete") == {"deleted": True}
    assert outputs(execution, "after") == {"count": 0, "data": {}}
    assert state(execution) == "FAILED" and f"State {flow_key} not found" in logs(cli, execution)


def test_cli_set_get_list_delete_with_types(cli: Cli) -> None:
    def ok(*args: str) -> str:
        result = cli("kv", *args)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout).strip()

    ok("set", "dev", "map", '{"a": [1, 2]}')
    ok("set", "dev", "number", "42")
    ok("set", "dev", "text", "42", "--type", "STRING")
    ok("set", "dev", "words", "hello world", "--ttl", "PT1H")
    ok("set", "dev", "wait", "PT5M", "--type", "DURATION")
    assert ok("get", "dev", "map") == '{"a":[1,2]}'
    assert ok("get", "dev", "number") == "42" and store(cli, "dev").get("number").value == 42  # type: ignore[union-attr]
    assert store(cli, "dev").get("text").value == "42"  # type: ignore[union-attr]
    assert ok("get", "dev", "words") == "hello world" and ok("get", "dev", "wait") == "PT5M"
    listed = json.loads(ok("list", "dev", "--json"))
    assert [e["key"] for e in listed] == ["map", "number", "text", "wait", "words"]
    assert "expirationDate" in listed[-1] and "expirationDate" not in listed[0]
    assert ok("list", "dev").splitlines()[0].split() == ["KEY", "UPDATED", "EXPIRES", "DESCRIPTION"]
    ok("delete", "dev", "map")
    missing = cli("kv", "get", "dev", "map")
    assert missing.exit_code != 0 and missing.stderr.strip() == "Error: No value found for key 'map' in namespace 'dev'"
    assert cli("kv", "set", "dev", "n", "x", "--type", "NUMBER").exit_code != 0


def test_a_key_whose_ttl_passed_is_missing_hidden_and_deleted(cli: Cli, tmp_path: Path) -> None:
    assert cli("kv", "set", "dev", "short", "v", "--ttl", "PT1S").exit_code == 0
    assert cli("kv", "get", "dev", "short").stdout.strip() == "v"
    time.sleep(1.2)
    assert json.loads(cli("kv", "list", "dev", "--json").stdout) == []
    lenient = task("r", RETURN, format="{{ kv('short', errorOnMissing=false) ?? 'gone' }}")
    execution = run(cli, tmp_path, "dev", lenient)
    assert outputs(execution, "r") == {"value": "gone"}
    assert not (cli.home / "storage" / "dev" / "_kv" / "short.ion").exists()
    assert cli("kv", "get", "dev", "short").exit_code == 3


def test_rest_api_put_get_list_inheritance_and_delete(running: Running) -> None:  # noqa: F811
    base = "/api/v1/namespaces/company.team/kv"
    assert running.call("PUT", base + "/count", b"42", {"Content-Type": "application/json"})[0] == 200
    assert running.call("PUT", base + "/cfg", b'{"a": {"b": true}}', {"Content-Type": "application/json"})[0] == 200
    put = running.call("PUT", base + "/short", b'"soon gone"', {"Content-Type": "application/json", "ttl": "PT1S"})
    assert put[0] == 200
    assert (
        running.call("PUT", "/api/v1/main/namespaces/company/kv/parent", b"not json", {"Content-Type": "text/plain"})[0]
        == 200
    )
    status, value = running.call("GET", base + "/count")
    assert status == 200 and value["type"] == "NUMBER" and value["value"] == 42
    assert running.call("GET", base + "/cfg")[1]["value"] == {"a": {"b": True}}
    assert running.call("GET", "/api/v1/namespaces/company/kv/parent")[1]["value"] == "not json"
    status, listed = running.call("GET", "/api/v1/main" + base.removeprefix("/api/v1"))
    assert status == 200 and [e["key"] for e in listed] == ["cfg", "count", "short"]
    assert "expirationDate" in listed[2]
    assert [e["key"] for e in running.call("GET", base + "/inheritance")[1]] == ["parent"]
    time.sleep(1.2)
    status, body = running.call("GET", base + "/short")
    assert status == 404 and body["message"] == "No value found for key 'short' in namespace 'company.team'"
    assert running.call("DELETE", base + "/count") == (200, True)
    assert running.call("DELETE", base + "/count") == (200, False)
    bulk = running.call("DELETE", base, b'{"keys": ["cfg", "nope"]}', {"Content-Type": "application/json"})
    assert bulk == (200, {"keys": ["cfg"]})
    bad = running.call("PUT", base + "/x", b"1", {"ttl": "soon"})
    assert bad[0] == 400
