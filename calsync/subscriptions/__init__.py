"""Streaming notifications, grouped by ``max_subscriptions_per_connection`` (no exchangelib here).

* ``packing``: which mailbox goes into which group (pure);
* ``worker``: one thread per group, its subscriptions and its GetStreamingEvents connection;
* ``supervisor``: the ``ports.NotificationSource``: groups per tenant, retries, counts, health;
* ``debounce``: a burst of notifications for one mailbox is one ``on_change`` call;
* ``backend``: what Exchange must provide (``calsync.ews.notifications`` implements it).
"""

from __future__ import annotations

from calsync.subscriptions.backend import (
    LOST_CODES,
    EventStream,
    StreamingBackend,
    SubscriptionCounts,
    SubscriptionLost,
)
from calsync.subscriptions.debounce import Debouncer
from calsync.subscriptions.packing import GroupPlan, plan_groups
from calsync.subscriptions.supervisor import SubscriptionSupervisor, SupervisorSettings

__all__ = [
    "LOST_CODES",
    "Debouncer",
    "EventStream",
    "GroupPlan",
    "StreamingBackend",
    "SubscriptionCounts",
    "SubscriptionLost",
    "SubscriptionSupervisor",
    "SupervisorSettings",
    "plan_groups",
]
