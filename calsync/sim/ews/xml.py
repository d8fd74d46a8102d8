"""SOAP envelopes, response messages and faults, built as strings (fast) with proper escaping."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from lxml import etree

NS_S = "http://schemas.xmlsoap.org/soap/envelope/"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"
T = "{" + NS_T + "}"
M = "{" + NS_M + "}"
S = "{" + NS_S + "}"

_HEADER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<s:Envelope xmlns:s="{NS_S}"><s:Header>'
    '<h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="8769" '
    'MinorBuildNumber="22" Version="V2018_01_08" '
    f'xmlns:h="{NS_T}" xmlns="{NS_T}" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></s:Header>'
    '<s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
)
_FOOTER = "</s:Body></s:Envelope>"


class EwsError(Exception):
    """An EWS error for one response message (or, with `fault`, the whole request)."""

    def __init__(
        self, code: str, text: str, *, fault: bool = False, back_off_ms: int | None = None
    ) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.fault = fault
        self.back_off_ms = back_off_ms


def elements(parent: etree._Element | None) -> list[etree._Element]:
    """The element children (no comments or processing instructions) of an optional node."""
    return [] if parent is None else list(parent.iterchildren("*"))


def esc(value: str) -> str:
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    return value


@lru_cache(maxsize=200_000)
def ews_dt(value: dt.datetime) -> str:
    """xs:dateTime in UTC with Z (cached: items render the same instants again and again)."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_dt(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def envelope(body: str) -> bytes:
    return (_HEADER + body + _FOOTER).encode()


def response(op: str, messages: list[str]) -> bytes:
    return envelope(
        f'<m:{op}Response xmlns:m="{NS_M}" xmlns:t="{NS_T}"><m:ResponseMessages>'
        + "".join(messages)
        + f"</m:ResponseMessages></m:{op}Response>"
    )


def ok(op: str, inner: str = "") -> str:
    return (
        f'<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        f"{inner}</m:{op}ResponseMessage>"
    )


def error(op: str, err: EwsError, inner: str = "") -> str:
    xml = ""
    if err.back_off_ms is not None:
        xml = (
            '<m:MessageXml><t:Value Name="BackOffMilliseconds">'
            f"{err.back_off_ms}</t:Value></m:MessageXml>"
        )
    return (
        f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{esc(err.text)}'
        f"</m:MessageText><m:ResponseCode>{err.code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{xml}{inner}</m:{op}ResponseMessage>"
    )


def fault(err: EwsError) -> bytes:
    """A SOAP fault as Exchange sends for request-level errors (HTTP 500)."""
    code = "a:" + err.code
    extra = ""
    if err.back_off_ms is not None:
        extra = (
            f'<t:MessageXml xmlns:t="{NS_T}"><t:Value Name="BackOffMilliseconds">'
            f"{err.back_off_ms}</t:Value></t:MessageXml>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{NS_S}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{NS_T}">{code}</faultcode>'
        f'<faultstring xml:lang="en-US">{esc(err.text)}</faultstring>'
        f'<detail><e:ResponseCode xmlns:e="{NS_E}">{err.code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{NS_E}">{esc(err.text)}</e:Message>{extra}</detail>'
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
