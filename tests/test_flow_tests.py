"""`kestractl test`: Kestra's flow unit tests (test-suite YAML, fixtures, assertions) from the CLI and the server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

from kestractl.testing.assertions import AssertionRunError, run_assertion
from kestractl.testing.suite import Assertion

ROOT = Path(__file__).parent.parent

FLOW = """
id: orders
namespace: qa.unit
inputs:
  - id: customer
    type: STRING
    defaults: alice
tasks:
  - id: fetch
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - touch "{marker}"
      - exit 1
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{{{ inputs.customer }}}}, {{{{ outputs.fetch.vars.count }}}} orders"
"""

SUITE = """
id: orders_test
namespace: qa.unit
flowId: orders
testCases:
  - id: passes
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      inputs: {customer: bob}
      tasks:
        - id: fetch
          outputs: {vars: {count: 3}}
    assertions:
      - value: "{{ outputs.greet.value }}"
        equalTo: hello bob, 3 orders
        contains: bob
      - value: "{{ outputs.fetch.vars.count }}"
        greaterThanOrEqualTo: 3
        lessThan: 4
        in: [3, 7]
  - id: fails
    fixtures:
      tasks:
        - id: fetch
          outputs: {vars: {count: 1}}
    assertions:
      - value: "{{ outputs.greet.value }}"
        equalTo: hello bob, 3 orders
        taskId: greet
      - value: "{{ outputs.greet.value }}"
        startsWith: hello
  - id: errs
    fixtures:
      tasks:
        - id: fetch
          outputs: {vars: {count: 1}}
    assertions:
      - value: "{{ outputs.missing.value }}"
        isNotNull: true
  - id: off
    disabled: true
    assertions:
      - value: "{{ 1 }}"
        equalTo: 2
"""


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    """A flows folder (its shell task touches `marker`, then fails) and a test-suite folder."""
    flows, tests = tmp_path / "project" / "flows", tmp_path / "project" / "tests"
    flows.mkdir(parents=True)
    tests.mkdir()
    marker = tmp_path / "project" / "marker"
    (flows / "orders.yaml").write_text(FLOW.format(marker=marker))
    (tests / "orders_test.yaml").write_text(SUITE)
    return {"flows": flows, "tests": tests, "marker": marker, "suite": tests / "orders_test.yaml"}


def _by_id(document: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {case["testId"]: case for suite in document for case in suite["results"]}


def test_pass_fail_error_skip_with_json_and_junit(cli: Cli, project: dict[str, Path], tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = cli("test", str(project["tests"]), "--flows", str(project["flows"]), "--json", "--junit", str(junit))
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert [s["state"] for s in document] == ["ERROR"]
    assert document[0]["testSuiteId"] == "orders_test" and document[0]["flowId"] == "orders"
    cases = _by_id(document)
    assert {k: c["state"] for k, c in cases.items()} == {
        "passes": "SUCCESS",
        "fails": "FAILED",
        "errs": "ERROR",
        "off": "SKIPPED",
    }
    passed = cases["passes"]["assertionResults"]
    assert [(r["operator"], r["isSuccess"]) for r in passed] == [
        ("equalTo", True),
        ("contains", True),
        ("greaterThanOrEqualTo", True),
        ("lessThan", True),
        ("in", True),
    ]
    failed = cases["fails"]["assertionResults"][0]
    assert failed["expected"] == "hello bob, 3 orders" and failed["actual"] == "hello alice, 1 orders"
    assert failed["taskId"] == "greet" and not failed["isSuccess"]
    assert "to equal 'hello bob, 3 orders' but was 'hello alice, 1 orders'" in failed["errorMessage"]
    assert cases["fails"]["assertionResults"][1]["isSuccess"]
    assert "Could not evaluate assertion" in cases["errs"]["errors"][0]["message"]
    assert cases["off"]["executionId"] is None and cases["passes"]["executionId"]
    # the readable report went to stderr: each case, each assertion with expected and actual
    assert "FAIL equalTo: expected 'hello bob, 3 orders', actual 'hello alice, 1 orders'" in result.stderr
    assert "4 test case(s): 1 passed, 1 failed, 1 error(s), 1 skipped" in result.stderr
    _check_junit(junit)


def _check_junit(path: Path) -> None:
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    counts = [suite.get(name) for name in ("name", "tests", "failures", "errors", "skipped")]
    assert counts == ["qa.unit.orders_test", "4", "1", "1", "1"]
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases["passes"]) == []
    failure = cases["fails"].find("failure")
    assert failure is not None and "hello alice, 1 orders" in (failure.get("message") or "")
    assert cases["errs"].find("error") is not None and cases["off"].find("skipped") is not None


def test_mocked_tasks_never_run(cli: Cli, project: dict[str, Path]) -> None:
    """The mocked shell task would touch a marker and exit 1: it ends SUCCESS with its fixture's outputs and
    the marker never appears. Unmocked, the same task runs: it touches the marker and fails the execution."""
    result = cli("test", str(project["suite"]), "--flows", str(project["flows"]), "--case", "passes")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "PASS  passes  (SUCCESS, execution SUCCESS" in result.stdout
    assert not project["marker"].exists()
    unmocked = project["tests"] / "unmocked.yaml"
    unmocked.write_text(SUITE.split("testCases:")[0] + UNMOCKED_CASE)
    result = cli("test", str(unmocked), "--flows", str(project["flows"]))
    assert result.exit_code == 1
    assert "execution FAILED" in result.stdout and "exit code 1" in result.stdout
    assert project["marker"].exists()


UNMOCKED_CASE = """testCases:
  - id: runs_for_real
    assertions:
      - value: "{{ tasks.fetch.state }}"
        equalTo: SUCCESS
