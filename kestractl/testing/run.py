"""Running a test suite: each case one execution in a scratch store of its own, its mocked tasks never run.

The scratch store (a temporary home: SQLite file and storage folder, deleted afterwards) holds the flows of the
project and its namespace's files, then the case's fixture files; the user's store is only read, never written,
so a case cannot change it nor another case (Kestra's "each test case will not affect the others").
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kestractl.config import Home
from kestractl.engine.loop import Mock
from kestractl.engine.runner import Runner
from kestractl.engine.worker import AttemptResult
from kestractl.model import Execution, Flow, LogEntry, TaskRun, iso, utcnow
from kestractl.namespace_files import NamespaceFiles
from kestractl.storage.local import LocalStorage
from kestractl.store import FlowRow, open_store
from kestractl.tasks.base import ExecutableTask, RunnableTask
from kestractl.testing.assertions import AssertionResult, AssertionRunError, run_assertion
from kestractl.testing.suite import TaskFixture, TestSuite, UnitTest

# Kestra's label of a test's execution (`Label.TEST`).
TEST_LABEL = ("system.test", "true")
# Kestra's `TestState`, worst first: a suite has the worst state of its cases (all SKIPPED: SKIPPED).
WORST_FIRST = ("ERROR", "FAILED", "SUCCESS", "SKIPPED")


@dataclass
class Project:
    """What a suite's flow may use: every flow (namespace, id, YAML) and a namespace's files (path → bytes)."""

    flows: list[tuple[str, str, str]]
    files: Callable[[str], dict[str, bytes]] = lambda namespace: {}


def project_of(rows: list[FlowRow], paths: Callable[[str], list[str]], read: Callable[[str, str], bytes]) -> Project:
    """A deployed project: the store's latest flows, and the namespace files `paths`/`read` give (a store's own,
    or a server's through its API), read once for all the cases."""
    return Project(
        [(row.namespace, row.id, row.source) for row in rows],
        functools.cache(lambda namespace: {path: read(namespace, path) for path in paths(namespace)}),
    )


@dataclass
class UnitTestResult:
    test_id: str
    test_type: str
    state: str
    fixtures: dict[str, Any]
    assertion_results: list[AssertionResult] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # Kestra's AssertionRunError: message, details
    execution_id: str | None = None
    execution_state: str | None = None  # for the report: how the test's execution ended
    error_logs: list[str] = field(default_factory=list)  # for the report: why it ended so
    seconds: float = 0.0

    def to_api(self) -> dict[str, Any]:
        return {
            "testId": self.test_id,
            "testType": self.test_type,
            "state": self.state,
            "assertionResults": [r.to_api() for r in self.assertion_results],
            "errors": self.errors,
            "executionId": self.execution_id,
            "url": None,  # the execution lived in a scratch store, gone once the case ended
            "fixtures": self.fixtures,
        }


@dataclass
class TestSuiteRunResult:
    __test__ = False  # not a pytest class

    suite: TestSuite
    state: str
    start_date: str | None
    end_date: str | None
    results: list[UnitTestResult]

    def to_api(self) -> dict[str, Any]:
        return {
            "id": f"{self.suite.namespace}.{self.suite.id}.{self.start_date}",
            "testSuiteId": self.suite.id,
            "namespace": self.suite.namespace,
            "flowId": self.suite.flow_id,
            "state": self.state,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "results": [r.to_api() for r in self.results],
        }


def worst_state(states: list[str]) -> str:
    return next((s for s in WORST_FIRST if s in states), "SKIPPED")


def run_suite(suite: TestSuite, project: Project, case_ids: list[str] | None = None) -> TestSuiteRunResult:
    """Every case of the suite (or those of `case_ids`), one after the other."""
    start = utcnow()
    cases = [c for c in suite.test_cases if not case_ids or c.id in case_ids]
    results = [run_case(suite, case, project) for case in cases]
    return TestSuiteRunResult(suite, worst_state([r.state for r in results]), iso(start), iso(utcnow()), results)


