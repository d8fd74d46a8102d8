"""The scheduling policy is a pure function: a table of situations and their next run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.scheduler.policy import OutcomeKind, Timing, next_due

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T = Timing(
    poll_interval=300,
    poll_jitter=30,
    healthy_poll_interval=86400,
    permanent_failure_retry=3600,
    max_backoff=3600,
    base_backoff=15,
)


@pytest.mark.parametrize(
    ("kind", "failures", "rand", "retry_after", "healthy", "expected"),
    [
        (OutcomeKind.OK, 0, 0.0, None, False, 300),
        (OutcomeKind.OK, 0, 0.5, None, False, 315),
        (OutcomeKind.OK, 0, 0.0, None, True, 86400),
        (OutcomeKind.TRANSIENT, 1, 1.0, None, False, 15),
        (OutcomeKind.TRANSIENT, 1, 0.0, None, False, 7.5),
        (OutcomeKind.TRANSIENT, 3, 1.0, None, False, 60),
        (OutcomeKind.TRANSIENT, 30, 1.0, None, False, 3600),
        (OutcomeKind.THROTTLED, 1, 0.0, 120.0, False, 120),
        (OutcomeKind.THROTTLED, 5, 1.0, 2.0, False, 240),
        (OutcomeKind.PERMANENT, 1, 0.0, None, False, 3600),
        (OutcomeKind.AUTH, 4, 0.9, None, False, 900),
        (OutcomeKind.GUARD, 1, 0.0, None, False, 3600),
    ],
)
def test_next_due_table(
    kind: OutcomeKind,
    failures: int,
    rand: float,
    retry_after: float | None,
    healthy: bool,
    expected: float,
) -> None:
    decision = next_due(
        kind,
        now=NOW,
        consecutive_failures=failures,
        timing=T,
        random=lambda: rand,
        retry_after=retry_after,
        subscription_healthy=healthy,
    )
    assert decision.delay_s == pytest.approx(expected)
    assert (decision.due - NOW).total_seconds() == pytest.approx(expected)


@given(
    failures=st.integers(1, 1000),
    rand=st.floats(0, 0.999999),
    retry_after=st.none() | st.floats(0, 100000),
)
def test_backoff_is_bounded_and_honours_the_server(
    failures: int, rand: float, retry_after: float | None
) -> None:
    decision = next_due(
        OutcomeKind.THROTTLED,
        now=NOW,
        consecutive_failures=failures,
        timing=T,
        random=lambda: rand,
        retry_after=retry_after,
    )
    assert decision.delay_s <= max(T.max_backoff, retry_after or 0)
    assert decision.delay_s >= (retry_after or 0)
    assert decision.delay_s >= T.base_backoff / 2


@given(f=st.integers(1, 30))
def test_backoff_grows_with_failures(f: int) -> None:
    def delay(n: int) -> float:
        return next_due(
            OutcomeKind.TRANSIENT, now=NOW, consecutive_failures=n, timing=T, random=lambda: 1.0
        ).delay_s

    assert delay(f + 1) >= delay(f)
