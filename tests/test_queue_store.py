"""The queue is the rows (store/queue.py), on both stores: claims of worker jobs and of executions by several
claimers at once (each its own store, so its own connection), a worker's result written only while its claim
holds, re-emission of a dead worker's jobs, and ownership by live executors only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from kestractl.model import Attempt, Execution, State, StateInfo, TaskRun, new_id, utcnow
from kestractl.server.liveness import ServiceLiveness
from kestractl.store import Store, open_store
from kestractl.store.queue import WorkerJob, WorkerResult
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType
from tests.services.stores import postgres, store_url  # noqa: F401  (fixtures)

T = TypeVar("T")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    opened = open_store(store_url)
    yield opened
    opened.close()


def _executions(store: Store, count: int) -> list[Execution]:
    executions = [Execution(new_id(), "queue.test", "f", 1) for _ in range(count)]
    with store.transaction():
        store.save_executions(executions)
    return executions


def _jobs(store: Store, count: int) -> list[WorkerJob]:
    jobs = []
    for execution in _executions(store, count):
        run = TaskRun(new_id(), execution.id, "t", attempts=[Attempt(StateInfo.new(State.RUNNING))])
        jobs.append(WorkerJob(run, 1))
    with store.transaction():
        store.enqueue_worker_jobs(jobs, utcnow())
    return jobs


def _race(url: str, claimers: list[str], claim: Callable[[Store, str], list[T]]) -> dict[str, list[T]]:
    """Each claimer (a thread with its own store) claims until it gets nothing; what each got."""
    got: dict[str, list[T]] = {name: [] for name in claimers}

    def run(name: str) -> None:
        own = open_store(url)
        while batch := claim(own, name):
            got[name] += batch
        own.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return got


def test_two_claimers_never_get_the_same_job(store: Store, store_url: str) -> None:  # noqa: F811
    jobs = _jobs(store, 120)
    got = _race(store_url, ["w1", "w2", "w3", "w4"], lambda own, name: own.claim_worker_jobs(name, 7, utcnow()))
    claimed = [job.task_run.id for batch in got.values() for job in batch]
    assert sorted(claimed) == sorted(job.task_run.id for job in jobs)  # each job once, none left
    assert all(job.worker_id == name for name, batch in got.items() for job in batch)
    assert store.claim_worker_jobs("late", 10, utcnow()) == []


def test_a_result_is_written_only_while_the_claim_holds(store: Store) -> None:
    job = _jobs(store, 1)[0]
    execution_id = job.task_run.execution_id
    (claimed,) = store.claim_worker_jobs("w1", 5, utcnow())
    assert claimed.task_run.id == job.task_run.id and claimed.task_run.attempts[0].state.current == State.RUNNING
    result = WorkerResult(execution_id, job.task_run.id, 1, "w1", State.SUCCESS, {"value": 1}, [], utcnow(), utcnow())
    stranger = WorkerJob(claimed.task_run, 1, "w2", claimed.claimed_at)
    assert not store.finish_worker_job(stranger, result)  # not w2's claim
    assert store.pending_task_runs(execution_id) == {job.task_run.id}
    assert store.finish_worker_job(claimed, result)
    assert store.take_worker_results("executor", 10) == []  # nobody owns the execution yet
    assert store.own_executions("executor", [execution_id]) == [execution_id]
    (taken,) = store.take_worker_results("executor", 10)
    assert (taken.state, taken.outputs, taken.worker_id, taken.resubmitted) == (
        State.SUCCESS,
        {"value": 1},
        "w1",
        False,
    )
    assert store.take_worker_results("executor", 10) == [] and store.pending_task_runs(execution_id) == set()


def test_released_jobs_are_claimed_again(store: Store) -> None:
    jobs = _jobs(store, 3)
    held = store.claim_worker_jobs("w1", 2, utcnow())
    store.release_worker_jobs("w1", [held[0].task_run.id])
    again = store.claim_worker_jobs("w2", 5, utcnow())
    assert {j.task_run.id for j in again} == {held[0].task_run.id, jobs[2].task_run.id}


def test_a_dead_workers_jobs_are_re_emitted(store: Store) -> None:
    jobs = _jobs(store, 3)
    held = store.claim_worker_jobs("dead", 2, utcnow())
    assert store.reemit_worker_jobs([], utcnow()) == []
    lost = store.reemit_worker_jobs(["dead"], utcnow())
    assert {r.task_run_id for r in lost} == {j.task_run.id for j in held}
    assert all(r.resubmitted and r.state == State.KILLED and r.worker_id == "dead" for r in lost)
    assert [j.task_run.id for j in store.claim_worker_jobs("w2", 5, utcnow())] == [jobs[2].task_run.id]
    store.own_executions("executor", [j.task_run.execution_id for j in jobs])
    assert {r.task_run_id for r in store.take_worker_results("executor", 10) if r.resubmitted} == {
        j.task_run.id for j in held
    }


def test_executions_are_claimed_once_and_never_from_a_live_owner(store: Store, store_url: str) -> None:  # noqa: F811
    executions = _executions(store, 60)
    live = _executor(store)
    dead = _executor(store)
    store.own_executions(live.ids[0], [executions[0].id])
    store.own_executions(dead.ids[0], [executions[1].id])
    store.set_services_state(dead.ids, ServiceState.DISCONNECTED, utcnow())
    claimers = [_executor(store).ids[0] for _ in range(3)]  # live: what they claim stays theirs
    got = _race(store_url, claimers, lambda own, name: own.claim_executions(name, 9))
    claimed = [i for batch in got.values() for i in batch]
    assert sorted(claimed) == sorted(e.id for e in executions[1:])  # the dead owner's too, not the live one's
    assert store.own_executions(live.ids[0], [executions[0].id, executions[2].id]) == [executions[0].id]
    store.release_executions(claimers[0])
    assert sorted(store.claim_executions(live.ids[0], 100)) == sorted(got[claimers[0]])


def _executor(store: Store) -> ServiceLiveness:
    liveness = ServiceLiveness(store, ServerConfig(), lambda level, message: None, services=(ServiceType.EXECUTOR,))
    liveness.register()
    return liveness