def run_case(suite: TestSuite, case: UnitTest, project: Project) -> UnitTestResult:
    result = UnitTestResult(case.id, case.type, "SKIPPED", case.fixtures.to_api())
    if case.disabled:
        return result
    started = utcnow()
    try:
        _run_in_scratch(suite, case, project, result)
    except AssertionRunError as exc:
        result.errors.append({"message": exc.message, "details": exc.details})
    except Exception as exc:  # a flow or fixture that cannot run (KestraError), or worse: this case errs, not all
        result.errors.append({"message": getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"})
    result.state = _case_state(result)
    result.seconds = (utcnow() - started).total_seconds()
    return result


def _case_state(result: UnitTestResult) -> str:
    if result.errors:
        return "ERROR"
    return "SUCCESS" if all(r.is_success for r in result.assertion_results) else "FAILED"


def _run_in_scratch(suite: TestSuite, case: UnitTest, project: Project, result: UnitTestResult) -> None:
    with tempfile.TemporaryDirectory(prefix="kestractl-test-") as root:
        home = Home(Path(root)).ensure()
        store, storage = open_store(home.db_path), LocalStorage(home.storage_root)  # never the user's storage URL
        runner = Runner(store, storage, on_log=lambda entry: _keep_errors(entry, result.error_logs))
        try:
            _prepare(runner, suite, case, project)
            ended, flow = _execute(runner, suite, case)
            result.execution_id, result.execution_state = ended.id, ended.state.current.value
            result.assertion_results = _assert(runner, flow, ended, case)
        finally:
            runner.close()
            store.close()


def _keep_errors(entry: LogEntry, kept: list[str]) -> None:
    if entry.level == "ERROR":
        kept.append(f"{entry.task_id or 'execution'}: {entry.message}")


def _prepare(runner: Runner, suite: TestSuite, case: UnitTest, project: Project) -> None:
    """The project's flows and the namespace's files, then the case's fixture files, into the scratch store."""
    with runner.store.transaction():
        for namespace, flow_id, source in project.flows:
            runner.store.save_flow(namespace, flow_id, source)
    files = NamespaceFiles(runner.storage, suite.namespace)
    for path, content in project.files(suite.namespace).items():
        files.put(path, content)
    for path, text in case.fixtures.files.items():
        files.put(path, text.encode("utf-8"))


def _execute(runner: Runner, suite: TestSuite, case: UnitTest) -> tuple[Execution, Flow]:
    flow = runner.flows.get(suite.namespace, suite.flow_id)
    runner.mock = mock_of(flow, case.fixtures.tasks)
    trigger = case.fixtures.trigger
    execution = runner.create_execution(flow, case.fixtures.inputs, [TEST_LABEL], trigger)
    return runner.run(execution.id), flow


def mock_of(flow: Flow, fixtures: list[TaskFixture]) -> Mock:
    """The engine's `Mock` for a case's task fixtures (a Subflow's too: no child is started); a fixture naming no
    task of the flow, or a flowable one (its children are what run), is an error."""
    tasks = flow.tasks_by_id
    for fixture in fixtures:
        if fixture.id not in tasks:
            raise AssertionRunError(f"fixture task `{fixture.id}` is not a task of flow {flow.namespace}.{flow.id}")
        if not isinstance(tasks[fixture.id], RunnableTask | ExecutableTask):
            raise AssertionRunError(
                f"fixture task `{fixture.id}` is a flowable task: only runnable and subflow tasks are mocked"
            )

    def mock(execution: Execution, run: TaskRun) -> AttemptResult | None:
        for fixture in fixtures:
            if fixture.id == run.task_id and fixture.value in (None, run.value):
                return AttemptResult(fixture.state, fixture.outputs)
        return None

    return mock


def _assert(runner: Runner, flow: Flow, ended: Execution, case: UnitTest) -> list[AssertionResult]:
    """Every assertion rendered against the ended execution (its outputs, tasks' states, inputs, trigger …)."""
    variables = runner.contexts.make(flow, ended, flow.tasks_by_id, None, None).variables
    return [result for assertion in case.assertions for result in run_assertion(assertion, variables)]
