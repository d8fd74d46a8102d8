"""Short token lifetimes (renewal by msal) and the on-premises Basic-auth mode."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from exchangelib import BASIC, DELEGATE, IMPERSONATION, Account, Configuration, Credentials, Version
from exchangelib.errors import UnauthorizedError
from exchangelib.protocol import BaseProtocol
from exchangelib.version import EXCHANGE_O365
from simclients import OUTLOOK_SCOPE, account, make_adapter_cls, msal_app

from calsync.sim import start_in_thread


def test_short_lived_tokens_are_renewed_and_accepted(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, mailboxes=1, events_per_mailbox=3, token_lifetime=5) as sim:
        old = BaseProtocol.HTTP_ADAPTER_CLS
        BaseProtocol.HTTP_ADAPTER_CLS = make_adapter_cls(sim.ca_file)
        try:
            app = msal_app(sim)
            token = app.acquire_token_for_client(scopes=OUTLOOK_SCOPE)
            claims = jwt.decode(token["access_token"], options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == 5
            acc = account(sim, sim.tenant()["mailboxes"][0], app=app)
            assert len(list(acc.calendar.sync_items(only_fields=["id"]))) == 3
            issued = sim.admin.stats()["tokens_issued"]
            # msal treats a token with less than 5 minutes left as expired: a new one each time
            again = app.acquire_token_for_client(scopes=OUTLOOK_SCOPE)
            assert again["access_token"] != token["access_token"]
            assert sim.admin.stats()["tokens_issued"] == issued + 1
        finally:
            BaseProtocol.HTTP_ADAPTER_CLS = old


def test_onprem_tenant_accepts_basic_for_the_service_account(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, mailboxes=2, events_per_mailbox=2, onprem=True) as sim:
        old = BaseProtocol.HTTP_ADAPTER_CLS
        BaseProtocol.HTTP_ADAPTER_CLS = make_adapter_cls(sim.ca_file)
        try:
            tenant = sim.tenant()
            config = Configuration(
                service_endpoint=sim.info["ews_url"], auth_type=BASIC,
                credentials=Credentials(tenant["username"], tenant["password"]),
                version=Version(build=EXCHANGE_O365),
            )  # fmt: skip
            acc = Account(tenant["mailboxes"][1], config=config, autodiscover=False,
                          access_type=IMPERSONATION)  # fmt: skip
            assert len(list(acc.calendar.sync_items(only_fields=["id"]))) == 2
            wrong = Configuration(
                service_endpoint=sim.info["ews_url"], auth_type=BASIC,
                credentials=Credentials(tenant["username"], "wrong"),
                version=Version(build=EXCHANGE_O365),
            )  # fmt: skip
            bad = Account(tenant["mailboxes"][1], config=wrong, autodiscover=False,
                          access_type=DELEGATE)  # fmt: skip
            with pytest.raises(UnauthorizedError):
                list(bad.calendar.sync_items(only_fields=["id"]))
        finally:
            BaseProtocol.HTTP_ADAPTER_CLS = old
