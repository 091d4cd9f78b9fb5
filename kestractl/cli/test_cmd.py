"""`kestractl test PATH...`: run Kestra's flow unit tests (test-suite YAML) against the deployed flows or a folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kestractl.cli.output import echo, error, print_json
from kestractl.cli.state import handles_errors, state

if TYPE_CHECKING:
    from kestractl.cli.backend import Backend
    from kestractl.testing.run import Project

HELP = (
    "Run flow unit tests (Kestra's test-suite YAML): each case one execution in a scratch store, mocked tasks never "
    "run; exit 0 when every case passes, 1 when one fails or errors.\n\n"
    "Example: kestractl test sample_tests/ --flows sample_flows/ --junit report.xml"
)


@handles_errors
def test(
    paths: Annotated[list[Path], typer.Argument(help="Test-suite files or folders (every *.yml / *.yaml below).")],
    flows: Annotated[
        Path | None,
        typer.Option("--flows", help="Test this folder's flows (not deployed), not the store's."),
    ] = None,
    cases: Annotated[list[str] | None, typer.Option("--case", help="Run only this test case id (repeatable).")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON (a list of Kestra's TestSuiteRunResult).")
    ] = False,
) -> None:
    from kestractl.errors import ValidationError
    from kestractl.testing.report import junit_xml, text_report
    from kestractl.testing.run import run_suite
    from kestractl.testing.suite import read_suites

    try:
        suites = read_suites(paths)
        project = _folder_project(flows) if flows is not None else _backend_project(state.backend())
    except ValidationError as exc:  # a test or flow file that cannot be read: its problems, one line each
        for problem in exc.problems:
            error(problem)
        raise typer.Exit(1) from None
    runs = [run_suite(suite, project, cases) for suite in suites]
    if junit is not None:
        junit.write_bytes(junit_xml(runs))
    echo(text_report(runs), err=as_json)
    if as_json:
        print_json([run.to_api() for run in runs])
    raise typer.Exit(0 if all(run.state in ("SUCCESS", "SKIPPED") for run in runs) else 1)


def _folder_project(folder: Path) -> Project:
    """The flows of a folder, validated, not deployed (CI tests them before they reach any store)."""
    from kestractl.deploy import collect_files, load_flows
    from kestractl.testing.run import Project

    return Project([(flow.namespace, flow.id, flow.source) for flow, _ in load_flows(collect_files([folder]))])


def _backend_project(backend: Backend) -> Project:
    """The deployed flows and namespace files: this machine's store, or the `--server`'s (only read)."""
    from kestractl.testing.run import project_of

    return project_of(backend.sources(), backend.file_paths, backend.file_get)
