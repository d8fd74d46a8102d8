"""Ready alert queries for deploy/MONITORING.md, one per alert and log stack.

They are data, not prose, so that ``deploy.gen_monitoring`` can check every event name and field
a query uses against the catalogue in ``calsync/log_events.py`` before it writes the guide: a
renamed event or field breaks the generator (and its test), not an operator's alert.

Assumptions the guide states once: journald unit ``calsync.service``; Loki streams labelled
``{unit="calsync.service"}`` (promtail/alloy journal scrape; for Docker use your container
label), each line the JSON object; Elasticsearch documents with the JSON decoded under
``calsync.`` (``event`` would clash with ECS's ``event`` object).
"""

from __future__ import annotations

from dataclasses import dataclass

# journalctl: one JSON log line per journal entry, in MESSAGE
J = "journalctl -u calsync.service -o json --output-fields=MESSAGE"
JQ_LINES = ".MESSAGE | strings | fromjson?"
L = '{unit="calsync.service"} | json'


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    why: str
    events: tuple[str, ...]
    fields: tuple[str, ...]
    journald: str
    loki: str
    elastic: str


ALERTS: tuple[Alert, ...] = (
    Alert(
        key="mailbox-failing",
        title="A mailbox has been failing for more than an hour",
        why=(
            "Every failed run logs `sync_failed` (with `error_code` and `hint`) and is retried "
            "after `retry_in_s` (at most `[daemon] max_backoff`, 1 h by default), so a mailbox "
            "that keeps failing logs it at least hourly. A quiet, healthy mailbox may go hours "
            "without `sync_finished` when its streaming subscription reports no change, so "
            "alert on failures without a success since, not on missing successes alone."
        ),
        events=("sync_failed", "sync_finished"),
        fields=("mailbox", "timestamp", "error_code", "hint"),
        journald=(
            f"{J} --since=-24h \\\n"
            f"  | jq -rs '[.[] | {JQ_LINES}\n"
            '        | select(.event == "sync_failed" or .event == "sync_finished")]\n'
            "    | group_by(.mailbox)[]\n"
            '    | (map(select(.event == "sync_finished")) | last | .timestamp // "") as $ok\n'
            '    | map(select(.event == "sync_failed" and .timestamp > $ok))\n'
            "    | select(length > 0)\n"
            '    | select((.[0].timestamp[:19] + "Z" | fromdateiso8601) < now - 3600)\n'
            '    | "\\(.[0].mailbox) failing since \\(.[0].timestamp): '
            "\\(last.error_code) \\(last.hint)\"'"
        ),
        loki=(
            f'sum by (mailbox) (count_over_time({L} | event="sync_failed" [2h]))\n'
            f'unless\nsum by (mailbox) (count_over_time({L} | event="sync_finished" [1h]))'
        ),
        elastic=(
            "FROM logs-calsync-*\n"
            "| WHERE @timestamp >= NOW() - 2 hours\n"
            '    AND calsync.event IN ("sync_failed", "sync_finished")\n'
            '| EVAL failed = CASE(calsync.event == "sync_failed", 1, 0),\n'
            '       ok = CASE(calsync.event == "sync_finished" AND @timestamp >= NOW() - 1 hour,'
            " 1, 0)\n"
            "| STATS failures = SUM(failed), successes = SUM(ok) BY calsync.mailbox\n"
            "| WHERE failures > 0 AND successes == 0"
        ),
    ),
    Alert(
        key="auth-failed",
        title="Entra ID refused a tenant's credentials",
        why=(
            "`auth_failed` carries the AADSTS code (`AADSTS7000222`: the client secret expired, "
            "`AADSTS7000215`: wrong secret, `AADSTS700016`: unknown app) and a `hint`; the "
            "tenant's mailboxes pause (`tenant_paused`) until a probe or a SIGHUP with new "
            "credentials succeeds (`tenant_resumed`). Page someone: nothing syncs for that tenant."
        ),
        events=("auth_failed", "tenant_paused"),
        fields=("tenant", "error_code", "hint"),
        journald=(
            f"{J} --since=-15min \\\n"
            f"  | jq -r '{JQ_LINES}\n"
            '    | select(.event == "auth_failed" or .event == "tenant_paused")\n'
            '    | "\\(.timestamp) \\(.tenant) \\(.error_code): \\(.hint)"\''
        ),
        loki=(
            "sum by (tenant, error_code) (count_over_time("
            f'{L} | event=~"auth_failed|tenant_paused" [15m])) > 0'
        ),
        elastic='calsync.event : ("auth_failed" or "tenant_paused")',
    ),
    Alert(
        key="secret-expiring",
        title="A client secret or certificate expires soon (or has expired)",
        why=(
            "From 30 days before a tenant's `secret_expires` (or the certificate's end date) "
            "calsync logs `secret_expiring` once a day with `days_left`, and `secret_expired` "
            "after it. Rotate before it stops: add a new secret in Entra ID, put it where the "
            "config reads it, send SIGHUP."
        ),
        events=("secret_expiring", "secret_expired"),
        fields=("tenant", "credential", "days_left", "expires"),
        journald=(
            f"{J} --since=-25h \\\n"
            f"  | jq -r '{JQ_LINES}\n"
            '    | select(.event == "secret_expired"\n'
            '             or (.event == "secret_expiring" and .days_left < 14))\n'
            '    | "\\(.tenant) \\(.credential) \\(.event) \\(.days_left // "") '
            '\\(.expires // "")"\''
        ),
        loki=(
            "min by (tenant, credential) (min_over_time("
            f'{L} | event="secret_expiring" | unwrap days_left [25h])) < 14\n'
            "or\n"
            "sum by (tenant, credential) (count_over_time("
            f'{L} | event="secret_expired" [25h])) > 0'
        ),
        elastic=(
            'calsync.event : "secret_expired" or '
            '(calsync.event : "secret_expiring" and calsync.days_left < 14)'
        ),
    ),
    Alert(
        key="throttling",
        title="Exchange throttles calsync",
        why=(
            "`ews_throttled` (one mailbox) and `tenant_throttled` (the whole tenant waits) carry "
            "`back_off_s`. A few are normal after a restart or a mass change; a steady stream "
            "means too many concurrent syncs for the tenant's EWS budget: lower "
            "`[daemon] max_concurrent_syncs` or raise `poll_interval`."
        ),
        events=("ews_throttled", "tenant_throttled"),
        fields=("tenant", "mailbox", "back_off_s", "error_code"),
        journald=(
            f"{J} --since=-15min \\\n"
            f"  | jq -rs '[.[] | {JQ_LINES}\n"
            '        | select(.event == "ews_throttled" or .event == "tenant_throttled")]\n'
            "    | group_by(.tenant)[] | select(length > 10)\n"
            '    | "\\(.[0].tenant): \\(length) throttling answers in 15 min, '
            "last back-off \\(last.back_off_s) s\"'"
        ),
        loki=(
            "sum by (tenant) (count_over_time("
            f'{L} | event=~"ews_throttled|tenant_throttled" [15m])) > 10'
        ),
        elastic='calsync.event : ("ews_throttled" or "tenant_throttled")',
    ),
    Alert(
        key="no-sync",
        title="No sync_finished for N minutes",
        why=(
            "Nothing synced at all for N minutes: the daemon is down, stuck, or every mailbox "
            'fails. Pick N above your quietest period: with `[subscriptions] mode = "off"` '
            "every mailbox syncs every `poll_interval` (5 min), so N = 15 is safe; with "
            "streaming, idle mailboxes sync only on changes and the daily safety-net poll. "
            "`daemon_heartbeat` (every minute) is the pure liveness signal: alert on its "
            "absence for 5 minutes as well."
        ),
        events=("sync_finished", "daemon_heartbeat"),
        fields=("timestamp",),
        journald=(
            "N=30\n"
            f"{J} --since=-${{N}}min \\\n"
            f"  | jq -s '[.[] | {JQ_LINES} | select(.event == \"sync_finished\")] | length' \\\n"
            '  | grep -qx 0 && echo "no sync_finished for ${N} minutes"'
        ),
        loki=(
            f'absent_over_time({L} | event="sync_finished" [30m])\n'
            "or\n"
            f'absent_over_time({L} | event="daemon_heartbeat" [5m])'
        ),
        elastic='calsync.event : "sync_finished"',
    ),
)

# How the Elasticsearch query of each alert is used in Kibana (rule type and parameters).
ELASTIC_RULES = {
    "mailbox-failing": "ES|QL rule (Elasticsearch 8.14+), every 10 min: alert on any row.",
    "auth-failed": "Elasticsearch query rule (KQL), every 5 min: count > 0 over 15 min, "
    "grouped by `calsync.tenant`.",
    "secret-expiring": "Elasticsearch query rule (KQL), daily: count > 0 over 25 h, "
    "grouped by `calsync.tenant`.",
    "throttling": "Elasticsearch query rule (KQL), every 5 min: count > 10 over 15 min, "
    "grouped by `calsync.tenant`.",
    "no-sync": "Elasticsearch query rule (KQL), every 5 min: count < 1 over N minutes "
    "(the rule fires when the query matches nothing).",
}
