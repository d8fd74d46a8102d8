"""Graph ids of the mailstore's items, $select/$expand/$filter parsing, date-time formats."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re

GRAPH_PREFIX = "AAkALg"
PROP_ID_RE = re.compile(r"^(\w+) \{([0-9a-fA-F-]{36})\} Name (.+)$")
_ANY_FILTER = re.compile(
    r"singleValueExtendedProperties/any\(\s*(\w+):\s*\1/id eq '([^']*)' and \1/value eq "
    r"'((?:[^']|'')*)'\s*\)",
    re.IGNORECASE,
)
_EXPAND_FILTER = re.compile(r"\(\$filter=\s*id eq '([^']*)'\s*\)", re.IGNORECASE)


def graph_id(ews_id: str) -> str:
    """The Graph (REST, immutable-looking) id of an EWS ItemId: URL-safe, never the same."""
    return GRAPH_PREFIX + base64.urlsafe_b64encode(ews_id.encode()).decode().rstrip("=")


def ews_id(value: str) -> str | None:
    if not value.startswith(GRAPH_PREFIX):
        return None
    raw = value[len(GRAPH_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, ValueError):
        return None


def prop_key(prop_id: str) -> tuple[str, str, str] | None:
    """(property set, name, type) of a Graph extended property id, as the mailstore keys it."""
    match = PROP_ID_RE.match(prop_id.strip())
    if match is None:
        return None
    ptype, guid, name = match.groups()
    return guid.lower(), name, ptype


def prop_id(key: tuple[str, str, str]) -> str | None:
    guid, name, ptype = key
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", guid):
        return None
    return f"{ptype} {{{guid}}} Name {name}"


def split_top(text: str) -> list[str]:
    """Split at commas outside parentheses ($select, $expand)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_expand(text: str) -> dict[str, str | None]:
    """{relationship: the id of its $filter (or None)}."""
    out: dict[str, str | None] = {}
    for part in split_top(text):
        name, _, rest = part.partition("(")
        match = _EXPAND_FILTER.search("(" + rest) if rest else None
        out[name.strip()] = match.group(1) if match else None
    return out


def parse_any_filter(text: str) -> tuple[str, str] | None:
    """(property id, value) of the one $filter form the simulator supports on /events."""
    match = _ANY_FILTER.search(text)
    if match is None:
        return None
    return match.group(2), match.group(3).replace("''", "'")


def graph_dt(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def wall(value: dt.datetime) -> str:
    """A wall time (no zone) in Graph's dateTimeTimeZone format."""
    return value.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def iso_z(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 query value (startDateTime); no offset means UTC."""
    parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "+"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
