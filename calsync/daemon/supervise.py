"""The dispatcher loop of ``calsync run`` (main thread): reloads, probes, heartbeat, watchdog.

Every step is cheap and bounded; a store error in one step is logged and retried on the next
tick (a database restart must not stop the daemon), anything else is a bug and stops the daemon
with exit 70 (the supervisor, systemd or Docker, restarts it).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

import structlog

from calsync.config import load_config
from calsync.daemon.expiry import log_expiry
from calsync.daemon.reload import next_generation
from calsync.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from calsync.daemon.service import Daemon

log = structlog.get_logger("calsync.daemon")

EXIT_OK = 0
EXIT_INTERNAL = 70


class Dispatcher:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self._last_probe = 0.0
        self._last_beat = time.monotonic()
        self._last_summary = time.monotonic()
        self._expiry_day = daemon._today()
        self.watchdog_fed = 0

    def loop(self) -> int:
        d = self.d
        jobs = d.jobs
        assert jobs is not None
        while not d.stop_event.is_set():
            if d.reload_requested.is_set():
                d.reload_requested.clear()
                self.reload()
            if not jobs.alive():
                error = jobs.fatal
                log.critical(
                    "internal_error",
                    error=f"{type(error).__name__}: {error}" if error else "scheduler thread died",
                    thread="scheduler",
                )
                d.stop_reason = "internal error: the scheduler stopped"
                return EXIT_INTERNAL
            now = time.monotonic()
            settings = d.generation.config.settings.daemon
            if now - self._last_probe >= settings.local_scan_interval:
                self._last_probe = now
                self._probe_local_writes()
            if now - self._last_beat >= d.heartbeat_s:
                self._last_beat = now
                self._heartbeat()
            if now - self._last_summary >= d.summary_s:
                self._last_summary = now
                self._summary()
            self._feed_watchdog()
            today = d._today()
            if today != self._expiry_day:
                self._expiry_day = today
                log_expiry(d.generation.config, today)
            d.stop_event.wait(d.tick_s)
        if jobs.fatal is not None:
            log.critical(
                "internal_error",
                error=f"{type(jobs.fatal).__name__}: {jobs.fatal}",
                thread="worker",
            )
            d.stop_reason = "internal error in a worker"
            return EXIT_INTERNAL
        return EXIT_OK

    # --- steps ----------------------------------------------------------------------------------

    def _probe_local_writes(self) -> None:
        store = self.d.generation.runtime.store
        try:
            if not store.has_local_writes():
                return
            changed = store.mailboxes_with_local_changes()
        except StoreError as exc:
            log.error("store_error", error=str(exc), step="local_scan")
            return
        known = self.d.generation.mailboxes
        due = [a for a in changed if a in known]
        if due:
            log.debug("local_writes_found", mailboxes=due)
            self.d.make_due_now(due)

    def _heartbeat(self) -> None:
        try:
            self.d.generation.runtime.store.write_heartbeat()
        except StoreError as exc:
            log.error("store_error", error=str(exc), step="heartbeat")
        if self.d.notifier.enabled:
            self.d.notifier.status(self.summary_line())

    def counts(self) -> dict[str, int]:
        d = self.d
        assert d.jobs is not None
        statuses = d.generation.runtime.store.mailbox_statuses()
        configured = d.generation.mailboxes
        states = Counter(s.state for s in statuses if s.address in configured)
        now = d._clock()
        due = sum(
            1
            for s in statuses
            if s.address in configured and (s.next_due is None or s.next_due <= now)
        )
        return {
            "healthy": states["healthy"],
            "failing": states["failing"],
            "paused": states["paused"],
            "new": states["new"],
            "due": due,
            "running": len(d.jobs.running()),
        }

    def summary_line(self) -> str:
        try:
            c = self.counts()
        except StoreError:
            return "running (store unavailable)"
        return (
            f"{c['healthy']} healthy, {c['failing']} failing, {c['paused']} paused, "
            f"{c['running']} running"
        )

    def _summary(self) -> None:
        try:
            counts = self.counts()
        except StoreError as exc:
            log.error("store_error", error=str(exc), step="summary")
            return
        paused = self.d.gates.paused()
        source = self.d.notifications
        subscriptions = source.counts().as_dict() if source is not None else {}
        log.info(
            "daemon_heartbeat", **counts, paused_tenants=sorted(paused), subscriptions=subscriptions
        )

    def _feed_watchdog(self) -> None:
        """WATCHDOG=1 means "the dispatcher is alive and no sync ran past its hard deadline",
        not "syncs succeed": an Exchange outage must not make systemd restart calsync."""
        jobs = self.d.jobs
        assert jobs is not None
        if jobs.overdue(self.d.run_deadline_s):
            return
        if self.d.notifier.watchdog():
            self.watchdog_fed += 1

    # --- SIGHUP ---------------------------------------------------------------------------------

    def reload(self) -> None:
        d = self.d
        current = d.generation
        path = current.config.path
        try:
            config = load_config(path)
            generation, change, retired = next_generation(current, config)
        except ConfigError as exc:
            log.error(
                "config_reload_failed",
                problems=list(exc.problems),
                file=str(path),
                hint="the previous configuration keeps running; fix the file and send SIGHUP",
            )
            return
        store = current.runtime.store
        try:
            store.register_mailboxes(config.enabled_mailboxes())
        except StoreError as exc:
            log.error("config_reload_failed", problems=[f"store: {exc}"], file=str(path))
            return
        d.swap_generation(generation, retired)
        jobs = d.jobs
        assert jobs is not None
        timing = generation.timing
        jobs.interval_s, jobs.jitter_s = timing.poll_interval, timing.poll_jitter
        for address in change.removed:
            jobs.remove(address)
        now = d._clock()
        for address in change.added:
            jobs.add(address, now)
        for tenant in change.switched_tenants:  # the other adapter serves it: sync it now
            if d.gates.resume(tenant):
                log.info("tenant_resumed", tenant=tenant, reason="api switched (SIGHUP)")
            d.resume_tenant_mailboxes(tenant)
        for tenant in change.changed_tenants:
            if tenant not in change.switched_tenants and d.gates.resume(tenant):
                log.info("tenant_resumed", tenant=tenant, reason="new credentials (SIGHUP)")
                d.resume_tenant_mailboxes(tenant)
        if change.needs_restart:
            log.warning(
                "config_reload_needs_restart",
                keys=change.needs_restart,
                hint="these settings take effect when calsync restarts",
            )
        for warning in config.warnings:
            log.warning("config_warning", warning=warning)
        log.info(
            "config_reloaded",
            added=change.added,
            removed=change.removed,
            changed=[*change.changed_tenants, *change.changed_mailboxes],
            mailboxes=len(generation.mailboxes),
        )
        log_expiry(config, d._today())
