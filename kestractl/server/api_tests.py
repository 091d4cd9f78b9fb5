"""Kestra's flow unit tests over HTTP (`TestController`): run a test suite given as YAML, answer its
`TestSuiteRunResult`.

kestractl stores no test suites: `POST /api/v1/tests` (Kestra OSS's experimental endpoint) and
`POST /api/v1/tests/run` take the suite's YAML as the body and run every case (or those of `testCases=`) against
the server's deployed flows and namespace files, each case in a scratch store of its own, never this server's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kestractl.server.executions import Executions
from kestractl.server.http import Request, Response, Router

if TYPE_CHECKING:
    from kestractl.testing.run import TestSuiteRunResult

BASE = "/api/v1/tests"


class TestsApi:
    __test__ = False  # not a pytest class

    def __init__(self, executions: Executions) -> None:
        self.executions = executions

    def add_routes(self, router: Router) -> None:
        router.add("POST", BASE, self.run)
        router.add("POST", BASE + "/run", self.run)

    def run(self, request: Request) -> Response:
        """A suite that cannot be read is a 422 naming its line; cases that fail or err are a 200 result."""
        result = run_posted_suite(self.executions, request.text(), request.params.get("testCases"))
        return Response(body=result.to_api())


def run_posted_suite(executions: Executions, text: str, case_ids: list[str] | None = None) -> TestSuiteRunResult:
    """A suite's YAML (the request's body, the UI's form) run against this server's flows and namespace files."""
    from kestractl.namespace_files import NamespaceFiles
    from kestractl.testing.run import project_of, run_suite
    from kestractl.testing.suite import parse_suite

    suite = parse_suite(text, "body")
    project = project_of(
        executions.store.latest_sources(),
        lambda namespace: NamespaceFiles(executions.storage, namespace).paths(),
        lambda namespace, path: NamespaceFiles(executions.storage, namespace).get(path),
    )
    return run_suite(suite, project, case_ids)
