"""One subscription group on its own thread: its subscriptions and its streaming connection.

The supervisor sets ``desired`` (the members, anchor first) and pokes the worker; the worker
makes the subscriptions match (the anchor first, for its affinity cookie; removed members are
unsubscribed; a new anchor means new subscriptions for all), then holds the group's
GetStreamingEvents connection open and renews it whenever the server closes it at the end of its
ConnectionTimeout. Every new subscription asks for a catch-up sync (``subscribed`` /
``resubscribed``), so a change made between two subscriptions is never lost.

Failures: a dropped connection is reopened after an exponential back-off with jitter (the
subscriptions survive on the server and their events wait there); a subscription the server no
longer knows is replaced; a mailbox that cannot be subscribed is handed back to the supervisor,
which polls it and retries later. A group down for longer than ``down_grace_s`` asks for a sync
of its members once (``subscription_down``), since their long safety-net interval no longer holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from calsync.errors import AuthError, CalsyncError, ThrottledError, TransientError
from calsync.subscriptions.backend import EventStream, StreamingBackend, SubscriptionLost

log = structlog.get_logger("calsync.subscriptions")


@dataclass(frozen=True, slots=True)
class WorkerTiming:
    minutes: int = 30  # ConnectionTimeout of each GetStreamingEvents
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 300.0
    down_grace_s: float = 60.0


class Host(Protocol):
    """What a worker needs of its supervisor."""

    lock: threading.RLock
    stopping: bool
    stop_deadline: float | None  # clock() time after which a stopping worker stops unsubscribing
    clock: Callable[[], float]
    rng: Callable[[], float]

    def notify(self, address: str, reason: str) -> None: ...

    def subscribed(self, address: str) -> str:
        """Note a new subscription of ``address``; returns the on_change reason to use."""
        ...

    def member_failed(self, worker: GroupWorker, address: str, error: CalsyncError) -> None: ...

    def state_changed(self) -> None: ...


class _Backoff(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("back off")
        self.retry_after = retry_after


def group_level(error: CalsyncError) -> bool:
    """Errors that concern the connection or the tenant, not the one mailbox being subscribed."""
    if error.error_code == "ErrorExceededSubscriptionCount":  # this mailbox has 20 already
        return False
    return isinstance(error, TransientError | AuthError)


class GroupWorker:
    def __init__(
        self, host: Host, backend: StreamingBackend, number: int, timing: WorkerTiming
    ) -> None:
        self.host = host
        self.backend = backend
        self.number = number
        self.timing = timing
        self.desired: tuple[str, ...] = ()  # written by the supervisor under host.lock
        self.subs: dict[str, str] = {}  # address -> subscription id (under host.lock)
        self.connected = False
        self.retired = False
        self._by_id: dict[str, str] = {}
        self._anchor: str | None = None
        self._wake = threading.Event()
        self._stream: EventStream | None = None
        self._aborted = False
        self._announce = True
        self._lost_streak = 0  # streams refused at once in a row
        self._down_since: float | None = None
        self._down_reported = False
        self._thread: threading.Thread | None = None

    @property
    def tenant(self) -> str:
        return self.backend.tenant

    def healthy_members(self) -> list[str]:
        """Members with a subscription on an open connection (call under host.lock)."""
        if not self.connected:
            return []
        return [a for a in self.desired if a in self.subs]

    # --- control (supervisor side) --------------------------------------------------------------

    def start(self) -> None:
        name = f"calsync-stream-{self.tenant}-{self.number}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Membership changed, retired or stopping: leave the stream or the back-off now."""
        with self.host.lock:
            self._wake.set()
            if self._stream is not None:
                self._aborted = True
                self._stream.close()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))

    # --- the thread -----------------------------------------------------------------------------

    def _done(self) -> bool:
        with self.host.lock:
            return self.host.stopping or self.retired

    def _run(self) -> None:
        failures = 0
        while not self._done():
            self._wake.clear()
            try:
                self._step()
                failures = 0
                continue
            except _Backoff as backoff:
                retry_after = backoff.retry_after
            except Exception as exc:  # a bug: say so, back off, keep the group alive
                log.exception("subscription_internal_error", tenant=self.tenant, error=repr(exc))
                retry_after = None
            failures += 1
            t = self.timing
            delay = min(t.reconnect_max_s, t.reconnect_initial_s * 2 ** min(failures - 1, 20))
            delay = max(delay * (1.0 + 0.5 * self.host.rng()), retry_after or 0.0)
            self._wait(delay)
        self._shutdown()

    def _wait(self, delay: float) -> None:
        clock = self.host.clock
        end = clock() + delay
        while not self._done():
            down = self._down_since
            grace = self.timing.down_grace_s
            if down is not None and not self._down_reported and clock() - down >= grace:
                self._down_reported = True
                for address in self.desired:
                    self.host.notify(address, "subscription_down")
            remaining = end - clock()
            if remaining <= 0:
                return
            if down is not None and not self._down_reported:
                remaining = min(remaining, down + grace - clock())
            if self._wake.wait(max(0.0, remaining)):
                return

    def _step(self) -> None:
        self._reconcile()
        if self._done():
            return
        with self.host.lock:
            ids = [self.subs[a] for a in self.desired if a in self.subs]
            anchor = self._anchor
        if not ids or anchor is None:
            self._set_connected(False)
            self._wake.wait(60.0)
            return
        stream = self.backend.open_stream(anchor, ids, self.timing.minutes)
        with self.host.lock:
            self._stream, self._aborted = stream, False
            if self._wake.is_set() or self.host.stopping:
                self._aborted = True
                stream.close()
        try:
            stream.run(self._on_status, self._on_events)
        except SubscriptionLost as lost:
            self._lost(lost)
        except CalsyncError as error:
            if not self._aborted:
                self._dropped(anchor, error)
        finally:
            with self.host.lock:
                self._stream = None

    def _on_status(self) -> None:
        if self._announce:
            self._announce = False
            with self.host.lock:
                size = len(self.subs)
            log.info(
                "subscription_group_opened", tenant=self.tenant, size=size, anchor=self._anchor
            )
        self._down_since, self._down_reported, self._lost_streak = None, False, 0
        self._set_connected(True)

    def _on_events(self, subscription_id: str) -> None:
        with self.host.lock:
            address = self._by_id.get(subscription_id)
        if address is not None:
            log.debug("notification", mailbox=address, tenant=self.tenant)
            self.host.notify(address, "notification")

    def _set_connected(self, connected: bool) -> None:
        with self.host.lock:
            changed = self.connected != connected
            self.connected = connected
        if changed:
            self.host.state_changed()

    def _lost(self, lost: SubscriptionLost) -> None:
        with self.host.lock:
            gone = set(lost.subscription_ids) & set(self._by_id) or set(self._by_id)
            addresses = sorted(self._by_id.pop(sub_id) for sub_id in gone)
            for address in addresses:
                self.subs.pop(address, None)
        log.warning(
            "subscription_lost", tenant=self.tenant, anchor=self._anchor,
            error_code=lost.error_code, lost=len(addresses), error=str(lost),
        )  # fmt: skip
        self._announce = True  # the next connection has new members: say so
        self._lost_streak += 1
        if self._lost_streak > 1:  # refused again right after resubscribing: do not spin
            raise _Backoff()

    def _dropped(self, anchor: str, error: CalsyncError) -> None:
        log.warning(
            "subscription_lost", tenant=self.tenant, anchor=anchor,
            error_code=error.error_code, lost=0, error=str(error),
        )  # fmt: skip
        self._set_connected(False)
        self._announce = True
        if self._down_since is None:
            self._down_since = self.host.clock()
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        raise _Backoff(retry_after)

    # --- subscriptions --------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Make the subscriptions match ``desired`` (raises _Backoff on a group-level error)."""
        while not self._done():
            with self.host.lock:
                desired = self.desired
            anchor = desired[0] if desired else None
            if self._anchor is not None and anchor != self._anchor:
                self._drop_all()  # subscriptions carry the old anchor's affinity
            self._anchor = anchor
            if anchor is None:
                return
            self._unsubscribe_leavers(anchor, desired)
            if self._subscribe_missing(anchor, desired):
                return

    def _subscribe_missing(self, anchor: str, desired: tuple[str, ...]) -> bool:
        """Subscribe the members without a subscription; False when the plan changed meanwhile."""
        for address in desired:
            with self.host.lock:
                if address in self.subs:
                    continue
                if self.desired != desired or self.host.stopping:
                    return self.host.stopping
            try:
                sub_id = self.backend.subscribe(address, anchor)
            except CalsyncError as error:
                if group_level(error):
                    log.warning(
                        "subscription_failed", mailbox=address, tenant=self.tenant,
                        error_code=error.error_code, error=str(error),
                    )  # fmt: skip
                    retry = error.retry_after if isinstance(error, ThrottledError) else None
                    raise _Backoff(retry) from None
                self.host.member_failed(self, address, error)
                if address == anchor:
                    return False  # a new anchor: start over
                continue
            with self.host.lock:
                self.subs[address] = sub_id
                self._by_id[sub_id] = address
            self._announce = True
            self.host.notify(address, self.host.subscribed(address))
        return True

    def _unsubscribe_leavers(self, anchor: str, desired: tuple[str, ...]) -> None:
        with self.host.lock:
            leavers = {a: s for a, s in self.subs.items() if a not in desired}
            for address, sub_id in leavers.items():
                del self.subs[address]
                self._by_id.pop(sub_id, None)
        for sub_id in leavers.values():
            self._unsubscribe(anchor, sub_id)

    def _drop_all(self, deadline: float | None = None, *, forget: bool = True) -> None:
        """Unsubscribe every member (best effort, until ``deadline``), forget the anchor."""
        anchor = self._anchor
        with self.host.lock:
            old = list(self.subs.values())
            self.subs.clear()
            self._by_id.clear()
        if anchor is None:
            return
        for sub_id in old:
            if deadline is not None and self.host.clock() >= deadline:
                break
            self._unsubscribe(anchor, sub_id)
        if forget:
            self.backend.forget(anchor)

    def _unsubscribe(self, anchor: str, sub_id: str) -> None:
        try:
            self.backend.unsubscribe(anchor, sub_id)
        except CalsyncError as error:  # it expires on its own within 30 minutes
            log.debug("unsubscribe_failed", tenant=self.tenant, error_code=error.error_code)

    def _shutdown(self) -> None:
        self._set_connected(False)
        with self.host.lock:
            stopping = self.host.stopping
            deadline = self.host.stop_deadline if stopping else None
        # a retired group's anchor may already anchor a new group: keep its cookie then
        self._drop_all(deadline, forget=stopping)
        self.host.state_changed()
