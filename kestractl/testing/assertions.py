"""Kestra's assertion operators (`Assertion.run`): each operator written yields one `AssertionResult`.

The value is rendered typed (`{{ outputs.t.count }}` stays a number). `equalTo`/`notEqualTo` compare typed values,
or their text when one side is text (YAML's `equalTo: 200` matches a rendered "200"); the string operators and
`in`/`notIn` compare text; the numeric ones parse the value as a number. A value that cannot be rendered, or a
number that cannot be parsed, is an `AssertionRunError`: the test case ends ERROR, as in Kestra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kestractl.errors import KestraError
from kestractl.expressions import render_typed, render_value, to_text
from kestractl.testing.suite import Assertion


class AssertionRunError(Exception):
    """An assertion that could not be evaluated (Kestra's `AssertionRunError`: message and details)."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass
class AssertionResult:
    operator: str
    expected: Any
    actual: Any
    is_success: bool
    task_id: str | None = None
    description: str | None = None
    error_message: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "expected": self.expected,
            "actual": self.actual,
            "isSuccess": self.is_success,
            "taskId": self.task_id,
            "description": self.description,
            "errorMessage": self.error_message,
        }


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(to_text(value))
    except ValueError:
        raise AssertionRunError(f"Could not parse value as a Double: '{to_text(value)}'") from None


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) != isinstance(actual, str) and actual is not None:
        return to_text(expected) == to_text(actual)
    return bool(expected == actual)


def _text_in(expected: list[Any], actual: Any) -> bool:
    return actual is not None and to_text(actual) in [to_text(item) for item in expected]


# operator → (check(expected, actual), Kestra's message when it fails: query, expected, actual)
CHECKS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "equalTo": (_equal, "expected '{0}' to equal '{1}' but was '{2}'"),
    "notEqualTo": (lambda e, a: not _equal(e, a), "expected '{0}' to not equal '{1}'"),
    "contains": (lambda e, a: to_text(e) in to_text(a), "expected '{0}' to contain '{1}' but was '{2}'"),
    "startsWith": (lambda e, a: to_text(a).startswith(to_text(e)), "expected '{0}' to start with '{1}' but was '{2}'"),
    "endsWith": (lambda e, a: to_text(a).endswith(to_text(e)), "expected '{0}' to end with '{1}' but was '{2}'"),
    "greaterThan": (lambda e, a: _number(a) > _number(e), "expected '{0}' to be greater than '{1}' but was '{2}'"),
    "greaterThanOrEqualTo": (
        lambda e, a: _number(a) >= _number(e),
        "expected '{0}' to be greater than or equal to '{1}' but was '{2}'",
    ),
    "lessThan": (lambda e, a: _number(a) < _number(e), "expected '{0}' to be less than '{1}' but was '{2}'"),
    "lessThanOrEqualTo": (
        lambda e, a: _number(a) <= _number(e),
        "expected '{0}' to be less than or equal to '{1}' but was '{2}'",
    ),
    "in": (_text_in, "expected '{0}' to be in '{1}' but was '{2}'"),
    "notIn": (lambda e, a: not _text_in(e, a), "expected '{0}' to not be in '{1}' but was '{2}'"),
    "isNull": (lambda e, a: (a is None) == bool(e), "expected '{0}' to be null but was '{2}'"),
    "isNotNull": (lambda e, a: (a is not None) == bool(e), "expected '{0}' to be not null but was 'null'"),
}


def _render(value: Any, variables: Mapping[str, Any], what: str) -> Any:
    try:
        return render_typed(value, variables) if isinstance(value, str) else render_value(value, variables)
    except KestraError as exc:
        raise AssertionRunError(f"Could not evaluate assertion {what}", exc.message) from None


def run_assertion(assertion: Assertion, variables: Mapping[str, Any]) -> list[AssertionResult]:
    """One result per operator written, in order; none written is an AssertionRunError."""
    if not assertion.operators:
        raise AssertionRunError("no assertion to run found", f"value: {assertion.value}")
    query = to_text(assertion.value)
    actual = _render(assertion.value, variables, f"value '{query}'")
    return [_result(assertion, op, _render(e, variables, op), actual, query) for op, e in assertion.operators.items()]


def _result(assertion: Assertion, operator: str, expected: Any, actual: Any, query: str) -> AssertionResult:
    check, message = CHECKS[operator]
    try:
        success = check(expected, actual)
    except AssertionRunError as exc:
        raise AssertionRunError(f"Could not evaluate assertion {operator} on '{query}'", exc.message) from None
    error = None
    if not success:
        error = assertion.error_message or message.format(query, to_text(expected), to_text(actual))
    return AssertionResult(operator, expected, actual, success, assertion.task_id, assertion.description, error)
