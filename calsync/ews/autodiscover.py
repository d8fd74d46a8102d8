"""Find a mailbox's EWS URL: Autodiscover v2 (JSON) first, exchangelib's SOAP Autodiscover second.

``GET {host}/autodiscover/autodiscover.json/v1.0/{address}?Protocol=EWS`` answers
``{"Protocol": "EWS", "Url": "https://…/EWS/Exchange.asmx"}`` without authentication. The caller
caches the result (in the store); Exchange Online always answers its fixed endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import structlog

from calsync.errors import CalsyncError, TransientError
from calsync.ews.transport import PinnedSession

log = structlog.get_logger("calsync.ews")

DEFAULT_HOST = "https://outlook.office365.com"


def autodiscover_v2(
    address: str,
    host: str = DEFAULT_HOST,
    *,
    ca_file: str | None = None,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> str | None:
    """The EWS URL from the JSON endpoint, or None when it has no answer for ``address``."""
    http = session or PinnedSession(ca_file, timeout)
    url = f"{host.rstrip('/')}/autodiscover/autodiscover.json/v1.0/{quote(address)}"
    try:
        response = http.get(url, params={"Protocol": "EWS"}, allow_redirects=True)
    except requests.RequestException as exc:
        raise TransientError(
            f"{address}: autodiscover at {host} unreachable ({type(exc).__name__})",
            error_code="autodiscover_unreachable",
        ) from None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    found = body.get("Url") if isinstance(body, dict) else None
    if not isinstance(found, str) or urlsplit(found).scheme != "https":
        return None
    return found


def _soap_autodiscover(address: str, credentials: Any) -> str | None:
    from exchangelib.autodiscover import Autodiscovery

    _, protocol = Autodiscovery(email=address, credentials=credentials).discover()
    endpoint = protocol.service_endpoint
    return endpoint if isinstance(endpoint, str) else None


def discover_ews_url(
    address: str,
    host: str = DEFAULT_HOST,
    *,
    ca_file: str | None = None,
    credentials: Any = None,
    session: requests.Session | None = None,
    fallback: Callable[[str, Any], str | None] | None = _soap_autodiscover,
) -> str:
    """The EWS URL for ``address``: v2 JSON, then (if given) exchangelib's SOAP Autodiscover."""
    found = autodiscover_v2(address, host, ca_file=ca_file, session=session)
    if found:
        log.info("autodiscover_found", mailbox=address, ews_url=found, method="json_v2")
        return found
    if fallback is not None:
        try:
            found = fallback(address, credentials)
        except Exception as exc:  # exchangelib raises many kinds; all mean "not found here"
            log.warning("autodiscover_failed", mailbox=address, error=type(exc).__name__)
            found = None
        if found:
            log.info("autodiscover_found", mailbox=address, ews_url=found, method="soap")
            return found
    raise CalsyncError(
        f"{address}: autodiscover found no EWS URL",
        error_code="autodiscover_failed",
        hint="set ews_url for this tenant in the configuration",
    )
