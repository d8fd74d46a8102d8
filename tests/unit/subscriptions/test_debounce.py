"""A burst for one mailbox is one on_change; later changes are never swallowed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import structlog

from calsync.subscriptions import Debouncer


class Calls:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, address: str, reason: str) -> None:
        with self.cond:
            self.items.append((address, reason))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.items) >= count, timeout)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def debouncer(calls: Calls) -> Iterator[Debouncer]:
    deb = Debouncer(calls, 0.3)
    deb.start()
    yield deb
    deb.stop()


def test_fifty_notifications_are_one_call(debouncer: Debouncer, calls: Calls) -> None:
    for _ in range(50):
        debouncer.notify("a@x.example")
    debouncer.notify("b@x.example")
    assert calls.wait_for(2)
    assert sorted(calls.items) == [("a@x.example", "notification"), ("b@x.example", "notification")]
    debouncer.notify("a@x.example")  # after the call: a new window, a new call
    assert calls.wait_for(3)
    assert calls.items[2] == ("a@x.example", "notification")
    assert debouncer.pending() == 0


def test_a_catch_up_reason_wins_within_the_window(debouncer: Debouncer, calls: Calls) -> None:
    debouncer.notify("a@x.example", "notification")
    debouncer.notify("a@x.example", "resubscribed")
    debouncer.notify("a@x.example", "notification")
    assert calls.wait_for(1)
    assert calls.items == [("a@x.example", "resubscribed")]


def test_a_failing_callback_does_not_stop_later_calls() -> None:
    seen: list[str] = []
    done = threading.Event()

    def on_change(address: str, reason: str) -> None:
        seen.append(address)
        if address == "bad@x.example":
            raise RuntimeError("boom")
        done.set()

    deb = Debouncer(on_change, 0.0)
    deb.start()
    try:
        with structlog.testing.capture_logs() as logs:
            deb.notify("bad@x.example")
            assert not done.is_set()
            deb.notify("good@x.example")
            assert done.wait(5)
    finally:
        deb.stop()
    assert seen == ["bad@x.example", "good@x.example"]
    assert [e["event"] for e in logs] == ["subscription_internal_error"]
