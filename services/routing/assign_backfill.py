"""Tickets routing never saw (issue 18, RTE-2). Routing keeps a row of each ticket from
tickets' events; a ticket last changed before routing began keeping rows is unknown to the
assigner (it neither waits nor weighs on a load) until its next event. The backfill reads
a tenant's open and pending tickets from tickets' ListTickets, a page at a time, into
routing's rows and load counters (`AssignRepo.apply_states`: each state versioned, so an
event newer than the page wins and the page changes nothing a newer event set), under the
tenant's assignment lock, then wakes the assigner.

Once per tenant (`assign_backfills`): for each tenant with an automatic strategy not yet
read — when routing starts, when a tenant sets an automatic strategy (`wake`), and every
`every_s` while one is left (tickets away: tried again later). A ticket read has no
channel in its summary: its row counts it as `mail` until an event says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import Unavailable
from services.runtime.periodic import PeriodicTask

from .assign_peers import Peers
from .assign_repo import AssignRepo
from .ticket_rows import uuid_of
from .ticket_state import Incoming, state_of


class Backfill(PeriodicTask):
    def __init__(
        self,
        db: Database,
        repo: AssignRepo,
        peers: Peers,
        clock: Clock,
        wake_assigner: Callable[[], None],
        every_s: float = 60.0,
    ) -> None:
        super().__init__("routing-backfill", every_s)
        self._db = db
        self._repo = repo
        self._peers = peers
        self._clock = clock
        self._wake_assigner = wake_assigner
        self._log = log.get("routing.backfill")

    async def step(self) -> bool:
        async with self._db.pool.acquire() as conn:
            due = await _tenants_due(conn)
        for tenant in due:
            with log.bound(tenant_id=tenant):
                try:
                    read = await self.run_tenant(tenant)
                except Unavailable as err:
                    self._log.warning("backfill deferred", reason=str(err))
                    continue
                self._log.info("tickets read from tickets", tickets=read)
            self._wake_assigner()
        return False

    async def run_tenant(self, tenant: str) -> int:
        """Read the tenant's open and pending tickets into routing's rows; how many."""
        cursor = ""
        read = 0
        while True:
            page = await self._peers.open_tickets(tenant, cursor)
            states = {t.id: Incoming(state_of(t)) for t in page.tickets}
            async with self._db.transaction() as conn:
                await self._repo.lock_tenant(conn, tenant)
                await self._repo.apply_states(conn, tenant, list(states.values()))
            read += len(states)
            cursor = page.next_cursor
            if not cursor:
                break
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO assign_backfills (tenant_id, done_at, tickets) VALUES ($1, $2, $3)"
                " ON CONFLICT (tenant_id) DO NOTHING",
                uuid_of(tenant),
                self._clock.now(),
                read,
            )
        return read


async def _tenants_due(conn: asyncpg.Connection) -> list[str]:
    """Tenants with an automatic strategy whose tickets routing has not read yet."""
    rows = await conn.fetch(
        "SELECT DISTINCT p.tenant_id FROM assign_policies p WHERE p.strategy <> 'manual'"
        " AND NOT EXISTS (SELECT 1 FROM assign_backfills b WHERE b.tenant_id = p.tenant_id)"
    )
    return [str(r["tenant_id"]) for r in rows]