"""


def test_deployed_flows_and_the_store_untouched(cli: Cli, project: dict[str, Path]) -> None:
    """Without --flows the store's flows are tested; the executions ran in a scratch store, not the user's."""
    missing = cli("test", str(project["suite"]), "--case", "passes")
    assert missing.exit_code == 1 and "flow not found: qa.unit.orders" in missing.stdout
    assert cli("flow", "deploy", str(project["flows"])).exit_code == 0
    result = cli("test", str(project["suite"]), "--case", "passes", "--case", "off")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    listed = cli("executions", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_trigger_files_and_foreach_fixtures(cli: Cli, tmp_path: Path) -> None:
    """`trigger` is the execution's trigger, `files` namespace files, and a task fixture with `value` mocks only
    the run of that ForEach value."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "each.yaml").write_text(EACH_FLOW)
    suite = tmp_path / "each_test.yaml"
    suite.write_text(EACH_SUITE)
    result = cli("test", str(suite), "--flows", str(flows), "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    results = json.loads(result.stdout)[0]["results"][0]["assertionResults"]
    assert [r["actual"] for r in results] == ["from the fixture file", "nightly", "mocked b", "a"]


EACH_FLOW = """
id: each
namespace: qa.unit
tasks:
  - id: content
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('data/input.txt') | trim }}"
  - id: origin
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.source }}"
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
"""

EACH_SUITE = """
id: each_test
namespace: qa.unit
flowId: each
testCases:
  - id: fixtures
    fixtures:
      files:
        data/input.txt: "from the fixture file\\n"
      trigger:
        id: nightly
        type: io.kestra.plugin.core.trigger.Schedule
        variables: {source: nightly}
      tasks:
        - id: item
          value: b
          outputs: {value: mocked b}
    assertions:
      - value: "{{ outputs.content.value }}"
        equalTo: from the fixture file
      - value: "{{ outputs.origin.value }}"
        equalTo: nightly
      - value: "{{ outputs.item.b.value }}"
        equalTo: mocked b
      - value: "{{ outputs.item.a.value }}"
        equalTo: a
"""


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("id: s\nnamespace: n\nflowId: f\ntestCases:\n  - id: c\n    bogus: 1\n", "suite.yaml:6: testCases[0].bogus"),
        ("id: s\nnamespace: [n\n", "suite.yaml:3: expected ','"),
        ("id: s\nnamespace: n\nflowId: f\n", "suite.yaml:1: testCases: expected a non-empty list"),
        ("id: s\nnamespace: n\ntestCases: [{id: c}]\n", "suite.yaml:1: flowId: required"),
        (
            "id: s\nnamespace: n\nflowId: f\ntestCases:\n  - id: c\n    fixtures:\n      tasks:\n        - id: t\n"
            "          state: RUNNING\n",
            "suite.yaml:9: testCases[0].fixtures.tasks[0].state",
        ),
        (
            "id: s\nnamespace: n\nflowId: f\ntestCases:\n  - id: c\n    assertions:\n      - value: x\n        in: 3\n",
            "suite.yaml:8: testCases[0].assertions[0].in: expected a list",
        ),
    ],
)
def test_bad_suite_is_one_line_with_file_and_line(cli: Cli, project: dict[str, Path], text: str, wanted: str) -> None:
    suite = project["tests"] / "suite.yaml"
    suite.write_text(text)
    result = cli("test", str(suite), "--flows", str(project["flows"]))
    assert result.exit_code == 1
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert wanted in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "success"),
    [
        ("equalTo", 200, "200", True),
        ("equalTo", "a", "b", False),
        ("notEqualTo", "a", "b", True),
        ("notEqualTo", 3, 3, False),
        ("contains", "ell", "hello", True),
        ("startsWith", "he", "hello", True),
        ("endsWith", "he", "hello", False),
        ("greaterThan", 2, "2.5", True),
        ("greaterThanOrEqualTo", 3, 2, False),
        ("lessThan", 3, 2, True),
        ("lessThanOrEqualTo", 1, 2, False),
        ("in", ["x", "y"], "y", True),
        ("notIn", ["x", "y"], "y", False),
        ("isNull", True, None, True),
        ("isNull", True, "x", False),
        ("isNotNull", True, "x", True),
        ("isNotNull", True, None, False),
    ],
)
def test_operators(operator: str, expected: Any, actual: Any, success: bool) -> None:
    [result] = run_assertion(Assertion("{{ it }}", {operator: expected}), {"it": actual})
    assert (result.operator, result.expected, result.actual, result.is_success) == (operator, expected, actual, success)
    assert (result.error_message is None) == success


