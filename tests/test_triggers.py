"""Trigger decisions with the time injected: schedules (backfill, recovery, restarts, DST),
conditions, flow-trigger matching and webhook variables — no sleeping."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kestractl.engine.runner import Runner
from kestractl.model import Execution, State, StateInfo
from kestractl.parser import parse_flow
from kestractl.server.scheduler import Scheduler
from kestractl.storage import LocalStorage
from kestractl.store import Store, open_store
from kestractl.store.schema import MIGRATIONS, connect, migrate
from kestractl.store.sqlite import SqliteStore
from kestractl.triggers import schedule
from kestractl.triggers.conditions import ConditionContext, all_met
from kestractl.triggers.flow import matches
from kestractl.triggers.webhook import find_trigger, trigger_variables
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

T0 = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)  # a Monday


def flow_with(trigger_yaml: str, flow_id: str = "sched") -> str:
    return (
        f"id: {flow_id}\nnamespace: tests\ntasks:\n  - id: d\n    type: io.kestra.plugin.core.debug.Return\n"
        f"    format: '{{{{ trigger.date }}}}'\ntriggers:\n{trigger_yaml}"
    )


def scheduler(tmp_path: Path, database: str, source: str) -> tuple[Scheduler, Store]:
    store = open_store(database)
    store.save_flow("tests", "sched", source)
    return Scheduler(Runner(store, LocalStorage(tmp_path / "s"))), store


HOURLY = "  - id: hourly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 * * * *'\n"


def test_a_schedule_fires_each_date_once_even_across_restarts(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    first, store = scheduler(tmp_path, store_url, flow_with(HOURLY))
    assert first.tick(T0) == []  # first sight: the next date is 11:00
    fired = first.tick(T0 + timedelta(hours=1, seconds=1))
    assert [e.trigger["variables"]["date"] for e in fired] == ["2024-05-06T11:00:00+00:00"]
    assert first.tick(T0 + timedelta(hours=1, seconds=2)) == []
    restarted = Scheduler(Runner(store, LocalStorage(tmp_path / "s")))
    assert restarted.tick(T0 + timedelta(hours=1, seconds=3)) == []
    again = restarted.tick(T0 + timedelta(hours=2, seconds=1))
    assert len(again) == 1 and again[0].trigger["variables"]["previous"] == "2024-05-06T11:00:00+00:00"


def test_missed_dates_are_recovered_by_policy(tmp_path: Path) -> None:
    for policy, expected in (("ALL", 3), ("LAST", 1), ("NONE", 0)):
        home = tmp_path / policy
        home.mkdir()
        sched, _ = scheduler(home, str(home / "k.db"), flow_with(HOURLY + f"    recoverMissedSchedules: {policy}\n"))
        sched.tick(T0)
        assert len(sched.tick(T0 + timedelta(hours=3, minutes=30))) == expected, policy


def test_backfill_starts_in_the_past_and_stops_at_its_end(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    trigger = HOURLY + "    backfill:\n      start: '2024-05-06T07:00:00Z'\n      end: '2024-05-06T08:30:00Z'\n"
    sched, _ = scheduler(tmp_path, store_url, flow_with(trigger))
    fired = sched.tick(T0)
    assert [e.trigger["variables"]["date"][11:16] for e in fired] == ["07:00", "08:00"]


def test_seconds_cron_timezone_and_conditions(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    spec = {"cron": "*/2 * * * * *", "withSeconds": True}
    assert schedule.next_after(spec, T0) == T0 + timedelta(seconds=2)
    paris = {"cron": "30 2 * * *", "timezone": "Europe/Paris"}
    spring = schedule.next_after(paris, datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert spring.isoformat() == "2024-03-31T03:00:00+02:00"  # 02:30 does not exist that night
    monday_only = HOURLY + (
        "    conditions:\n      - type: io.kestra.plugin.core.condition.DayWeekCondition\n        dayOfWeek: TUESDAY\n"
    )
    sched, _ = scheduler(tmp_path, store_url, flow_with(monday_only))
    sched.tick(T0)
    assert sched.tick(T0 + timedelta(hours=1, seconds=1)) == []


def test_a_changed_cron_restarts_from_now(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    sched, store = scheduler(tmp_path, store_url, flow_with(HOURLY))
    sched.tick(T0)
    store.save_flow("tests", "sched", flow_with(HOURLY.replace("0 * * * *", "*/10 * * * *")))
    sched.tick(T0 + timedelta(minutes=1))
    fired = sched.tick(T0 + timedelta(minutes=10, seconds=1))
    assert [e.trigger["variables"]["date"][11:16] for e in fired] == ["10:10"]


def test_a_long_outage_is_recovered_over_several_ticks_each_date_once(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    minutely = "  - id: minutely\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '* * * * *'\n"
    sched, _ = scheduler(tmp_path, store_url, flow_with(minutely))
    sched.tick(T0)
    back = T0 + timedelta(minutes=2500, seconds=30)
    batches = [sched.tick(back) for _ in range(4)]
    assert [len(b) for b in batches] == [1000, 1000, 500, 0]
    fired = [e.trigger["variables"] for b in batches for e in b]
    assert fired[0]["date"] == "2024-05-06T10:01:00+00:00" and fired[0]["previous"] == "2024-05-06T10:00:00+00:00"
    assert all(a["next"] == b["date"] and b["previous"] == a["date"] for a, b in itertools.pairwise(fired))


def test_due_dates_know_their_neighbours_across_a_night_that_falls_back() -> None:
    paris = {"cron": "0 * * * *", "timezone": "Europe/Paris"}
    start = datetime(2024, 10, 26, 22, tzinfo=UTC)  # midnight in Paris; at 03:00 the clocks go back to 02:00
    fires, following = schedule.due(paris, schedule.next_after(paris, start), start + timedelta(hours=4, minutes=30))
    dates = [f.date.isoformat()[11:] for f in fires]
    assert dates == ["01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00", "03:00:00+01:00"]
    assert [f.next.isoformat()[11:] for f in fires] == [*dates[1:], following.isoformat()[11:]]
    assert [f.previous.isoformat()[11:] for f in fires if f.previous] == ["00:00:00+02:00", *dates[:-1]]


def _execution(namespace: str, flow_id: str, state: State) -> Execution:
    return Execution("up", namespace, flow_id, 1, state=StateInfo.new(state), labels=[("team", "a")])


def test_flow_trigger_matching_states_conditions_and_no_self_trigger() -> None:
    flow = parse_flow(
        flow_with(
            "  - id: t\n    type: io.kestra.plugin.core.trigger.Flow\n    states: [FAILED]\n    conditions:\n"
            "      - type: io.kestra.plugin.core.condition.ExecutionNamespaceCondition\n        namespace: prod\n"
            "        comparison: PREFIX\n"
            "      - type: io.kestra.plugin.core.condition.ExecutionLabelsCondition\n"
            "        labels:\n          team: a\n",
            "listener",
        )
    )
    trigger = flow.triggers[0]
    assert matches(flow, trigger, _execution("prod.sales", "load", State.FAILED), {})
    assert not matches(flow, trigger, _execution("prod.sales", "load", State.SUCCESS), {})
    assert not matches(flow, trigger, _execution("dev", "load", State.FAILED), {})
    assert not matches(flow, trigger, _execution("tests", "listener", State.FAILED), {})


def test_conditions_evaluate_expressions_and_dates() -> None:
    ctx = ConditionContext(variables={"trigger": {"date": "2024-05-11T10:00:00+00:00"}, "x": 3})
    assert all_met(
        [
            {"type": "io.kestra.plugin.core.condition.Weekend"},
            {"type": "io.kestra.core.models.conditions.types.VariableCondition", "expression": "{{ x > 2 }}"},
            {"type": "io.kestra.plugin.core.condition.DayWeekInMonth", "dayOfWeek": "SATURDAY", "dayInMonth": "SECOND"},
        ],
        ctx,
    )
    assert not all_met(
        [
            {
                "type": "io.kestra.plugin.core.condition.Not",
                "conditions": [{"type": "io.kestra.plugin.core.condition.Weekend"}],
            }
        ],
        ctx,
    )
    assert not all_met([{"type": "unknown.Condition"}], ctx)


def test_webhook_keys_and_variables() -> None:
    flow = parse_flow(
        flow_with("  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: '{{ flow.id }}-k'\n")
    )
    assert find_trigger(flow, "sched-k") is not None and find_trigger(flow, "sched") is None
    variables = trigger_variables(b"[1, 2]", {"X-Team": ["a"]}, {"age": ["1", "2"]})
    assert variables["body"] == [1, 2] and variables["headers"]["x-team"] == ["a"]
    assert trigger_variables(b"not json", {}, {})["body"] == "not json"
    assert trigger_variables(b"", {}, {})["body"] is None


def test_an_old_database_is_migrated_without_losing_rows(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    conn.execute("INSERT INTO flows (namespace, id, revision, source, created) VALUES ('a', 'b', 1, 'x', 'now')")
    assert migrate(conn) == len(MIGRATIONS)
    store = SqliteStore(tmp_path / "old.db")
    assert store.flow_revision("a", "b").source == "x"
    assert store.trigger_state("a", "b", "t") is None
