"""Which subscriptions a GetStreamingEvents error names (exchangelib appends them to the text)."""

from __future__ import annotations

from calsync.ews.notifications import EVENT_TYPES, lost_subscription_ids
from calsync.subscriptions import LOST_CODES, SubscriptionLost


def test_ids_from_exchangelibs_message() -> None:
    message = "Subscription is invalid. (subscription IDs: ['AAA=', 'BBB='])"
    assert lost_subscription_ids(message) == ["AAA=", "BBB="]
    assert lost_subscription_ids("Subscription is invalid.") == []


def test_lost_codes_and_event_types() -> None:
    assert {"ErrorSubscriptionNotFound", "ErrorMissedNotificationEvents"} <= LOST_CODES
    assert "ErrorExpiredSubscription" in LOST_CODES and "ErrorServerBusy" not in LOST_CODES
    lost = SubscriptionLost("gone", subscription_ids=["A"], error_code="ErrorInvalidSubscription")
    assert (lost.subscription_ids, lost.error_code) == (("A",), "ErrorInvalidSubscription")
    assert "NewMailEvent" not in EVENT_TYPES and "ModifiedEvent" in EVENT_TYPES
