"""One APScheduler 3.x job per mailbox, with the guards APScheduler's defaults leave out.

- A ``BackgroundScheduler`` with a bounded thread pool (``max_concurrent_syncs``) and the
  in-memory job store. Every job has ``misfire_grace_time=None`` (a late run still runs: the
  default grace of one second would silently drop runs of a busy pool), ``coalesce=True`` (many
  missed runs are one run) and ``max_instances=1`` (never two runs of one mailbox at once).
- Each job has an interval trigger (``poll_interval`` with ``poll_jitter``) as the safety net,
  but the run itself decides its next run time (``run(address)`` returns it: the policy's
  back-off, a tenant's throttle …) and the job is moved there when the run ends.
- ``make_due_now(address)``: a notification, a local SQL write or an operator. During a run of
  that mailbox it sets a re-arm flag instead, and the job runs again as soon as this run ends
  (a change that arrives mid-run may not be in what the run already fetched).
- ``stop``: calsync's own stop flag, checked when a job starts, so a shutdown never works
  through the queued backlog (``shutdown(wait=True)`` alone would run all of it).
- ``fatal``: an unexpected exception in a job wrapper (a bug) is kept here; the dispatcher stops
  the daemon with exit 70 rather than leave a zombie that syncs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

RunFn = Callable[[str], datetime | None]  # returns the next run time, None = drop the job


class _QuietMaxInstances(logging.Filter):
    """A due-now trigger for a queued job is turned into a re-arm (see ``_on_max_instances``);
    APScheduler's warning about it is noise for operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


class MailboxJobs:
    def __init__(
        self,
        run: RunFn,
        *,
        max_workers: int,
        stop: threading.Event,
        interval_s: float = 300,
        jitter_s: float = 30,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._run = run
        self._stop = stop
        self._clock = clock
        self.interval_s = interval_s
        self.jitter_s = jitter_s
        self._lock = threading.Condition()
        self._running: dict[str, float] = {}  # address -> time.monotonic() at start
        self._rearm: set[str] = set()
        self.fatal: BaseException | None = None
        self.runs = 0
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
            daemon=True,
        )
        self._scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        logging.getLogger("apscheduler.scheduler").addFilter(_QuietMaxInstances())

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler.start()

    def pause(self) -> None:
        """Stop dispatching new runs (running ones go on)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop the scheduler; queued runs see the stop flag and return at once.

        APScheduler's own ``shutdown(wait=True)`` waits for the running jobs while it holds its
        job-store lock, and a run that ends meanwhile reschedules its job under that lock: a
        deadlock. So the scheduler stops without waiting, and ``wait`` waits here, lock-free.
        """
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if wait:
            with self._lock:
                while self._running:
                    self._lock.wait(1.0)

    def alive(self) -> bool:
        """The scheduler's thread is still dispatching (False after a crash of that thread)."""
        thread = getattr(self._scheduler, "_thread", None)  # BackgroundScheduler's own thread
        return thread is not None and bool(thread.is_alive()) and self.fatal is None

    # --- jobs -----------------------------------------------------------------------------------

    def add(self, address: str, first_run: datetime) -> None:
        self._scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=max(1, int(self.interval_s)), jitter=self.jitter_s or None),
            args=(address,),
            id=address,
            name=address,
            next_run_time=first_run,
            replace_existing=True,
        )

    def remove(self, address: str) -> None:
        """Forget the mailbox's job (a run in progress finishes and is not rescheduled)."""
        try:
            self._scheduler.remove_job(address)
        except JobLookupError:
            return

    def addresses(self) -> set[str]:
        return {job.id for job in self._scheduler.get_jobs()}

    def reschedule(self, address: str, when: datetime) -> None:
        if not self._scheduler.running:
            return
        try:
            self._scheduler.modify_job(address, next_run_time=when)
        except JobLookupError:
            return

    def make_due_now(self, addresses: Iterable[str]) -> list[str]:
        """Run these mailboxes as soon as a worker is free; returns those not known here."""
        now = self._clock()
        unknown = []
        for address in addresses:
            with self._lock:
                if address in self._running:
                    self._rearm.add(address)
                    continue
            try:
                self._scheduler.modify_job(address, next_run_time=now)
            except JobLookupError:
                unknown.append(address)
        return unknown

    def next_run(self, address: str) -> datetime | None:
        job = self._scheduler.get_job(address)
        return None if job is None else job.next_run_time

    # --- runs -----------------------------------------------------------------------------------

    def running(self) -> dict[str, float]:
        """Mailboxes running now, with their ``time.monotonic()`` start."""
        with self._lock:
            return dict(self._running)

    def overdue(self, deadline_s: float) -> list[str]:
        """Runs that passed their hard deadline (the watchdog stops being fed)."""
        now = time.monotonic()
        return sorted(a for a, t in self.running().items() if now - t > deadline_s)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is in progress; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        # made due while queued or running: run again when the current run ends
        with self._lock:
            self._rearm.add(event.job_id)

    def _job(self, address: str) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._running[address] = time.monotonic()
            self._rearm.discard(address)  # this run sees every change made before it started
        when: datetime | None = None
        try:
            when = self._run(address)
        except BaseException as exc:  # a bug in the run wrapper: stop the daemon (exit 70)
            self.fatal = exc
            self._stop.set()
            raise
        finally:
            # under the lock, so a make_due_now() racing with the end of the run is not lost
            with self._lock:
                again = address in self._rearm
                self._rearm.discard(address)
                if self.fatal is None and when is None:
                    self.remove(address)
                elif when is not None and not self._stop.is_set():
                    self.reschedule(address, self._clock() if again else when)
                self._running.pop(address, None)
                self.runs += 1
                self._lock.notify_all()
