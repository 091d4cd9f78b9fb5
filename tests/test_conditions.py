"""Trigger conditions added for Kestra 1.x: PublicHoliday, HasRetryAttempt and MultipleCondition (whose
windows live in the store across executions and restarts), plus the declared properties of every condition."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kestractl.engine.runner import Runner
from kestractl.model import Execution, State
from kestractl.parser import parse_flow
from kestractl.server.scheduler import Scheduler
from kestractl.storage import LocalStorage
from kestractl.store import Store, open_store
from kestractl.triggers.conditions import (
    CONDITIONS,
    PROPERTIES,
    SHORT_NAMES,
    ConditionContext,
    all_met,
    condition_problems,
    properties_of,
)
from kestractl.triggers.flow import window_bounds
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

CONDITION = "io.kestra.plugin.core.condition."


def on(day: str, condition: Mapping[str, object]) -> bool:
    return all_met([condition], ConditionContext(variables={"trigger": {"date": f"{day}T11:00:00+02:00"}}))


def test_public_holiday_knows_bastille_day_and_regional_holidays() -> None:
    holiday = {"type": CONDITION + "PublicHoliday", "country": "FR"}
    assert on("2024-07-14", holiday) and not on("2024-07-15", holiday)
    epiphany = {"type": "io.kestra.core.models.conditions.types.PublicHolidayCondition", "country": "DE"}
    assert not on("2024-01-06", epiphany)
    assert on("2024-01-06", {**epiphany, "subDivision": "BY"})
    assert on("2024-01-06", {**epiphany, "subDivision": "DE-BY"})
    assert on("2024-05-01", {**holiday, "date": "{{ trigger.date }}"})
    assert not on("2024-07-14", {**holiday, "country": "XX"})  # an unknown country is a condition not met


def store_with(tmp_path: Path, database: str, *sources: str) -> tuple[Store, Runner]:
    store = open_store(database)
    for source in sources:
        flow = parse_flow(source)
        store.save_flow(flow.namespace, flow.id, source)
    return store, Runner(store, LocalStorage(tmp_path / "s"))


def run(runner: Runner, flow_id: str, namespace: str = "tests.cond") -> Execution:
    execution = runner.create_execution(runner.flows.get(namespace, flow_id))
    return runner.run(execution.id)


def test_a_schedule_skips_the_days_that_are_not_public_holidays(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    source = """id: holidays
namespace: tests.cond
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 11 * * *"
    recoverMissedSchedules: ALL
    conditions:
      - type: io.kestra.plugin.core.condition.PublicHoliday
        country: FR
"""
    store, runner = store_with(tmp_path, store_url, source)
    scheduler = Scheduler(runner)
    scheduler.tick(datetime(2024, 7, 10, 12, tzinfo=UTC))
    started = scheduler.tick(datetime(2024, 7, 20, 12, tzinfo=UTC))
    assert [e.trigger["variables"]["date"][:10] for e in started if e.trigger] == ["2024-07-14"]


FLAKY = """id: flaky
namespace: tests.cond
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT0S
      maxAttempts: 2
"""
STEADY = """id: steady
namespace: tests.cond
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""


def retry_listener(states: str) -> str:
    return f"""id: on_retry
namespace: tests.cond
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.flowId }}}}"
triggers:
  - id: retried
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.HasRetryAttempt
        {states}
"""


