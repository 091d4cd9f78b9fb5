"""Kestra's test-suite YAML (`TestSuite`, `UnitTest`, `Fixtures`, `TaskFixture`, `Assertion`) read into objects.

A file that does not follow the shape is refused with its first problem as one `file:line: path: reason` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kestractl.errors import ValidationError
from kestractl.model import State
from kestractl.parser import _line, load_yaml, to_plain

UNIT_TEST = "io.kestra.core.tests.flow.UnitTest"
OPERATORS = (
    "equalTo",
    "notEqualTo",
    "contains",
    "startsWith",
    "endsWith",
    "greaterThan",
    "greaterThanOrEqualTo",
    "lessThan",
    "lessThanOrEqualTo",
    "in",
    "notIn",
    "isNull",
    "isNotNull",
)
# Kestra 0.23's first names of two operators, still read.
OPERATOR_ALIASES = {"equalsTo": "equalTo", "notEqualsTo": "notEqualTo"}
SUITE_KEYS = ("id", "namespace", "flowId", "description", "disabled", "testCases")
CASE_KEYS = ("id", "type", "description", "disabled", "fixtures", "assertions")
FIXTURE_KEYS = ("inputs", "files", "trigger", "tasks")
TASK_FIXTURE_KEYS = ("id", "state", "outputs", "value", "description")
T = TypeVar("T")
ASSERTION_KEYS = ("value", "taskId", "description", "errorMessage", *OPERATORS, *OPERATOR_ALIASES)


@dataclass
class TaskFixture:
    """A mocked task: its runs end with `state` and `outputs` without running (`value`: only the run of that
    ForEach value)."""

    id: str
    state: State = State.SUCCESS
    outputs: dict[str, Any] | None = None
    value: str | None = None
    description: str | None = None

    def to_api(self) -> dict[str, Any]:
        found = {"id": self.id, "state": self.state.value, "outputs": self.outputs, "value": self.value}
        return {k: v for k, v in {**found, "description": self.description}.items() if v is not None}


@dataclass
class Fixtures:
    inputs: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # namespace files of the flow's namespace: path → content
    trigger: dict[str, Any] | None = None
    tasks: list[TaskFixture] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        tasks = [t.to_api() for t in self.tasks]
        return {"inputs": self.inputs, "files": self.files, "trigger": self.trigger, "tasks": tasks}


@dataclass
class Assertion:
    value: Any  # usually a `{{ expression }}`, rendered against the ended execution
    operators: dict[str, Any]  # operator → expected, in the order written
    task_id: str | None = None
    description: str | None = None
    error_message: str | None = None


@dataclass
class UnitTest:
    __test__ = False  # not a pytest class

    id: str
    type: str = UNIT_TEST
    description: str | None = None
    disabled: bool = False
    fixtures: Fixtures = field(default_factory=Fixtures)
    assertions: list[Assertion] = field(default_factory=list)


@dataclass
class TestSuite:
    __test__ = False

    id: str
    namespace: str
    flow_id: str
    test_cases: list[UnitTest]
    description: str | None = None
    origin: str = "<test>"


# How one item of a list is read: (reader, item, the list, the item's path, its index).
Build = Callable[["_Reader", Any, Any, str, int], T]


class _Reader:
    """Reads one document, raising its first problem with the file and line."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, container: Any, key: str | int | None, path: str, reason: str) -> ValidationError:
        line = _line(container, key)
        where = f"{self.origin}:{line}" if line else self.origin
        return ValidationError(f"{where}: {path}: {reason}" if path else f"{where}: {reason}")

    def mapping(self, data: Any, path: str, keys: tuple[str, ...], parent: Any = None, key: Any = None) -> Any:
        if not isinstance(data, dict):
            raise self.fail(parent if parent is not None else data, key, path, "expected a map")
        for name in data:
            if name not in keys:
                raise self.fail(data, name, f"{path}.{name}".lstrip("."), "unknown property")
        return data

    def text(self, data: Any, key: str, path: str, required: bool = True) -> str | None:
        value = data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise self.fail(data, key, f"{path}.{key}".lstrip("."), "required" if value is None else "expected text")
        return str(value)

    def items(self, data: Any, key: str, path: str, required: bool = False) -> list[Any]:
        value = data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not value:
            raise self.fail(data, key, f"{path}.{key}".lstrip("."), "expected a non-empty list")
        return value

    def each(self, data: Any, key: str, path: str, build: Build[T], required: bool = False) -> list[T]:
        """`build(reader, item, list, path, index)` for every item of the list at `key`."""
        items = self.items(data, key, path, required)
        return [build(self, item, data[key], f"{path}.{key}[{i}]".lstrip("."), i) for i, item in enumerate(items)]

    def flag(self, data: Any, key: str, path: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(data, key, f"{path}.{key}", "expected true or false")
        return value

    def plain_map(self, data: Any, key: str, path: str) -> dict[str, Any]:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.fail(data, key, f"{path}.{key}", "expected a map")
        return dict(to_plain(value or {}))


def parse_suite(text: str, origin: str = "<test>") -> TestSuite:
    """One test suite from YAML text; a ValidationError names the first problem's file and line."""
    reader = _Reader(origin)
    data = reader.mapping(load_yaml(text, origin), "", SUITE_KEYS)
    cases = reader.each(data, "testCases", "", _case, required=True)
    ids = [c.id for c in cases]
    for index, case_id in enumerate(ids):
        if case_id in ids[:index]:
            raise reader.fail(data["testCases"], index, f"testCases[{index}].id", f"`{case_id}` is used twice")
    suite_id, namespace, flow_id = (reader.text(data, key, "") for key in ("id", "namespace", "flowId"))
    assert suite_id is not None and namespace is not None and flow_id is not None
    return TestSuite(suite_id, namespace, flow_id, cases, reader.text(data, "description", "", False), origin)


def _case(reader: _Reader, data: Any, parent: Any, path: str, index: int) -> UnitTest:
    data = reader.mapping(data, path, CASE_KEYS, parent, index)
    case_type = reader.text(data, "type", path, False) or UNIT_TEST
    if case_type != UNIT_TEST:
        raise reader.fail(data, "type", f"{path}.type", f"unknown type `{case_type}`, expected {UNIT_TEST}")
    case_id = reader.text(data, "id", path)
    assert case_id is not None
    return UnitTest(
        id=case_id,
        type=case_type,
        description=reader.text(data, "description", path, False),
        disabled=reader.flag(data, "disabled", path),
        fixtures=_fixtures(reader, data, path),
        assertions=reader.each(data, "assertions", path, _assertion),
    )


def _fixtures(reader: _Reader, case: Any, path: str) -> Fixtures:
    if case.get("fixtures") is None:
        return Fixtures()
    path += ".fixtures"
    data = reader.mapping(case["fixtures"], path, FIXTURE_KEYS, case, "fixtures")
    files = reader.plain_map(data, "files", path)
    for name, content in files.items():
        if not isinstance(content, str):
            raise reader.fail(data["files"], name, f"{path}.files.{name}", "expected the file's content as text")
    trigger = reader.plain_map(data, "trigger", path) or None
    tasks = reader.each(data, "tasks", path, _task_fixture)
    return Fixtures(reader.plain_map(data, "inputs", path), files, trigger, tasks)


def _task_fixture(reader: _Reader, data: Any, parent: Any, path: str, index: int) -> TaskFixture:
    data = reader.mapping(data, path, TASK_FIXTURE_KEYS, parent, index)
    state = reader.text(data, "state", path, False) or State.SUCCESS.value
    if state not in State.__members__ or not State(state).is_terminated():
        raise reader.fail(data, "state", f"{path}.state", f"`{state}` is not an end state (SUCCESS, FAILED …)")
    task_id = reader.text(data, "id", path)
    assert task_id is not None
    outputs = reader.plain_map(data, "outputs", path) if "outputs" in data else None
    value = reader.text(data, "value", path, False)
    return TaskFixture(task_id, State(state), outputs, value, reader.text(data, "description", path, False))


def _assertion(reader: _Reader, data: Any, parent: Any, path: str, index: int) -> Assertion:
    data = reader.mapping(data, path, ASSERTION_KEYS, parent, index)
    if "value" not in data:
        raise reader.fail(data, None, f"{path}.value", "required")
    operators = {OPERATOR_ALIASES.get(k, k): to_plain(v) for k, v in data.items() if k not in ASSERTION_KEYS[:4]}
    for name in ("in", "notIn"):
        if name in operators and not isinstance(operators[name], list):
            raise reader.fail(data, name, f"{path}.{name}", "expected a list")
    return Assertion(
        value=to_plain(data["value"]),
        operators=operators,
        task_id=reader.text(data, "taskId", path, False),
        description=reader.text(data, "description", path, False),
        error_message=reader.text(data, "errorMessage", path, False),
    )


def read_suites(paths: list[Path]) -> list[TestSuite]:
    """Every test suite of the files, and of the `*.yml`/`*.yaml` below each folder (several per file with `---`)."""
    from kestractl.deploy import collect_files, read_documents

    docs, problems = read_documents(collect_files(paths))
    if problems:
        raise ValidationError(problems[0])
    return [parse_suite(text, origin) for origin, text in docs]
