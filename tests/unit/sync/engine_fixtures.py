"""A world for engine tests: MemoryExchange + MemoryStore on one ticking clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sync_builders import ADDRESS, NOW

from calsync.memory_exchange import MemoryExchange
from calsync.model import ConflictPolicy, Direction, EventData, Mailbox, SyncReport
from calsync.store.memory import MemoryStore
from calsync.sync.engine import run_sync
from calsync.sync.rules import pushable


@dataclass
class TickClock:
    """Every reading is one second later: orders writes for ``newest-wins``."""

    current: datetime = NOW

    def now(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


@dataclass
class World:
    direction: Direction = Direction.TWO_WAY
    conflict: ConflictPolicy = ConflictPolicy.EXCHANGE_WINS
    page_size: int = 512
    clock: TickClock = field(default_factory=TickClock)

    def __post_init__(self) -> None:
        self.mailbox = Mailbox(ADDRESS, "contoso", self.direction, self.conflict)
        self.exchange = MemoryExchange(page_size=self.page_size, clock=self.clock.now)
        self.store = MemoryStore(clock=self.clock)

    def sync(self, **kwargs: object) -> SyncReport:
        return run_sync(self.mailbox, self.exchange, self.store, clock=self.clock, **kwargs)  # type: ignore[arg-type]

    def exchange_contents(self) -> list[EventData]:
        return sorted((pushable(i.data) for i in self.exchange.items(ADDRESS).values()), key=repr)

    def local_rows(self) -> dict[str, EventData]:
        ids = [
            cid
            for cid in self.store._state.rows
            if self.store._state.rows[cid]["series_id"] is None
        ]
        return {cid: e.data for cid, e in self.store.get_events(ADDRESS, ids).items()}

    def local_contents(self) -> list[EventData]:
        return sorted((pushable(d) for d in self.local_rows().values()), key=repr)
