"""`/ui/tests`: paste a flow unit test suite (Kestra's test-suite YAML), run it against the deployed flows and
read each case and assertion, expected against actual. The suite is not stored: the page runs it as
`POST /api/v1/tests/run` does, each case in a scratch store."""

from __future__ import annotations

from kestractl.errors import ValidationError
from kestractl.server.api_tests import run_posted_suite
from kestractl.server.http import Request, Response, Router
from kestractl.server.params import param
from kestractl.ui.context import UiContext
from kestractl.ui.render import html_errors, page

STARTER = """id: my_flow_test
namespace: company.team
flowId: my_flow
testCases:
  - id: first_case
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      inputs: {}
      tasks: []        # - id: a_task, outputs: {...}: mocked, never run
    assertions:
      - value: "{{ execution.state }}"
        equalTo: SUCCESS
"""


def add_routes(router: Router, ui: UiContext) -> None:
    router.add("GET", "/ui/tests", html_errors(lambda request: page("tests/page.html", request, source=STARTER)))
    router.add("POST", "/ui/tests", html_errors(lambda request: run_page(ui, request)))


def run_page(ui: UiContext, request: Request) -> Response:
    """The suite's results under the form; a suite that cannot be read is its one-line problem (422)."""
    source = param(request.form()[0], "source") or ""
    try:
        run = run_posted_suite(ui.runner, source)
    except ValidationError as exc:
        return page("tests/page.html", request, 422, source=source, problem=exc.message)
    return page("tests/page.html", request, source=source, run=run)
