"""EWS (Exchange Web Services) for calendars, SOAP 1.1 as Exchange Online answers it."""

from __future__ import annotations
