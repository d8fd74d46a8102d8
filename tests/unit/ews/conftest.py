from __future__ import annotations

import re
from typing import Any

import pytest
from exchangelib import IMPERSONATION, Account, CalendarItem, Configuration, EWSTimeZone
from exchangelib.transport import NOAUTH
from exchangelib.util import to_xml, xml_to_str
from exchangelib.version import EXCHANGE_O365, Version

from calsync.ews.mapping import event_fields
from calsync.model import EventData

VERSION = Version(build=EXCHANGE_O365)
_BOOL = re.compile(r"<(t:(?:IsAllDayEvent|ReminderIsSet|IsCancelled))>([01])</\1>")


@pytest.fixture(scope="session")
def account() -> Account:
    config = Configuration(
        service_endpoint="https://127.0.0.1:9/EWS/Exchange.asmx", auth_type=NOAUTH, version=VERSION
    )
    return Account(
        "alice@contoso.example",
        config=config,
        access_type=IMPERSONATION,
        default_timezone=EWSTimeZone("UTC"),
    )


def wire(account: Account, data: EventData) -> Any:
    """``data`` as CreateItem would send it, parsed back as GetItem would return it."""
    item = CalendarItem(account=account, **event_fields(data))
    item.clean(version=VERSION)
    text = xml_to_str(item.to_xml(version=VERSION))
    text = _BOOL.sub(lambda m: f"<{m[1]}>{'true' if m[2] == '1' else 'false'}</{m[1]}>", text)
    return CalendarItem.from_xml(to_xml(text.encode()).getroot(), account=account)


def parse_item(account: Account, inner: str) -> Any:
    """A ``t:CalendarItem`` from a GetItem response fragment."""
    text = (
        '<t:CalendarItem xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        f"{inner}</t:CalendarItem>"
    )
    return CalendarItem.from_xml(to_xml(text.encode()).getroot(), account=account)
