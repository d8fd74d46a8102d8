"""A compact Windows <-> IANA time-zone table (CLDR windowsZones, territory 001) for the zones
the simulator generates and accepts. The simulator keeps its own copy on purpose."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

WINDOWS_TO_IANA: dict[str, str] = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GTB Standard Time": "Europe/Bucharest",
    "FLE Standard Time": "Europe/Kiev",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Central Standard Time": "America/Chicago",
    "Eastern Standard Time": "America/New_York",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota",
}

# IANA ids that CLDR lists as aliases or as the non-golden zone of a Windows zone.
_EXTRA_IANA: dict[str, str] = {
    "Etc/UTC": "UTC",
    "Etc/GMT": "UTC",
    "Europe/Kyiv": "FLE Standard Time",
    "Europe/Helsinki": "FLE Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Zurich": "W. Europe Standard Time",
    "Europe/Vienna": "W. Europe Standard Time",
    "Europe/Rome": "W. Europe Standard Time",
    "Europe/Stockholm": "W. Europe Standard Time",
    "Europe/Madrid": "Romance Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/Prague": "Central Europe Standard Time",
    "Europe/Dublin": "GMT Standard Time",
    "Europe/Lisbon": "GMT Standard Time",
    "America/Toronto": "Eastern Standard Time",
    "Asia/Hong_Kong": "China Standard Time",
    "Australia/Melbourne": "AUS Eastern Standard Time",
}

IANA_TO_WINDOWS: dict[str, str] = {v: k for k, v in WINDOWS_TO_IANA.items()} | {
    k: v for k, v in _EXTRA_IANA.items() if v != "UTC"
}
IANA_TO_WINDOWS.update({"Etc/UTC": "UTC", "Etc/GMT": "UTC"})

DISPLAY_NAMES: dict[str, str] = {
    "UTC": "(UTC) Coordinated Universal Time",
    "GMT Standard Time": "(UTC+00:00) Dublin, Edinburgh, Lisbon, London",
    "W. Europe Standard Time": "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
    "Romance Standard Time": "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
    "Eastern Standard Time": "(UTC-05:00) Eastern Time (US & Canada)",
    "Pacific Standard Time": "(UTC-08:00) Pacific Time (US & Canada)",
    "Tokyo Standard Time": "(UTC+09:00) Osaka, Sapporo, Tokyo",
    "India Standard Time": "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi",
    "AUS Eastern Standard Time": "(UTC+10:00) Canberra, Melbourne, Sydney",
}


def is_known_windows(zone: str) -> bool:
    return zone in WINDOWS_TO_IANA


@lru_cache(maxsize=256)
def zoneinfo_for_windows(zone: str) -> ZoneInfo:
    """The IANA zone for a Windows zone id (UTC for an id the table does not know)."""
    return ZoneInfo(WINDOWS_TO_IANA.get(zone, "UTC"))


def iana_for_windows(zone: str) -> str:
    return WINDOWS_TO_IANA.get(zone, "UTC")


def windows_for_iana(zone: str) -> str | None:
    return IANA_TO_WINDOWS.get(zone)


def display_name(zone: str) -> str:
    return DISPLAY_NAMES.get(zone, zone)


def local(instant: dt.datetime, zone: str) -> dt.datetime:
    """An aware UTC instant as wall time in a Windows zone (aware)."""
    return instant.astimezone(zoneinfo_for_windows(zone))
