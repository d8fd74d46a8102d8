"""MailboxJobs over a real APScheduler: one run per mailbox, re-arm, due now, stop flag, bugs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from calsync.scheduler.jobs import MailboxJobs

WAIT = 10.0


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def make() -> Iterator[Callable[..., MailboxJobs]]:
    created: list[MailboxJobs] = []

    def build(run: Callable[[str], datetime | None], workers: int = 4) -> MailboxJobs:
        jobs = MailboxJobs(run, max_workers=workers, stop=threading.Event(), interval_s=3600)
        created.append(jobs)
        jobs.start()
        return jobs

    yield build
    for jobs in created:
        jobs._stop.set()
        jobs.shutdown(wait=True)


def test_a_trigger_during_a_run_re_arms_the_job_and_runs_never_overlap(
    make: Callable[..., MailboxJobs],
) -> None:
    started, release, second = threading.Event(), threading.Event(), threading.Event()
    calls: list[str] = []
    active = [0]
    overlap = []

    def run(address: str) -> datetime:
        active[0] += 1
        overlap.append(active[0])
        calls.append(address)
        if len(calls) == 1:
            started.set()
            assert release.wait(WAIT)
        else:
            second.set()
        active[0] -= 1
        return now() + timedelta(hours=1)

    jobs = make(run)
    jobs.add("a@x.example", now())
    assert started.wait(WAIT)
    assert "a@x.example" in jobs.running()
    jobs.make_due_now(["a@x.example"])
    jobs.make_due_now(["a@x.example"])  # twice: still one extra run
    release.set()
    assert second.wait(WAIT), "the re-armed run did not happen"
    assert jobs.wait_idle(WAIT)
    assert calls == ["a@x.example", "a@x.example"]
    assert max(overlap) == 1
    next_run = jobs.next_run("a@x.example")
    assert next_run is not None and next_run > now() + timedelta(minutes=50)


def test_make_due_now_moves_an_idle_job_forward_and_reports_unknown_mailboxes(
    make: Callable[..., MailboxJobs],
) -> None:
    ran = threading.Event()

    def run(_address: str) -> datetime:
        ran.set()
        return now() + timedelta(hours=1)

    jobs = make(run)
    jobs.add("a@x.example", now() + timedelta(hours=1))
    assert jobs.make_due_now(["a@x.example", "ghost@x.example"]) == ["ghost@x.example"]
    assert ran.wait(WAIT)


def test_a_run_returning_none_drops_the_job(make: Callable[..., MailboxJobs]) -> None:
    ran = threading.Event()

    def run(_address: str) -> None:
        ran.set()

    jobs = make(run)
    jobs.add("gone@x.example", now())
    jobs.add("kept@x.example", now() + timedelta(hours=1))
    assert ran.wait(WAIT)
    assert jobs.wait_idle(WAIT)
    assert jobs.runs == 1
    assert jobs.addresses() == {"kept@x.example"}


def test_the_stop_flag_keeps_queued_runs_from_starting(make: Callable[..., MailboxJobs]) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def run(address: str) -> datetime:
        calls.append(address)
        started.set()
        assert release.wait(WAIT)
        return now() + timedelta(hours=1)

    jobs = make(run, workers=1)
    jobs.add("first@x.example", now())
    assert started.wait(WAIT)
    for i in range(5):  # queued behind the single worker
        jobs.add(f"queued{i}@x.example", now())
    jobs._stop.set()
    release.set()
    jobs.shutdown(wait=True)  # drains the pool: the queued jobs see the flag
    assert calls == ["first@x.example"]


def test_a_bug_in_the_run_wrapper_is_fatal(make: Callable[..., MailboxJobs]) -> None:
    def run(_address: str) -> datetime:
        raise KeyError("bug")

    jobs = make(run)
    jobs.add("a@x.example", now())
    assert jobs._stop.wait(WAIT)
    assert jobs.wait_idle(WAIT)
    assert isinstance(jobs.fatal, KeyError)
    assert not jobs.alive()