def test_has_retry_attempt_fires_only_for_an_execution_whose_task_was_retried(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    store, runner = store_with(tmp_path, store_url, FLAKY, STEADY, retry_listener("in: [FAILED]"))
    scheduler = Scheduler(runner)
    flaky, steady = run(runner, "flaky"), run(runner, "steady")
    assert len(flaky.task_runs[0].attempts) == 2 and len(steady.task_runs[0].attempts) == 1
    assert [e.flow_id for e in scheduler.on_execution_end(flaky)] == ["on_retry"]
    assert scheduler.on_execution_end(steady) == []
    for states in ("in: [SUCCESS]", "in: [FAILED]\n        notIn: [FAILED]", "notIn: [SUCCESS]"):
        folder = tmp_path / states.replace(" ", "").replace("\n", "")
        _, other = store_with(folder, str(folder / "k.db"), FLAKY, retry_listener(states))
        assert Scheduler(other).on_execution_end(run(other, "flaky")) == [], states


UPSTREAM = """id: {id}
namespace: tests.cond
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.fail }}}}"
"""
LISTENER = """id: listener
namespace: tests.cond
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: childs
triggers:
  - id: multiple-listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
      - id: multiple
        type: io.kestra.plugin.core.condition.MultipleCondition
        window: P1D
        windowAdvance: P0D
        conditions:
          flow-a:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: tests.cond
            flowId: flow-a
          flow-b:
            type: io.kestra.core.models.conditions.types.ExecutionFlowCondition
            namespace: tests.cond
            flowId: flow-b
"""


def test_multiple_condition_waits_for_every_upstream_flow_in_its_window(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    sources = (UPSTREAM.format(id="flow-a"), UPSTREAM.format(id="flow-b"), LISTENER)
    store, runner = store_with(tmp_path, store_url, *sources)

    def ended(flow_id: str, fail: bool = False) -> list[Execution]:
        execution = runner.create_execution(runner.flows.get("tests.cond", flow_id), {"fail": fail})
        return Scheduler(runner).on_execution_end(runner.run(execution.id))  # a new scheduler: state is stored

    assert ended("flow-a") == [] and ended("flow-a") == []
    window = store.condition_window("tests.cond", "listener", "multiple")
    assert window is not None and window.results == {"flow-a": True}
    assert ended("flow-b", fail=True) == []  # filtered by ExecutionStatus before it counts
    started = ended("flow-b")
    assert [e.flow_id for e in started] == ["listener"]
    assert runner.run(started[0].id).state.current == State.SUCCESS
    assert store.condition_window("tests.cond", "listener", "multiple") is None  # reset on success
    assert ended("flow-b") == []
    assert [e.flow_id for e in ended("flow-a")] == ["listener"]


def test_multiple_condition_windows_expire(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    sources = (UPSTREAM.format(id="flow-a"), UPSTREAM.format(id="flow-b"), LISTENER)
    store, runner = store_with(tmp_path, store_url, *sources)
    scheduler = Scheduler(runner)
    scheduler.on_execution_end(run(runner, "flow-a"))
    window = store.condition_window("tests.cond", "listener", "multiple")
    assert window is not None
    with store.transaction():  # as if flow-a had succeeded yesterday
        window.start, window.end = window.start - timedelta(days=1), window.end - timedelta(days=1)
        store.save_condition_window(window)
    assert scheduler.on_execution_end(run(runner, "flow-b")) == []
    window = store.condition_window("tests.cond", "listener", "multiple")
    assert window is not None and window.results == {"flow-b": True}


def test_window_bounds_follow_kestra() -> None:
    now = datetime(2024, 5, 6, 10, 37, 12, 345, tzinfo=UTC)
    day = datetime(2024, 5, 6, tzinfo=UTC)
    assert window_bounds({}, now) == (day, day + timedelta(days=1, milliseconds=-1))
    start, end = window_bounds({"window": "PT15M"}, now)
    assert (start, end - start) == (day + timedelta(hours=10, minutes=30), timedelta(minutes=15, milliseconds=-1))
    assert window_bounds({"window": "PT6H", "windowAdvance": "PT6H"}, now)[0] == day + timedelta(hours=16)
    daily = {"timeWindow": {"type": "DAILY_TIME_WINDOW", "startTime": "06:00:00", "endTime": "09:00:00"}}
    assert window_bounds(daily, now) == (day + timedelta(hours=6), day + timedelta(hours=9))
    deadline = {"timeWindow": {"type": "DAILY_TIME_DEADLINE", "deadline": "12:00:00"}}
    assert window_bounds(deadline, now) == (day, day + timedelta(hours=12))


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"type": CONDITION + "MultipleCondition", "conditions": {"a": {"type": CONDITION + "Weekend"}}}, "id:"),
        ({"type": CONDITION + "MultipleCondition", "id": "m"}, "conditions: required"),
        ({"type": CONDITION + "MultipleCondition", "id": "m", "conditions": {"a": {"type": "x"}}}, "conditions.a:"),
        ({"type": CONDITION + "Or", "conditions": [{"type": "nope"}]}, "conditions[0]: unknown condition type"),
    ],
)
def test_nested_and_multiple_conditions_are_checked_at_deploy(condition: dict[str, object], problem: str) -> None:
    assert any(problem in p for p in condition_problems(condition))


def test_every_condition_declares_its_properties() -> None:
    assert set(SHORT_NAMES.values()) == set(PROPERTIES)
    assert set(SHORT_NAMES) == set(CONDITIONS)
    for name in ("HasRetryAttempt", "MultipleCondition", "PublicHoliday"):
        assert CONDITION + name in CONDITIONS
    assert properties_of("io.kestra.core.models.conditions.types.VariableCondition") == {
        "expression": "The expression to evaluate; true when it renders truthy."
    }
    assert set(properties_of(CONDITION + "PublicHoliday") or {}) == {"date", "country", "subDivision"}
    assert properties_of("io.kestra.plugin.core.condition.Nope") is None
