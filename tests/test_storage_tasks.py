"""Kestra's storage tasks and TemplatedTask through the real CLI: each task's outputs, and the files it
wrote read back with `kestractl executions file`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, runs, state

HEAD = "id: {id}\nnamespace: tests.storage\ntasks:\n"


def run_flow(cli: Cli, tmp_path: Path, flow_id: str, tasks: str, *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / f"{flow_id}.yaml"
    path.write_text(HEAD.format(id=flow_id) + tasks)
    deployed = cli("flow", "deploy", str(path))
    assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
    return cli.execute("tests.storage", flow_id, *args)


def outputs(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    found = runs(execution, task_id)
    assert found, f"no run of {task_id}"
    result: dict[str, Any] = found[0]["outputs"]
    return result


def read(cli: Cli, execution: dict[str, Any], uri: str) -> str:
    result = cli("executions", "file", execution["id"], uri)
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.stdout)


WRITE_LINES = """  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "{{ range(1, 6) | join('\\n') }}\\n"
    extension: .txt
"""


def test_write_size_reverse_and_concat_with_a_separator(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        WRITE_LINES
        + """  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.write.uri }}"
  - id: reverse
    type: io.kestra.core.tasks.storages.Reverse
    from: "{{ outputs.write.uri }}"
    separator: ";"
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files:
      - "{{ outputs.write.uri }}"
      - "{{ outputs.reverse.uri }}"
    separator: "|"
    extension: .csv
"""
    )
    code, execution = run_flow(cli, tmp_path, "basics", tasks)
    assert code == 0, execution
    written = outputs(execution, "write")["uri"]
    assert written.startswith("kestra:///tests/storage/basics/executions/") and written.endswith(".txt")
    assert read(cli, execution, written) == "1\n2\n3\n4\n5\n6\n"
    assert outputs(execution, "size") == {"size": 12}
    reversed_uri = outputs(execution, "reverse")["uri"]
    assert reversed_uri.endswith(".txt") and read(cli, execution, reversed_uri) == "6;5;4;3;2;1;"
    concat = outputs(execution, "concat")["uri"]
    assert concat.endswith(".csv")
    assert read(cli, execution, concat) == "1\n2\n3\n4\n5\n6\n|6;5;4;3;2;1;|"


def test_concat_takes_a_json_array_rendered_from_outputs(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        WRITE_LINES
        + """  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.write.uri }}"
    rows: 4
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{ outputs.split.uris | json }}"
"""
    )
    code, execution = run_flow(cli, tmp_path, "concat_json", tasks)
    assert code == 0, execution
    assert read(cli, execution, outputs(execution, "concat")["uri"]) == "1\n2\n3\n4\n5\n6\n"


def split_flow(setting: str) -> str:
    return (
        WRITE_LINES
        + f"""  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{{{ outputs.write.uri }}}}"
    {setting}
"""
    )


def test_split_by_rows_partitions_and_bytes(cli: Cli, tmp_path: Path) -> None:
    expected = {
        "rows: 4": ["1\n2\n3\n4\n", "5\n6\n"],
        "partitions: 4": ["1\n5\n", "2\n6\n", "3\n", "4\n"],
        "bytes: 5": ["1\n2\n3\n", "4\n5\n6\n"],
        "rows: 3\n    separator: ','": ["1,2,3,", "4,5,6,"],
    }
    for index, (setting, parts) in enumerate(expected.items()):
        code, execution = run_flow(cli, tmp_path, f"split{index}", split_flow(setting))
        assert code == 0, execution
        uris = outputs(execution, "split")["uris"]
        assert [read(cli, execution, uri) for uri in uris] == parts, setting
        assert all(uri.endswith(".txt") for uri in uris)


def test_split_without_a_size_is_refused_at_deploy(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD.format(id="bad") + split_flow("separator: ','") + split_flow("rows: 0").replace("split", "s2"))
    result = cli("flow", "validate", str(path))
    assert result.exit_code != 0
    assert "one of bytes, partitions or rows is required" in result.stdout + result.stderr
    assert "rows: must be a whole number >= 1, not `0`" in result.stdout + result.stderr


def test_delete_reports_what_it_did_and_errors_on_missing_only_when_asked(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        WRITE_LINES
        + """  - id: delete
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.write.uri }}"
  - id: again
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.write.uri }}"
  - id: strict
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.write.uri }}"
    errorOnMissing: true
