"""An in-memory Exchange for the subscription supervisor: subscriptions, streams, faults."""

from __future__ import annotations

import itertools
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from calsync.errors import CalsyncError, TransientError
from calsync.model import Mailbox
from calsync.subscriptions import (
    SubscriptionCounts,
    SubscriptionLost,
    SubscriptionSupervisor,
)

TENANT = "contoso"


def mailboxes(n: int, tenant: str = TENANT, start: int = 1) -> list[Mailbox]:
    return [Mailbox(f"user{i:03d}@{tenant}.example", tenant) for i in range(start, start + n)]


class FakeStream:
    def __init__(self, server: FakeServer, anchor: str, ids: Sequence[str]) -> None:
        self.server, self.anchor, self.ids = server, anchor, list(ids)
        self.items: queue.Queue[tuple[str, object]] = queue.Queue()
        self.closed = False
        self.ended = threading.Event()

    def run(self, on_status: Callable[[], None], on_events: Callable[[str], None]) -> None:
        try:
            with self.server.lock:
                bad = [i for i in self.ids if i not in self.server.subs]
            if bad:
                raise SubscriptionLost("gone", subscription_ids=bad)
            on_status()
            while True:
                kind, value = self.items.get()
                if kind == "event":
                    on_events(str(value))
                elif kind == "lost":
                    raise SubscriptionLost("lost", subscription_ids=list(value))  # type: ignore[call-overload]
                elif kind == "drop":
                    raise TransientError("connection reset", error_code="ConnectionError")
                else:  # end: ConnectionTimeout reached, or closed by the client
                    return
        finally:
            self.ended.set()
            with self.server.lock:
                if self in self.server.open:
                    self.server.open.remove(self)
                self.server.cond.notify_all()

    def close(self) -> None:
        self.closed = True
        self.items.put(("end", None))


@dataclass
class FakeServer:
    lock: threading.RLock = field(default_factory=threading.RLock)
    subs: dict[str, str] = field(default_factory=dict)  # id -> address
    open: list[FakeStream] = field(default_factory=list)
    failing: dict[str, CalsyncError] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    subscribed_with: list[tuple[str, str]] = field(default_factory=list)  # (address, anchor)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.cond = threading.Condition(self.lock)

    def stream_of(self, address: str) -> FakeStream | None:
        with self.lock:
            for stream in self.open:
                if any(self.subs.get(i) == address for i in stream.ids):
                    return stream
        return None

    def sub_of(self, address: str) -> str:
        with self.lock:
            return next(i for i, a in self.subs.items() if a == address)

    def change(self, address: str) -> None:
        stream = self.stream_of(address)
        assert stream is not None, f"{address} is not on an open stream"
        stream.items.put(("event", self.sub_of(address)))

    def expire(self, address: str) -> None:
        """The server forgets the subscription; the open stream reports it lost."""
        stream = self.stream_of(address)
        sub_id = self.sub_of(address)
        with self.lock:
            del self.subs[sub_id]
        if stream is not None:
            stream.items.put(("lost", [sub_id]))

    def drop_all(self) -> None:
        with self.lock:
            streams = list(self.open)
        for stream in streams:
            stream.items.put(("drop", None))

    def wait_subscribed(self, addresses: list[str], timeout: float = 5.0) -> bool:
        """Wait until exactly these mailboxes hold a subscription."""
        with self.cond:
            return self.cond.wait_for(
                lambda: sorted(self.subs.values()) == sorted(addresses), timeout
            )

    def wait_open(self, count: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.open) == count, timeout)


class FakeBackend:
    def __init__(self, server: FakeServer, tenant: str = TENANT) -> None:
        self.server = server
        self._tenant = tenant
        self.closed = False

    @property
    def tenant(self) -> str:
        return self._tenant

    def subscribe(self, address: str, anchor: str) -> str:
        server = self.server
        with server.lock:
            server.calls["subscribe"] += 1
            server.cond.notify_all()
            if address in server.failing:
                raise server.failing[address]
            sub_id = f"sub{next(server.ids)}-{address}"
            server.subs[sub_id] = address
            server.subscribed_with.append((address, anchor))
            return sub_id

    def open_stream(self, anchor: str, subscription_ids: Sequence[str], minutes: int) -> FakeStream:
        stream = FakeStream(self.server, anchor, subscription_ids)
        with self.server.lock:
            self.server.calls["open_stream"] += 1
            self.server.open.append(stream)
            self.server.cond.notify_all()
        return stream

    def unsubscribe(self, anchor: str, subscription_id: str) -> None:
        with self.server.lock:
            self.server.calls["unsubscribe"] += 1
            self.server.subs.pop(subscription_id, None)
            self.server.cond.notify_all()

    def forget(self, anchor: str) -> None:
        self.server.calls["forget"] += 1

    def close(self) -> None:
        self.closed = True


class Changes:
    """Records on_change calls; ``wait`` blocks until a predicate over them holds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, address: str, reason: str) -> None:
        with self.cond:
            self.calls.append((address, reason))
            self.cond.notify_all()

    def of(self, reason: str) -> list[str]:
        with self.cond:
            return [a for a, r in self.calls if r == reason]

    def wait(self, predicate: Callable[[Changes], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)


@dataclass
class Rig:
    server: FakeServer
    backend: FakeBackend
    changes: Changes
    supervisor: SubscriptionSupervisor

    def wait(self, predicate: Callable[[SubscriptionCounts], bool], timeout: float = 5.0) -> None:
        assert self.supervisor.wait_for(predicate, timeout), self.supervisor.counts()
