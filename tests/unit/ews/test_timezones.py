from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calsync import timezones
from calsync.ews.series import occurrence_starts
from calsync.model import EventData


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Eastern Standard Time", "America/New_York"),
        ("India Standard Time", "Asia/Kolkata"),  # CLDR says Asia/Calcutta: the current name wins
        ("FLE Standard Time", "Europe/Kyiv"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
    ],
)
def test_windows_to_iana(windows: str, iana: str) -> None:
    assert timezones.windows_to_iana(windows) == iana


@pytest.mark.parametrize(
    ("iana", "windows"),
    [
        ("Europe/Berlin", "W. Europe Standard Time"),
        ("Europe/Zurich", "W. Europe Standard Time"),
        ("Asia/Calcutta", "India Standard Time"),
        ("Asia/Kolkata", "India Standard Time"),
        ("US/Eastern", "Eastern Standard Time"),
        ("Etc/UTC", "UTC"),
        ("UTC", "UTC"),
        ("Australia/Lord_Howe", "Lord Howe Standard Time"),
    ],
)
def test_iana_to_windows(iana: str, windows: str) -> None:
    assert timezones.iana_to_windows(iana) == windows


def test_every_windows_zone_round_trips() -> None:
    for windows, iana in timezones.WINDOWS_TO_IANA.items():
        assert timezones.iana_to_windows(iana) == windows


def test_iana_ids_exchange_sends_instead_of_windows_ids_pass() -> None:
    assert timezones.windows_to_iana("Europe/Copenhagen") == "Europe/Copenhagen"


def test_unknown_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown Windows"):
        timezones.windows_to_iana("Mars Standard Time")
    with pytest.raises(ValueError, match="unknown IANA"):
        timezones.iana_to_windows("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="unknown IANA"):
        timezones.iana_to_windows("localtime")


def test_fallback_by_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(timezones.IANA_TO_WINDOWS, "Europe/Vienna")
    timezones._by_offsets.cache_clear()
    windows = timezones.iana_to_windows("Europe/Vienna")
    # some zone with Vienna's offsets (CET/CEST): Central Europe, W. Europe, Romance …
    assert windows.endswith("Europe Standard Time") or windows == "Romance Standard Time"
    canonical = timezones.windows_to_iana(windows)
    assert timezones._signature(canonical) == timezones._signature("Europe/Vienna")


def test_same_zone() -> None:
    assert timezones.same_zone("Europe/Kyiv", "Europe/Kiev")
    assert not timezones.same_zone("Europe/Berlin", "Europe/London")


def test_occurrences_keep_local_time_across_dst() -> None:
    series = EventData(
        subject="x",
        start=datetime(2027, 3, 22, 8, 0, tzinfo=UTC),  # Monday 09:00 in Berlin (CET)
        end=datetime(2027, 3, 22, 9, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3",
    )
    starts = occurrence_starts(series, datetime(2028, 1, 1, tzinfo=UTC))
    assert starts == [
        datetime(2027, 3, 22, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 29, 7, 0, tzinfo=UTC),  # CEST: still 09:00 local
        datetime(2027, 4, 5, 7, 0, tzinfo=UTC),
    ]