"""
    )
    code, execution = run_flow(cli, tmp_path, "delete", tasks)
    uri = outputs(execution, "write")["uri"]
    assert code == 1 and state(execution) == "FAILED"
    assert outputs(execution, "delete") == {"uri": uri, "deleted": True}
    assert outputs(execution, "again") == {"uri": uri, "deleted": False}
    assert state(runs(execution, "strict")[0]) == "FAILED"
    logs = cli("executions", "logs", execution["id"])
    assert f"Unable to find file '{uri}'" in logs.stdout
    assert cli("executions", "file", execution["id"], uri).exit_code != 0


def test_delete_cannot_reach_another_namespace(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        "id: other\nnamespace: tests.elsewhere\ntasks:\n"
        "  - id: w\n    type: io.kestra.plugin.core.storage.Write\n    content: keep me\n"
    )
    assert cli("flow", "deploy", str(other)).exit_code == 0
    _, kept = cli.execute("tests.elsewhere", "other")
    uri = outputs(kept, "w")["uri"]
    tasks = f"  - id: delete\n    type: io.kestra.plugin.core.storage.Delete\n    uri: '{uri}'\n"
    code, execution = run_flow(cli, tmp_path, "intruder", tasks)
    assert code == 1
    assert "does not belong to the namespace tests.storage" in cli("executions", "logs", execution["id"]).stdout
    assert read(cli, kept, uri) == "keep me"


ITEMS = """  - id: items
    type: io.kestra.plugin.jdbc.duckdb.Query
    sql: SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (1, 'c'), (3, NULL), (2, 'd')) AS t(id, name)
    fetchType: STORE
"""


def test_deduplicate_items_keeps_the_last_of_each_key_in_file_order(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        ITEMS
        + """  - id: dedup
    type: io.kestra.plugin.core.storage.DeduplicateItems
    from: "{{ outputs.items.uri }}"
    expr: "{{ id }}"
"""
    )
    code, execution = run_flow(cli, tmp_path, "dedup", tasks)
    assert code == 0, cli("executions", "logs", execution["id"]).stdout
    result = outputs(execution, "dedup")
    assert {k: v for k, v in result.items() if k != "uri"} == {
        "numKeys": 3,
        "processedItemsTotal": 5,
        "droppedItemsTotal": 2,
    }
    assert read(cli, execution, result["uri"]) == '{id:1,name:"c"}\n{id:3,name:null}\n{id:2,name:"d"}\n'


def filter_flow(condition: str, extra: str = "") -> str:
    return (
        ITEMS
        + f"""  - id: filter
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{{{ outputs.items.uri }}}}"
    filterCondition: "{condition}"
{extra}"""
    )


def test_filter_items_includes_or_excludes_matching_records(cli: Cli, tmp_path: Path) -> None:
    code, execution = run_flow(cli, tmp_path, "include", filter_flow("{{ id == 1 }}"))
    assert code == 0
    result = outputs(execution, "filter")
    assert (result["processedItemsTotal"], result["droppedItemsTotal"]) == (5, 3)
    assert read(cli, execution, result["uri"]) == '{id:1,name:"a"}\n{id:1,name:"c"}\n'
    code, execution = run_flow(cli, tmp_path, "exclude", filter_flow("{{ id }}", "    filterType: EXCLUDE\n"))
    assert code == 0
    assert outputs(execution, "filter")["droppedItemsTotal"] == 5


def test_filter_items_on_an_error_fails_includes_or_excludes(cli: Cli, tmp_path: Path) -> None:
    broken = "{{ 10 / (id - 3) != 0 }}"  # the record whose id is 3 divides by zero
    code, execution = run_flow(cli, tmp_path, "fail", filter_flow(broken))
    assert code == 1 and state(runs(execution, "filter")[0]) == "FAILED"
    for behavior, kept in (("INCLUDE", 5), ("EXCLUDE", 4)):
        extra = f"    errorOrNullBehavior: {behavior}\n"
        code, execution = run_flow(cli, tmp_path, behavior.lower(), filter_flow(broken, extra))
        assert code == 0, cli("executions", "logs", execution["id"]).stdout
        result = outputs(execution, "filter")
        assert result["processedItemsTotal"] - result["droppedItemsTotal"] == kept


def test_filter_items_refuses_an_unknown_filter_type(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD.format(id="bad") + filter_flow("{{ true }}", "    filterType: KEEP\n"))
    result = cli("flow", "validate", str(path))
    assert result.exit_code != 0
    assert "filterType: must be one of INCLUDE, EXCLUDE, not `KEEP`" in result.stdout + result.stderr


def test_purge_current_execution_files_deletes_them_all(cli: Cli, tmp_path: Path) -> None:
    tasks = (
        WRITE_LINES
        + """  - id: copy
    type: io.kestra.plugin.core.storage.Concat
    files: ["{{ outputs.write.uri }}"]
  - id: purge
    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
