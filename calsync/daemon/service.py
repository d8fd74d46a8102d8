"""``calsync run``: the daemon's lifecycle around its dispatcher loop.

Start: the configuration was validated by the caller; open and migrate the store, take the
store lock (``LockHeld`` → exit 4: one daemon per store), register the configured mailboxes,
ask Entra ID for each tenant's first token (a refused tenant starts paused and says why),
seed one job per mailbox from ``mailboxes.next_due``, log ``daemon_started``, tell systemd
``READY=1``.

The dispatcher loop runs on the main thread (signal handlers only set flags): it applies a
pending SIGHUP reload, probes the store for application writes every ``local_scan_interval``
(those mailboxes are made due now), writes the heartbeat row every 15 s, logs
``daemon_heartbeat`` every minute, feeds the systemd watchdog while the scheduler thread lives
and no run passed its hard deadline, warns about expiring secrets once a day, and stops the
daemon (exit 70) when an internal thread died.

Stop (SIGTERM/SIGINT): ``STOPPING=1``, no new runs (the stop flag is checked when a queued job
starts and between pages of a running one), running syncs get ``shutdown_grace`` seconds to
commit, then the store lock is released, everything closed, ``daemon_stopped``, exit 0.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import FrameType

import structlog

from calsync import __version__
from calsync.config import Config
from calsync.daemon.expiry import log_expiry
from calsync.daemon.mailbox_run import MailboxRunner
from calsync.daemon.notify import SystemdNotifier
from calsync.daemon.reload import Generation
from calsync.daemon.runtime import build_runtime
from calsync.daemon.supervise import Dispatcher
from calsync.daemon.webhook_setup import Webhooks, start_webhooks
from calsync.errors import AuthError, CalsyncError
from calsync.ews.client import EwsClient
from calsync.ews.notifications import StreamingNotificationSource
from calsync.graph import GraphClient
from calsync.scheduler.jobs import MailboxJobs
from calsync.scheduler.tenants import TenantGates
from calsync.store.sql_coord import SqlLock
from calsync.subscriptions import SupervisorSettings

log = structlog.get_logger("calsync.daemon")

EXIT_OK = 0
EXIT_INTERNAL = 70


class Daemon:
    """One daemon process; ``run()`` returns the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        notifier: SystemdNotifier | None = None,
        heartbeat_s: float = 15.0,
        summary_s: float = 60.0,
        tick_s: float = 0.5,
        run_deadline_s: float = 1800.0,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.config = config
        self.notifier = notifier or SystemdNotifier(None)
        self.heartbeat_s = heartbeat_s
        self.summary_s = summary_s
        self.tick_s = tick_s
        self.run_deadline_s = run_deadline_s
        self._rng = rng
        self._clock = clock
        self._today = today
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.stop_reason = "stopped"
        self.abandoned: list[str] = []  # runs still going when shutdown_grace ran out
        self.gates = TenantGates()
        self._generation: Generation | None = None
        self._retired: list[EwsClient | GraphClient] = []
        self._store_lock: SqlLock | None = None
        self.jobs: MailboxJobs | None = None
        self.notifications: StreamingNotificationSource | None = None
        self.webhooks: Webhooks | None = None  # Graph change notifications ([webhooks])
        self.started = threading.Event()  # set once the daemon is up (tests, demo)

    # --- public ---------------------------------------------------------------------------------

    @property
    def generation(self) -> Generation:
        assert self._generation is not None, "the daemon has not started"
        return self._generation

    def request_stop(self, reason: str = "requested") -> None:
        self.stop_reason = reason
        self.stop_event.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    def make_due_now(self, addresses: list[str]) -> None:
        """Sync these mailboxes as soon as a worker is free (notifications, operators)."""
        if self.jobs is not None:
            self.jobs.make_due_now(addresses)

    def run(self, *, install_signals: bool = True) -> int:
        if install_signals:
            self._install_signals()
        self._start()
        assert self.jobs is not None
        dispatcher = Dispatcher(self)
        code = EXIT_OK
        try:
            code = dispatcher.loop()
        except Exception as exc:  # the dispatcher itself broke: stop, do not linger as a zombie
            log.critical("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            self.stop_reason = "internal error in the dispatcher"
            code = EXIT_INTERNAL
        return self._stop(code)

    # --- start ----------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(f"signal {signal.Signals(signum).name}")

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _start(self) -> None:
        config = self.config
        runtime = build_runtime(config)  # opens and migrates the store (exit 3 when it cannot)
        try:
            self._store_lock = runtime.store.store_lock()  # LockHeld: exit 4
        except CalsyncError:
            runtime.close()
            raise
        self._generation = Generation.first(config, runtime)
        store = runtime.store
        mailboxes = config.enabled_mailboxes()
        store.register_mailboxes(mailboxes)
        settings = config.settings.daemon
        runner = MailboxRunner(
            lambda: self.generation,
            self.gates,
            stop=self.stop_event,
            random=self._rng,
            clock=self._clock,
            on_resume=self.resume_tenant_mailboxes,
            subscription_healthy=self.subscription_healthy,
        )
        statuses = {s.address: s for s in store.mailbox_statuses()}
        runner.seed(list(statuses.values()))
        self.jobs = MailboxJobs(
            runner,
            max_workers=settings.max_concurrent_syncs,
            stop=self.stop_event,
            interval_s=settings.poll_interval,
            jitter_s=settings.poll_jitter,
            clock=self._clock,
        )
        self._first_tokens()
        now = self._clock()
        for mailbox in mailboxes:
            status = statuses.get(mailbox.address)
            due = status.next_due if status is not None else None
            if due is None or status is None or status.state == "new":
                due = now
            elif due < now:  # overdue after a restart: spread them over the jitter
                due = now + timedelta(seconds=self._rng() * settings.poll_jitter)
            self.jobs.add(mailbox.address, due)
        self.jobs.start()
        self._start_notifications()
        self.webhooks = start_webhooks(
            config, self.generation, lambda address, _reason: self.make_due_now([address])
        )
        store.write_heartbeat(now)
        log_expiry(config, self._today())
        log.info(
            "daemon_started",
            mailboxes=len(mailboxes),
            tenants=len(config.tenants),
            version=__version__,
            store=_safe_url(config.settings.store.url),
            max_concurrent_syncs=settings.max_concurrent_syncs,
        )
        self.notifier.ready(f"started: {len(mailboxes)} mailboxes, {len(config.tenants)} tenants")
        self.started.set()

    def _first_tokens(self) -> None:
        """A token per tenant now, so a refused tenant is reported (and paused) at start."""
        runtime = self.generation.runtime
        now = self._clock()
        for name, provider in sorted(runtime.providers.items()):
            settings = self.config.tenants[name].settings
            if settings.api == "graph":
                scope = provider.scope_for("graph", settings.graph_url)
            else:
                scope = provider.scope_for("ews", settings.effective_ews_url)
            try:
                provider.token(scope)
            except AuthError as exc:
                if exc.transient:
                    continue  # Entra ID unreachable for now: the runs retry with back-off
                self.gates.pause(
                    name, error_code=exc.error_code, message=str(exc), hint=exc.hint, now=now
                )
                log.error(
                    "tenant_paused",
                    tenant=name,
                    error_code=exc.error_code,
                    error=str(exc),
                    hint=exc.hint,
                    retry_in_s=self.gates.auth_retry_s,
                )

    def _start_notifications(self) -> None:
        """EWS streaming notifications make a changed mailbox due at once ([subscriptions])."""
        config = self.config
        if config.settings.subscriptions.mode != "streaming":
            return
        settings = SupervisorSettings.from_config(
            config.settings.subscriptions, config.settings.daemon.notification_debounce_ms
        )
        source = StreamingNotificationSource(
            self.generation.runtime.streaming_clients(),
            lambda address, _reason: self.make_due_now([address]),
            settings,
        )
        source.update_mailboxes(list(self.generation.mailboxes.values()))
        source.start()
        self.notifications = source

    def subscription_healthy(self, address: str) -> bool:
        source, webhooks = self.notifications, self.webhooks
        if webhooks is not None and webhooks.healthy(address):
            return True
        return source is not None and source.healthy(address)

    def resume_tenant_mailboxes(self, tenant: str) -> None:
        generation = self.generation
        self.make_due_now([m.address for m in generation.mailboxes.values() if m.tenant == tenant])

    def swap_generation(
        self, generation: Generation, retired: list[EwsClient | GraphClient]
    ) -> None:
        self._generation = generation
        self._retired.extend(retired)
        source = self.notifications
        if source is not None:  # new credentials rebuild that tenant's groups only
            source.set_clients(generation.runtime.streaming_clients())
            source.update_mailboxes(list(generation.mailboxes.values()))
        if self.webhooks is not None:
            self.webhooks.update(generation)

    # --- stop -----------------------------------------------------------------------------------

    def _stop(self, code: int) -> int:
        jobs = self.jobs
        assert jobs is not None
        self.stop_event.set()
        running = sorted(jobs.running())
        grace = self.config.settings.daemon.shutdown_grace
        self.notifier.stopping(f"stopping: {len(running)} running syncs to finish")
        log.info("daemon_stopping", reason=self.stop_reason, running=len(running), grace_s=grace)
        jobs.pause()
        if self.notifications is not None:
            self.notifications.stop()  # unsubscribes (bounded) before the clients close
        if self.webhooks is not None:
            self.webhooks.stop()  # deletes the Graph subscriptions, then stops the receiver
        if not jobs.wait_idle(grace):
            self.abandoned = sorted(jobs.running())
            log.error("shutdown_grace_exceeded", running=self.abandoned, grace_s=grace)
        jobs.shutdown()
        if jobs.fatal is not None and code == EXIT_OK:
            code = EXIT_INTERNAL
        runtime = self.generation.runtime
        try:
            if self._store_lock is not None:
                self._store_lock.release()
        except CalsyncError as exc:
            log.error("store_error", error=str(exc))
        if not self.abandoned:
            for client in [*runtime.clients.values(), *self._retired]:
                client.close()
            runtime.close()
        log.info("daemon_stopped", reason=self.stop_reason, exit_code=code, runs=jobs.runs)
        return code


def _safe_url(url: str) -> str:
    """The store URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url
