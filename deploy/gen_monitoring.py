"""Generate the event catalogue and the alert queries in deploy/MONITORING.md.

    python -m deploy.gen_monitoring          # rewrite the generated parts of the guide
    python -m deploy.gen_monitoring --check  # exit 1 when the guide is out of date (CI)

The catalogue comes from ``calsync.log_events.CATALOGUE`` and the queries from
``deploy.alerts.ALERTS``; both are checked against each other first (every event and field an
alert uses must exist), so the guide cannot drift from the code. Only the text between the
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers is replaced; the prose
around them is edited by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from calsync.log_events import BY_NAME, CATALOGUE
from deploy.alerts import ALERTS, ELASTIC_RULES, Alert

GUIDE = Path(__file__).resolve().parent / "MONITORING.md"
# fields every line has, or may have, besides an event's own
COMMON_FIELDS = ("event", "level", "timestamp", "logger", "mailbox", "tenant")
_MARKER = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(.*?)(<!-- /generated:(?P=name) -->)", re.S
)
# event == "x", event="x", event=~"x|y", event : ("x" or "y"), event IN ("x", "y")
_EVENT_TEST = re.compile(r'event\s*(?:==|=~|=|:|IN)\s*\(?((?:"[a-z_|]+"(?:\s*(?:or|,)\s*)?)+)')


class DriftError(Exception):
    """An alert refers to an event or field the catalogue does not have."""


def check_alerts(alerts: tuple[Alert, ...] = ALERTS) -> None:
    problems: list[str] = []
    for alert in alerts:
        known = set(COMMON_FIELDS)
        for name in alert.events:
            spec = BY_NAME.get(name)
            if spec is None:
                problems.append(f"{alert.key}: unknown event {name!r}")
                continue
            known.update(spec.fields)
        problems += [
            f"{alert.key}: field {field!r} is not logged by {', '.join(alert.events)}"
            for field in alert.fields
            if field not in known
        ]
        for stack, query in (("journald", alert.journald), ("loki", alert.loki),
                             ("elastic", alert.elastic)):  # fmt: skip
            used = _quoted_event_names(query)
            if not used & set(alert.events):
                problems.append(f"{alert.key}: the {stack} query uses none of its events")
            problems += [
                f"{alert.key}: the {stack} query uses the undeclared event {name!r}"
                for name in sorted(used - set(alert.events))
            ]
        if alert.key not in ELASTIC_RULES:
            problems.append(f"{alert.key}: no Elasticsearch rule description")
    if problems:
        raise DriftError("\n".join(problems))


def _quoted_event_names(query: str) -> set[str]:
    """The event names a query compares the ``event`` field with."""
    names: set[str] = set()
    for match in _EVENT_TEST.finditer(query):
        for quoted in re.findall(r'"([a-z_|]+)"', match[1]):
            names.update(quoted.split("|"))
    return names


def render_catalogue() -> str:
    lines = [
        f"{len(CATALOGUE)} events. Every line also has `event`, `level`, `timestamp` (ISO 8601 "
        "UTC) and `logger`; `mailbox` and `tenant` where they apply.",
        "",
        "| event | level | fields | meaning |",
        "|---|---|---|---|",
    ]
    for spec in sorted(CATALOGUE, key=lambda s: s.name):
        fields = ", ".join(f"`{f}`" for f in spec.fields) or "-"
        lines.append(f"| `{spec.name}` | {spec.level} | {fields} | {spec.meaning} |")
    return "\n".join(lines) + "\n"


def render_alerts() -> str:
    out: list[str] = []
    for alert in ALERTS:
        events = ", ".join(f"`{name}`" for name in alert.events)
        out += [
            f"### {alert.title}",
            "",
            f"Events: {events}. {alert.why}",
            "",
            "journald (`journalctl -o json` + `jq`; prints one line per problem):",
            "",
            "```sh",
            alert.journald,
            "```",
            "",
            "Loki (LogQL alerting rule expression):",
            "",
            "```logql",
            alert.loki,
            "```",
            "",
            f"Elasticsearch / Kibana: {ELASTIC_RULES[alert.key]}",
            "",
            "```" + ("esql" if alert.elastic.startswith("FROM") else "kql"),
            alert.elastic,
            "```",
            "",
        ]
    return "\n".join(out)


SECTIONS = {"catalogue": render_catalogue, "alerts": render_alerts}


def regenerate(text: str) -> str:
    check_alerts()
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in SECTIONS:
            raise DriftError(f"unknown generated section {name!r}")
        seen.add(name)
        return match[1] + SECTIONS[name]() + match[4]

    result = _MARKER.sub(replace, text)
    missing = set(SECTIONS) - seen
    if missing:
        raise DriftError(f"markers missing for: {', '.join(sorted(missing))}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.gen_monitoring", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the guide is out of date")
    parser.add_argument("--path", type=Path, default=GUIDE)
    args = parser.parse_args(argv)
    current = args.path.read_text(encoding="utf-8")
    try:
        wanted = regenerate(current)
    except DriftError as exc:
        sys.stderr.write(f"gen_monitoring: {exc}\n")
        return 1
    if current == wanted:
        return 0
    if args.check:
        sys.stderr.write(
            f"gen_monitoring: {args.path} is out of date: run python -m deploy.gen_monitoring\n"
        )
        return 1
    args.path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