"""
    )
    code, execution = run_flow(cli, tmp_path, "purge", tasks)
    assert code == 0
    assert sorted(outputs(execution, "purge")["uris"]) == sorted(
        [outputs(execution, "write")["uri"], outputs(execution, "copy")["uri"]]
    )
    listing = cli("executions", "files", execution["id"])
    assert outputs(execution, "write")["uri"] not in listing.stdout


def test_local_files_inside_a_working_directory(cli: Cli, tmp_path: Path) -> None:
    tasks = """  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: inputs
        type: io.kestra.core.tasks.storages.LocalFiles
        inputs:
          hello.txt: "Hello {{ flow.id }}"
          out/data.csv: "a,b"
      - id: shell
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat hello.txt > out/copy.txt
      - id: outputs
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - out/*
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.outputs.uris['out/copy.txt'] }}"
"""
    code, execution = run_flow(cli, tmp_path, "local", tasks)
    assert code == 0, cli("executions", "logs", execution["id"]).stdout
    uris = outputs(execution, "outputs")["uris"]
    assert sorted(uris) == ["out/copy.txt", "out/data.csv"]
    assert read(cli, execution, uris["out/copy.txt"]) == "Hello local"
    assert read(cli, execution, uris["out/data.csv"]) == "a,b"
    assert outputs(execution, "show")["value"] == uris["out/copy.txt"]


def test_templated_task_renders_its_spec_and_runs_it(cli: Cli, tmp_path: Path) -> None:
    tasks = """  - id: templated
    type: io.kestra.plugin.core.templating.TemplatedTask
    spec: |
      type: io.kestra.plugin.core.debug.Return
      format: "{{ '{{' }} flow.id {{ '}}' }} says {{ inputs.word }}"
  - id: log
    type: io.kestra.core.tasks.templating.TemplatedTask
    spec: |
      type: io.kestra.plugin.core.log.Log
      message: "logged {{ outputs.templated.value }}"
"""
    path = tmp_path / "templated.yaml"
    head = HEAD.format(id="templated").replace("tasks:", "inputs:\n  - id: word\n    type: STRING\ntasks:")
    path.write_text(head + tasks)
    assert cli("flow", "deploy", str(path)).exit_code == 0
    code, execution = cli.execute("tests.storage", "templated", "--input", "word=hi")
    assert code == 0, cli("executions", "logs", execution["id"]).stdout
    assert outputs(execution, "templated") == {"value": "templated says hi"}
    assert "logged templated says hi" in cli("executions", "logs", execution["id"]).stdout


def test_templated_task_refuses_a_flowable_a_templated_or_an_invalid_spec(cli: Cli, tmp_path: Path) -> None:
    specs = {
        "flowable": "type: io.kestra.plugin.core.flow.Sequential\n"
        + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x",
        "nested": "type: io.kestra.plugin.core.templating.TemplatedTask\nspec: x",
        "invalid": "type: io.kestra.plugin.core.log.Log",
        "unknown": "type: io.kestra.plugin.core.log.Nope",
    }
    reasons = {
        "flowable": "The templated task must be a runnable task",
        "nested": "cannot be of type 'io.kestra.plugin.core.templating.TemplatedTask'",
        "invalid": "message: required",
        "unknown": "unknown task type `io.kestra.plugin.core.log.Nope`",
    }
    for name, spec in specs.items():
        tasks = f"  - id: t\n    type: io.kestra.plugin.core.templating.TemplatedTask\n    spec: {json.dumps(spec)}\n"
        code, execution = run_flow(cli, tmp_path, name, tasks)
        assert code == 1
        assert reasons[name] in cli("executions", "logs", execution["id"]).stdout, name


def test_reversed_lines_across_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from kestractl.tasks import storage

    monkeypatch.setattr(storage, "BLOCK", 3)
    for text in ["", "\n", "a", "a\n", "a\nb", "ab\r\ncd\r\n", "one\ntwo\n\nthree\nfour\n", "\n\nx\n\n"]:
        expected = text.replace("\r\n", "\n").split("\n")
        if text.endswith("\n"):
            expected.pop()
        got = [line.decode() for line in storage.reversed_lines(io.BytesIO(text.encode()))]
        assert got == ([] if not text else expected[::-1]), repr(text)


def test_local_files_refuses_outputs_that_are_not_globs(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    tasks = "  - id: lf\n    type: io.kestra.plugin.core.storage.LocalFiles\n    inputs: [a]\n    outputs: {x: 1}\n"
    path.write_text(HEAD.format(id="bad") + tasks)
    result = cli("flow", "validate", str(path))
    assert result.exit_code != 0
    assert "inputs: must be a map of file name to content" in result.stdout + result.stderr
    assert "outputs: must be a list of strings" in result.stdout + result.stderr
