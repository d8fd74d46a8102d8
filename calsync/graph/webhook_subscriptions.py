"""Graph change-notification subscriptions of one mailbox's events: create, renew, delete.

``POST /subscriptions`` makes Graph validate ``notificationUrl`` (and
``lifecycleNotificationUrl``) before it answers, so the receiver must be listening first; a
refused validation comes back as an error (400) and the mailbox stays on delta polling. Renewal is
``PATCH /subscriptions/{id}`` with a new ``expirationDateTime`` (also the answer to a
``reauthorizationRequired`` lifecycle notification); a subscription Graph no longer knows answers
404, returned here as ``None``/``False`` so that the caller creates a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from calsync.errors import ItemError
from calsync.graph.client import GraphClient

CHANGE_TYPES = "created,updated,deleted"
# Graph's maximum lifetime of a subscription to Outlook events (10,080 minutes, under 7 days)
MAX_EVENT_SUBSCRIPTION_MINUTES = 10080


@dataclass(frozen=True, slots=True)
class GraphSubscription:
    id: str
    resource: str
    expires: datetime


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(body: Any, fallback: datetime) -> GraphSubscription:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ItemError("Graph answered a subscription request without an id", item="")
    raw = body.get("expirationDateTime")
    expires = fallback
    if isinstance(raw, str):
        try:
            expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            expires = fallback
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return GraphSubscription(body["id"], str(body.get("resource", "")), expires)


def create_subscription(
    client: GraphClient,
    address: str,
    *,
    notification_url: str,
    client_state: str,
    expires: datetime,
    lifecycle_url: str | None = None,
) -> GraphSubscription:
    """A new subscription to ``address``'s events (created, updated, deleted)."""
    body = {
        "changeType": CHANGE_TYPES,
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url or notification_url,
        "resource": f"users/{quote(address)}/events",
        "expirationDateTime": _stamp(expires),
        "clientState": client_state,
    }
    _, answer = client.call(address, "POST", "/subscriptions", body=body)
    return _parse(answer, expires)


def renew_subscription(
    client: GraphClient, address: str, subscription_id: str, expires: datetime
) -> GraphSubscription | None:
    """The renewed subscription, or None when Graph no longer knows it (404)."""
    status, answer = client.call(
        address,
        "PATCH",
        f"/subscriptions/{quote(subscription_id, safe='')}",
        body={"expirationDateTime": _stamp(expires)},
        item=subscription_id,
        allow=(404,),
    )
    if status == 404:
        return None
    return _parse(answer, expires)


def delete_subscription(client: GraphClient, address: str, subscription_id: str) -> bool:
    """True when deleted, False when Graph did not know it (already gone)."""
    status, _ = client.call(
        address,
        "DELETE",
        f"/subscriptions/{quote(subscription_id, safe='')}",
        item=subscription_id,
        allow=(404,),
    )
    return status != 404


def list_subscriptions(client: GraphClient) -> list[dict[str, Any]]:
    """The app's subscriptions in this tenant (``GET /subscriptions``, every page)."""
    found: list[dict[str, Any]] = []
    url: str | None = "/subscriptions"
    while url is not None:
        _, page = client.call("", "GET", url)
        values = page.get("value") if isinstance(page, dict) else None
        found += [v for v in values or [] if isinstance(v, dict)]
        link = page.get("@odata.nextLink") if isinstance(page, dict) else None
        url = link if isinstance(link, str) else None
    return found
