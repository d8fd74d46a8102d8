"""The simulator's state: directory, mailboxes, faults, stats, Entra ID and the notification hub."""

from __future__ import annotations

import functools
import random
import uuid
from dataclasses import dataclass

from calsync.sim.directory import Directory, make_tenant
from calsync.sim.entra import Entra
from calsync.sim.faults import Faults
from calsync.sim.generate import generate_mailbox
from calsync.sim.mailstore import Mailbox
from calsync.sim.stats import Stats
from calsync.sim.streaming import Hub


@dataclass(frozen=True)
class SimOptions:
    mailboxes: int = 3
    events_per_mailbox: int = 20
    seed: int = 1
    tenants: int = 1
    token_lifetime: int = 3600
    onprem: bool = False
    max_subscriptions_per_connection: int = 200
    heartbeat_s: float = 30.0
    minute_s: float = (
        60.0  # the length of an EWS "minute" (ConnectionTimeout, expiry); tests shorten it
    )


class SimCore:
    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.token_lifetime = options.token_lifetime
        self.max_subscriptions_per_connection = options.max_subscriptions_per_connection
        self.heartbeat_s = options.heartbeat_s
        self.minute_s = options.minute_s
        self.base_url = ""
        rng = random.Random(options.seed)
        tenants = [
            make_tenant(
                i,
                options.mailboxes,
                uuid.UUID(int=rng.getrandbits(128), version=4),
                onprem=options.onprem,
            )
            for i in range(options.tenants)
        ]
        self.directory = Directory(tenants)
        self.mailboxes: dict[str, Mailbox] = {}
        for tenant in tenants:
            for address in tenant.mailboxes:
                number = address.split("@")[0].removeprefix("user")
                fill = functools.partial(
                    generate_mailbox,
                    count=options.events_per_mailbox,
                    seed=options.seed,
                    domain=tenant.domain,
                )
                mbx = Mailbox(
                    address,
                    tenant.name,
                    f"User {number} ({tenant.name})",
                    filler=(fill, options.events_per_mailbox),
                )
                self.mailboxes[address.lower()] = mbx
        self.faults = Faults()
        self.stats = Stats()
        self.entra = Entra(self)
        self.hub = Hub(self)

    def mailbox(self, address: str) -> Mailbox | None:
        return self.mailboxes.get(address.lower())
