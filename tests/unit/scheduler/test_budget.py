"""The request budget of Graph (10,000 requests per 10 minutes per app and mailbox) as a pure
sliding-window policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from calsync.scheduler.budget import BudgetLimit, RequestBudget, Spend, free_at, used

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SMALL = BudgetLimit(requests=100, window_s=600)
TICK = timedelta(microseconds=1)

spends = st.lists(
    st.builds(
        Spend,
        at=st.integers(min_value=-1200, max_value=0).map(lambda s: T0 + timedelta(seconds=s)),
        requests=st.integers(min_value=1, max_value=60),
    ),
    max_size=12,
)
needs = st.integers(min_value=-5, max_value=150)


def fits(history: list[Spend], now: datetime, need: int) -> bool:
    return used(history, now, SMALL) + min(max(1, need), SMALL.requests) <= SMALL.requests


@given(spends, needs)
def test_a_run_is_deferred_exactly_when_it_would_exceed_the_window(
    history: list[Spend], need: int
) -> None:
    assert (free_at(history, T0, need, SMALL) is None) == fits(history, T0, need)


@given(spends, needs)
def test_a_deferred_run_fits_at_the_time_given_and_not_a_moment_earlier(
    history: list[Spend], need: int
) -> None:
    until = free_at(history, T0, need, SMALL)
    if until is None:
        return
    assert T0 < until <= T0 + SMALL.window
    assert fits(history, until, need)
    assert free_at(history, until, need, SMALL) is None
    assert not fits(history, until - TICK, need)


@given(spends)
def test_only_the_last_ten_minutes_count(history: list[Spend]) -> None:
    inside = sum(s.requests for s in history if s.at > T0 - timedelta(minutes=10))
    assert used(history, T0, SMALL) == inside


def test_the_default_is_outlooks_limit() -> None:
    assert (BudgetLimit().requests, BudgetLimit().window_s) == (10_000, 600)


def test_a_mailbox_that_spent_its_budget_waits_for_its_oldest_requests_to_age_out() -> None:
    budget = RequestBudget()
    budget.record("a@x", T0, 6_000)
    budget.record("a@x", T0 + timedelta(minutes=4), 4_000)
    assert budget.check("b@x", T0 + timedelta(minutes=5)) is None  # per mailbox
    deferral = budget.check("a@x", T0 + timedelta(minutes=5))
    assert deferral is not None
    assert deferral.until == T0 + timedelta(minutes=10)  # the 6,000 leave the window
    assert (deferral.used, deferral.need, deferral.limit) == (10_000, 1, 10_000)
    assert budget.check("a@x", deferral.until) is None
    # a run known to need more waits until enough has left
    assert budget.check("a@x", deferral.until, need=7_000) is not None
    later = T0 + timedelta(minutes=14, seconds=1)
    assert budget.check("a@x", later, need=7_000) is None


def test_a_run_bigger_than_the_whole_budget_waits_for_an_empty_window() -> None:
    budget = RequestBudget(SMALL)
    budget.record("a@x", T0, 10)
    deferral = budget.check("a@x", T0 + timedelta(seconds=1), need=500)
    assert deferral is not None and deferral.until == T0 + SMALL.window
    assert budget.check("a@x", T0 + SMALL.window, need=500) is None


def test_old_spends_are_forgotten() -> None:
    budget = RequestBudget(SMALL)
    for minute in range(0, 60, 5):
        budget.record("a@x", T0 + timedelta(minutes=minute), 1)
        budget.record("a@x", T0 + timedelta(minutes=minute), 0)  # nothing spent: no entry
    assert budget.used("a@x", T0 + timedelta(minutes=55)) == 2
    assert len(budget._spends["a@x"]) <= 3
