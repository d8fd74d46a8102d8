"""The catalogue of log events: the monitoring contract.

Event names are stable snake_case; operators alert on them. The README's event table is
checked against this catalogue by a test, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventSpec:
    name: str
    level: str
    fields: tuple[str, ...]
    meaning: str


_RUN = (
    "mailbox",
    "tenant",
    "direction",
    "outcome",
    "exchange",
    "local",
    "conflicts",
    "skipped",
    "requests",
    "duration_s",
    "run_id",
)

CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(
        "daemon_started",
        "info",
        ("mailboxes", "tenants", "version", "store"),
        "the daemon validated its config, opened the store and starts scheduling",
    ),
    EventSpec(
        "daemon_heartbeat",
        "info",
        (
            "healthy",
            "failing",
            "paused",
            "new",
            "due",
            "running",
            "paused_tenants",
            "subscriptions",
        ),
        "periodic summary of the mailboxes' states; subscriptions = groups, connections, "
        "subscribed, polled, failed, over_capacity",
    ),
    EventSpec("daemon_stopped", "info", ("reason", "exit_code"), "clean shutdown finished"),
    EventSpec("config_reloaded", "info", ("added", "removed", "changed"), "SIGHUP applied"),
    EventSpec(
        "config_reload_failed",
        "error",
        ("problems",),
        "SIGHUP with a broken config: the old config keeps running",
    ),
    EventSpec("config_warning", "warning", ("warning",), "a configuration warning at start"),
    EventSpec("sync_started", "debug", ("mailbox", "tenant", "run_id"), "a mailbox run begins"),
    EventSpec(
        "sync_finished", "info", _RUN, "the canonical line of a successful (or partial) mailbox run"
    ),
    EventSpec(
        "sync_failed",
        "error",
        (*_RUN, "error_code", "error", "hint", "retry_in_s"),
        "a mailbox run failed; it is retried after retry_in_s",
    ),
    EventSpec(
        "auth_failed",
        "error",
        ("tenant", "error_code", "hint"),
        "Entra ID refused the tenant's credentials; its mailboxes pause",
    ),
    EventSpec(
        "mailbox_access_denied",
        "error",
        ("mailbox", "tenant", "error_code", "hint"),
        "the app may not open this mailbox (access policy, RBAC, impersonation)",
    ),
    EventSpec(
        "mailbox_not_found",
        "error",
        ("mailbox", "tenant", "error_code", "hint"),
        "the mailbox does not exist",
    ),
    EventSpec(
        "ews_throttled",
        "warning",
        ("mailbox", "tenant", "error_code", "back_off_s"),
        "Exchange asked calsync to slow down (EWS ErrorServerBusy; over Graph a 429 or 503, "
        "back_off_s = Retry-After)",
    ),
    EventSpec(
        "conflict",
        "info",
        ("mailbox", "event_id", "policy", "winner"),
        "both sides changed one event; the policy chose the winner",
    ),
    EventSpec(
        "item_skipped",
        "warning",
        ("mailbox", "item", "error_code", "error"),
        "one item could not be synced; the run went on",
    ),
    EventSpec(
        "mass_delete_guard",
        "error",
        ("mailbox", "deletes", "total"),
        "a run would delete too much of a mailbox and stopped",
    ),
    EventSpec(
        "full_resync",
        "warning",
        ("mailbox", "reason"),
        "the sync state was refused; the mailbox is reconciled from scratch",
    ),
    EventSpec(
        "subscription_group_opened",
        "info",
        ("tenant", "size", "anchor"),
        "a streaming connection for a group of mailboxes opened",
    ),
    EventSpec(
        "subscription_lost",
        "warning",
        ("tenant", "anchor", "error_code", "lost", "error"),
        "a group's connection dropped (lost=0: it reconnects with back-off, the subscriptions "
        "survive) or the server forgot lost subscriptions (new ones plus a catch-up sync)",
    ),
    EventSpec(
        "subscription_failed",
        "warning",
        ("mailbox", "tenant", "error_code", "error", "hint", "retry_in_s"),
        "a mailbox could not be subscribed; it is polled instead and retried after retry_in_s "
        "(without retry_in_s: a connection-level error, its group backs off and retries)",
    ),
    EventSpec(
        "subscription_capacity_exceeded",
        "warning",
        ("tenant", "polled", "capacity"),
        "more mailboxes than connections x subscriptions per connection (logged once)",
    ),
    EventSpec("notification", "debug", ("mailbox", "tenant"), "Exchange reported a change"),
    EventSpec(
        "subscription_internal_error",
        "error",
        ("tenant", "mailbox", "error"),
        "a bug in the streaming notifications (traceback attached); the group backs off and "
        "goes on, polling covers its mailboxes meanwhile",
    ),
    EventSpec(
        "unsubscribe_failed",
        "debug",
        ("tenant", "error_code"),
        "an Unsubscribe failed; the subscription expires on its own within 30 minutes",
    ),
    EventSpec(
        "webhook_listening",
        "info",
        ("host", "port", "path", "public_url", "tls"),
        "[webhooks] on: the receiver for Graph change notifications accepts connections",
    ),
    EventSpec(
        "webhook_disabled",
        "error",
        ("reason",),
        "[webhooks] is on but could not start (port in use, unreadable client state or "
        "certificate, no Graph tenant); every mailbox is polled",
    ),
    EventSpec(
        "webhook_subscribed",
        "info",
        ("mailbox", "tenant", "subscription_id", "expires"),
        "a Graph subscription for the mailbox's events was created (a catch-up sync follows)",
    ),
    EventSpec(
        "webhook_subscription_failed",
        "warning",
        ("mailbox", "tenant", "error_code", "error", "hint", "retry_in_s"),
        "Graph refused a subscription (often: it could not validate public_url); the mailbox "
        "is polled and retried after retry_in_s",
    ),
    EventSpec(
        "webhook_subscription_renewed",
        "debug",
        ("mailbox", "expires"),
        "a subscription was renewed before it expired",
    ),
    EventSpec(
        "webhook_renewal_failed",
        "warning",
        ("mailbox", "tenant", "error_code", "error", "retry_in_s"),
        "renewing a subscription failed; retried before it expires",
    ),
    EventSpec(
        "webhook_subscription_lost",
        "warning",
        ("mailbox", "tenant", "reason"),
        "Graph removed or forgot a subscription (or it expired): a new one plus a catch-up sync",
    ),
    EventSpec(
        "webhook_lifecycle",
        "info",
        ("mailbox", "tenant", "lifecycle_event"),
        "a lifecycle notification (reauthorizationRequired: renewed; subscriptionRemoved: "
        "recreated; missed: catch-up sync)",
    ),
    EventSpec(
        "webhook_notification",
        "debug",
        ("mailbox", "tenant", "change_type"),
        "Graph reported a change: the mailbox syncs now",
    ),
    EventSpec(
        "webhook_unknown_subscription",
        "debug",
        ("subscription_id",),
        "a notification for a subscription calsync does not hold (an old one; it expires)",
    ),
    EventSpec(
        "webhook_rejected",
        "warning",
        ("reason", "count", "remote"),
        "notifications with a wrong clientState (or a malformed body) were dropped, nothing "
        "synced: a forged request, or a subscription of an earlier process",
    ),
    EventSpec(
        "webhook_internal_error",
        "error",
        ("error",),
        "a bug in the webhook manager (traceback attached); polling covers the mailboxes",
    ),
    EventSpec(
        "webhook_unsubscribe_failed",
        "debug",
        ("mailbox", "tenant", "error_code"),
        "deleting a subscription failed (at stop, or a stale one at start); Graph expires it "
        "on its own",
    ),
    EventSpec(
        "webhook_stale_deleted",
        "info",
        ("tenant", "deleted"),
        "at start: subscriptions an earlier process left for the same public_url were deleted",
    ),
    EventSpec(
        "webhook_stopped",
        "info",
        ("deleted", "left"),
        "shutdown: the Graph subscriptions were deleted (left: not deleted in time)",
    ),
    EventSpec(
        "secret_expiring",
        "warning",
        ("tenant", "credential", "days_left", "expires", "hint"),
        "the tenant's secret or certificate expires soon (daily from 30 days ahead)",
    ),
    EventSpec(
        "secret_expired",
        "error",
        ("tenant", "credential", "expired", "hint"),
        "the tenant's secret or certificate has expired",
    ),
    EventSpec("store_error", "error", ("error",), "the local store failed"),
    EventSpec(
        "ews_request",
        "debug",
        ("mailbox", "operation", "soap"),
        "a SOAP request ([logging] ews_protocol_debug; secrets and bodies removed)",
    ),
    EventSpec(
        "ews_response",
        "debug",
        ("mailbox", "operation", "status", "soap"),
        "a SOAP response ([logging] ews_protocol_debug)",
    ),
    EventSpec(
        "daemon_stopping",
        "info",
        ("reason", "running", "grace_s"),
        "SIGTERM/SIGINT: no new runs; running ones get shutdown_grace seconds",
    ),
    EventSpec(
        "shutdown_grace_exceeded",
        "error",
        ("running", "grace_s"),
        "runs still going when shutdown_grace ran out; calsync exits without them",
    ),
    EventSpec(
        "config_reload_needs_restart",
        "warning",
        ("keys", "hint"),
        "SIGHUP changed settings that only a restart applies",
    ),
    EventSpec(
        "tenant_throttled",
        "warning",
        ("tenant", "mailbox", "back_off_s", "error_code"),
        "Exchange throttled a tenant: all of its mailboxes wait out the back-off",
    ),
    EventSpec(
        "tenant_paused",
        "error",
        ("tenant", "error_code", "error", "hint", "retry_in_s"),
        "Entra ID refused the tenant's credentials: its mailboxes pause (a probe every retry_in_s)",
    ),
    EventSpec(
        "tenant_resumed",
        "info",
        ("tenant", "reason"),
        "a paused tenant works again (probe succeeded or new credentials via SIGHUP)",
    ),
    EventSpec(
        "sync_deferred",
        "debug",
        ("mailbox", "tenant", "reason", "due"),
        "a run did not start because its tenant is throttled or paused, or the mailbox spent "
        "its Graph request budget (reason: throttled, paused, budget)",
    ),
    EventSpec(
        "graph_relinked",
        "info",
        ("mailbox", "tenant", "relinked", "unmatched"),
        "first Graph run of a mailbox synced over EWS: its links now point at the Graph ids of "
        "the same items (unmatched = linked items Graph does not list: gone, or re-created)",
    ),
    EventSpec(
        "meeting_write_skipped",
        "warning",
        ("mailbox", "item_id", "action", "attendees"),
        "Graph would mail the attendees of this meeting (it has no SendToNone): the update or "
        "delete was not made; set allow_meeting_updates = true for the mailbox to allow it",
    ),
    EventSpec(
        "graph_error",
        "debug",
        ("mailbox", "status", "error_code"),
        "a Graph request failed with this HTTP status and Graph error code",
    ),
    EventSpec(
        "graph_budget_deferred",
        "warning",
        ("mailbox", "tenant", "used", "limit", "window_s", "until"),
        "a Graph mailbox spent its request budget (Outlook allows 10,000 requests per 10 minutes "
        "per app and mailbox): its runs wait until budget frees; logged once per deferral",
    ),
    EventSpec(
        "sync_internal_error",
        "error",
        ("mailbox", "tenant", "error"),
        "a bug met while syncing one mailbox (traceback attached); the run fails, others go on",
    ),
    EventSpec("local_writes_found", "debug", ("mailboxes",), "application writes: due now"),
    EventSpec(
        "demo_started", "info", ("dir", "mailboxes", "simulator"), "calsync demo is starting"
    ),
    EventSpec("demo_synced", "info", ("mailboxes", "seconds"), "demo: every mailbox synced"),
    EventSpec(
        "demo_edit", "info", ("side", "mailbox", "change", "expect"), "demo: an edit was made"
    ),
    EventSpec(
        "demo_edit_arrived",
        "info",
        ("direction", "mailbox", "seconds"),
        "demo: an edit reached the other side",
    ),
    EventSpec("demo_ready", "info", ("hint",), "demo: every edit arrived; try your own"),
    EventSpec("demo_step_timeout", "warning", ("step", "timeout_s"), "demo: a step took too long"),
    EventSpec("demo_step_failed", "error", ("error",), "demo: a step failed"),
    EventSpec("internal_error", "critical", ("error",), "a bug: calsync stops with exit 70"),
)

BY_NAME = {spec.name: spec for spec in CATALOGUE}
