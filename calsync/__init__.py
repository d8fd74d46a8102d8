"""calsync: keep Exchange mailbox calendars in sync with a local SQL store."""

__version__ = "0.1.0"
