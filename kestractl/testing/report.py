"""A suite run's results for people (each case and assertion, expected against actual) and for CI (JUnit XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from kestractl.expressions import to_text
from kestractl.testing.assertions import AssertionResult
from kestractl.testing.run import TestSuiteRunResult, UnitTestResult

MARKS = {"SUCCESS": "PASS ", "FAILED": "FAIL ", "ERROR": "ERROR", "SKIPPED": "SKIP "}
SUMMARY = {"SUCCESS": "passed", "FAILED": "failed", "ERROR": "error(s)", "SKIPPED": "skipped"}


def _shown(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else to_text(value)


def _assertion_lines(result: AssertionResult) -> list[str]:
    about = " ".join(f"[{x}]" for x in (result.task_id, result.description) if x)
    mark = "ok  " if result.is_success else "FAIL"
    line = f"      {mark} {result.operator}: expected {_shown(result.expected)}, actual {_shown(result.actual)}"
    lines = [f"{line} {about}".rstrip()]
    if result.error_message:
        lines.append(f"           {result.error_message}")
    return lines


def _case_lines(case: UnitTestResult) -> list[str]:
    ended = f", execution {case.execution_state}" if case.execution_state else ""
    lines = [f"  {MARKS[case.state]} {case.test_id}  ({case.state}{ended}, {case.seconds:.2f}s)"]
    for error in case.errors:
        details = f": {error['details']}" if error.get("details") else ""
        lines.append(f"      error: {error['message']}{details}")
    for result in case.assertion_results:
        lines += _assertion_lines(result)
    if case.state != "SUCCESS":
        lines += [f"      log: {line}" for line in case.error_logs]
    return lines


def text_report(runs: list[TestSuiteRunResult]) -> str:
    """Every suite, case and assertion, then one summary line."""
    lines: list[str] = []
    for run in runs:
        suite = run.suite
        lines.append(f"{suite.id} (flow {suite.namespace}.{suite.flow_id}, {suite.origin}): {run.state}")
        for case in run.results:
            lines += _case_lines(case)
    counts = Counter(case.state for run in runs for case in run.results)
    total = sum(counts.values())
    summary = ", ".join(f"{counts[s]} {word}" for s, word in SUMMARY.items() if counts[s])
    lines.append(f"{total} test case(s): {summary or 'none'}")
    return "\n".join(lines)


def _junit_case(suite_name: str, case: UnitTestResult) -> ET.Element:
    element = ET.Element("testcase", classname=suite_name, name=case.test_id, time=f"{case.seconds:.3f}")
    if case.state == "SKIPPED":
        ET.SubElement(element, "skipped", message="disabled")
    elif case.state == "ERROR":
        error = ET.SubElement(element, "error", message=case.errors[0]["message"])
        error.text = "\n".join(f"{e['message']}: {e.get('details') or ''}" for e in case.errors) + _logs(case)
    elif case.state == "FAILED":
        failed = [r for r in case.assertion_results if not r.is_success]
        failure = ET.SubElement(element, "failure", message=failed[0].error_message or failed[0].operator)
        failure.text = "\n".join(f"{r.operator}: {r.error_message}" for r in failed) + _logs(case)
    return element


def _logs(case: UnitTestResult) -> str:
    return "".join(f"\nlog: {line}" for line in case.error_logs)


def junit_xml(runs: list[TestSuiteRunResult]) -> bytes:
    """One <testsuite> per suite (named namespace.id), one <testcase> per case."""
    root = ET.Element("testsuites", name="kestractl test")
    for run in runs:
        name = f"{run.suite.namespace}.{run.suite.id}"
        counts = Counter(case.state for case in run.results)
        seconds = sum(case.seconds for case in run.results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(run.results)),
            failures=str(counts["FAILED"]),
            errors=str(counts["ERROR"]),
            skipped=str(counts["SKIPPED"]),
            time=f"{seconds:.3f}",
            timestamp=run.start_date or "",
        )
        suite.extend(_junit_case(name, case) for case in run.results)
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text