def test_operator_errors() -> None:
    with pytest.raises(AssertionRunError, match="no assertion to run found"):
        run_assertion(Assertion("{{ it }}", {}), {"it": 1})
    with pytest.raises(AssertionRunError, match="Could not evaluate assertion greaterThan"):
        run_assertion(Assertion("{{ it }}", {"greaterThan": 1}), {"it": "many"})


def _post(url: str, body: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-yaml"}
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_server_runs_a_suite(standalone: Any, project: dict[str, Path], cli: Cli) -> None:
    server, _ = standalone
    base = f"http://127.0.0.1:{server.port}"
    status, _ = _post(f"{base}/api/v1/flows", (project["flows"] / "orders.yaml").read_text())
    assert status == 200
    remote = cli("--server", base, "test", str(project["suite"]), "--case", "passes")  # the server's flows
    assert remote.exit_code == 0 and "1 passed" in remote.stdout, remote.stdout + remote.stderr
    status, body = _post(f"{base}/api/v1/main/tests/run", SUITE)
    assert status == 200 and body["state"] == "ERROR" and body["testSuiteId"] == "orders_test"
    assert [c["state"] for c in body["results"]] == ["SUCCESS", "FAILED", "ERROR", "SKIPPED"]
    assert not project["marker"].exists()
    status, body = _post(f"{base}/api/v1/tests?testCases=passes", SUITE)
    assert status == 200 and body["state"] == "SUCCESS" and [c["testId"] for c in body["results"]] == ["passes"]
    status, body = _post(f"{base}/api/v1/tests/run", "id: s\nnamespace: [n\n")
    assert status == 422 and "body:3" in json.dumps(body)
    status, executions = _get(f"{base}/api/v1/executions/search")
    assert status == 200 and executions["total"] == 0  # the cases ran in scratch stores, not the server's


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_readme_example(tmp_path: Path) -> None:
    """README's "Testing your flows" command, run as a user would (a real process): the sample suite passes."""
    command = [sys.executable, "-m", "kestractl", "--home", str(tmp_path / "home"), "test", "sample_tests/"]
    result = subprocess.run(
        [*command, "--flows", "sample_flows/", "--junit", str(tmp_path / "report.xml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 test case(s): 2 passed" in result.stdout
    readme = (ROOT / "README.md").read_text()
    assert "kestractl test sample_tests/ --flows sample_flows/" in readme
    assert (ROOT / "sample_tests" / "orders_report.yaml").read_text() in readme
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"


PARENT_FLOW = """
id: parent
namespace: qa.unit
tasks:
  - id: call_child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: qa.unit
    flowId: orders
  - id: branch
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.call_child.outputs.ok }}"
    then:
      - id: done
        type: io.kestra.plugin.core.debug.Return
        format: "child said {{ outputs.call_child.outputs.ok }}"
"""

PARENT_SUITE = """
id: parent_test
namespace: qa.unit
flowId: parent
testCases:
  - id: subflow_mocked
    fixtures:
      tasks:
        - id: call_child
          outputs: {outputs: {ok: true}}
    assertions:
      - value: "{{ outputs.done.value }}"
        equalTo: child said true
  - id: flowable_fixture
    fixtures:
      tasks:
        - id: branch
    assertions:
      - value: "{{ 1 }}"
        equalTo: 1
  - id: unknown_fixture
    fixtures:
      tasks:
        - id: nope
    assertions:
      - value: "{{ 1 }}"
        equalTo: 1
"""


def test_subflow_mocked_and_fixtures_that_cannot_apply(cli: Cli, project: dict[str, Path]) -> None:
    """A mocked Subflow starts no child (the child's shell task would touch the marker); a fixture on a flowable
    task or on no task of the flow errs its case."""
    (project["flows"] / "parent.yaml").write_text(PARENT_FLOW)
    suite = project["tests"] / "parent_test.yaml"
    suite.write_text(PARENT_SUITE)
    result = cli("test", str(suite), "--flows", str(project["flows"]), "--json")
    assert result.exit_code == 1, result.stderr
    cases = _by_id(json.loads(result.stdout))
    assert cases["subflow_mocked"]["state"] == "SUCCESS", cases["subflow_mocked"]
    assert not project["marker"].exists()
    assert "`branch` is a flowable task" in cases["flowable_fixture"]["errors"][0]["message"]
    assert "`nope` is not a task of flow qa.unit.parent" in cases["unknown_fixture"]["errors"][0]["message"]


def test_flows_folder_that_cannot_be_read(cli: Cli, project: dict[str, Path]) -> None:
    """--flows validates the folder as `flow validate` does: every problem one line, exit 1, nothing run."""
    (project["flows"] / "broken.yaml").write_text("id: broken\nnamespace: qa.unit\ntasks:\n  - id: t\n    type: nope\n")
    result = cli("test", str(project["suite"]), "--flows", str(project["flows"]))
    assert result.exit_code == 1 and result.stdout == ""
    assert "broken.yaml:5" in result.stderr and "Traceback" not in result.stderr
    assert not project["marker"].exists()
