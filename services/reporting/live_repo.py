"""reporting's live rows (migration 010): one per ticket, written by the live consumers
(live_events.py) and read by the LiveReportsService (live_api.py). Rows and figures are
returned as frozen dataclasses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .live_model import ACTIVE, Load, TicketChange


def _ids(values: Sequence[str] | None) -> list[uuid.UUID] | None:
    return None if values is None else [uuid.UUID(v) for v in values]


@dataclass(frozen=True, slots=True)
class InboxFigures:
    inbox_id: str
    waiting: int
    oldest_waiting_since: datetime | None
    near_breach: int
    breached: int


class LiveRepo:
    # -- writing (in the consumer's transaction) ---------------------------------------

    async def apply_ticket(self, conn: asyncpg.Connection, tenant: str, c: TicketChange) -> None:
        await self.apply_tickets(conn, [(tenant, c)])

    async def apply_tickets(
        self, conn: asyncpg.Connection, changes: Sequence[tuple[str, TicketChange]]
    ) -> None:
        """Each (tenant, change) into its row, in order: its state when not older than the
        row's; the customer message or the answer it tells; then each ticket's wait
        recomputed once (answers only grow, so once at the end is the same as after each).
        One pipelined round of statements each (executemany)."""
        rows = [
            (
                uuid.UUID(tenant),
                uuid.UUID(c.ticket_id),
                uuid.UUID(c.inbox_id),
                c.status,
                uuid.UUID(c.assignee_id) if c.assignee_id else None,
                c.version,
                c.answered_at,
                c.sla_due_at,
            )
            for tenant, c in changes
        ]
        if not rows:
            return
        await conn.executemany(
            """
            INSERT INTO live_tickets (tenant_id, ticket_id, inbox_id, status, assignee_id,
                                      version, answered_at, ticket_sla_due_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET
              inbox_id = CASE WHEN live_tickets.version IS NULL
                              OR live_tickets.version <= EXCLUDED.version
                         THEN EXCLUDED.inbox_id ELSE live_tickets.inbox_id END,
              status = CASE WHEN live_tickets.version IS NULL
                            OR live_tickets.version <= EXCLUDED.version
                       THEN EXCLUDED.status ELSE live_tickets.status END,
              assignee_id = CASE WHEN live_tickets.version IS NULL
                                 OR live_tickets.version <= EXCLUDED.version
                            THEN EXCLUDED.assignee_id ELSE live_tickets.assignee_id END,
              ticket_sla_due_at = CASE WHEN live_tickets.version IS NULL
                                       OR live_tickets.version <= EXCLUDED.version
                                  THEN EXCLUDED.ticket_sla_due_at
                                  ELSE live_tickets.ticket_sla_due_at END,
              version = GREATEST(live_tickets.version, EXCLUDED.version),
              answered_at = GREATEST(live_tickets.answered_at, EXCLUDED.answered_at)
            """,
            rows,
        )
        messages = [
            (r[0], r[1], c.customer_message[1], c.customer_message[0])
            for r, (_, c) in zip(rows, changes, strict=True)
            if c.customer_message is not None
        ]
        if messages:
            await conn.executemany(
                "INSERT INTO live_customer_messages (tenant_id, ticket_id, at, message_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                messages,
            )
        await self._rewait(conn, list(dict.fromkeys((r[0], r[1]) for r in rows)))

    async def _rewait(
        self, conn: asyncpg.Connection, tickets: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> None:
        """Messages answered are dropped; the wait starts at the oldest one left."""
        await conn.executemany(
            """
            DELETE FROM live_customer_messages m USING live_tickets r
            WHERE m.tenant_id = $1 AND m.ticket_id = $2
              AND r.tenant_id = $1 AND r.ticket_id = $2 AND m.at <= r.answered_at
            """,
            tickets,
        )
        await conn.executemany(
            """
            UPDATE live_tickets SET waiting_since = (
              SELECT min(at) FROM live_customer_messages WHERE tenant_id = $1 AND ticket_id = $2)
            WHERE tenant_id = $1 AND ticket_id = $2
            """,
            tickets,
        )

    async def apply_sla(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        ticket_id: str,
        state: str,
        due_at: datetime | None,
        version: datetime,
    ) -> None:
        """routing's sla.changed, unless the row holds a newer one."""
        await conn.execute(
            """
            INSERT INTO live_tickets (tenant_id, ticket_id, sla_state, sla_due_at, sla_version)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET
              sla_state = EXCLUDED.sla_state, sla_due_at = EXCLUDED.sla_due_at,
              sla_version = EXCLUDED.sla_version
            WHERE live_tickets.sla_version IS NULL
               OR live_tickets.sla_version <= EXCLUDED.sla_version
            """,
            uuid.UUID(tenant),
            uuid.UUID(ticket_id),
            state,
            due_at,
            version,
        )

    async def apply_warning(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        ticket_id: str,
        due_at: datetime,
        version: datetime,
    ) -> None:
        """routing's sla.warning: the clock due at `due_at` is near its breach."""
        await conn.execute(
            """
            INSERT INTO live_tickets (tenant_id, ticket_id, warned_due_at, warned_version)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET
              warned_due_at = EXCLUDED.warned_due_at, warned_version = EXCLUDED.warned_version
            WHERE live_tickets.warned_version IS NULL
               OR live_tickets.warned_version <= EXCLUDED.warned_version
            """,
            uuid.UUID(tenant),
            uuid.UUID(ticket_id),
            due_at,
            version,
        )

    # -- reading -------------------------------------------------------------------------

    async def queue(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant: str,
        inboxes: Sequence[str] | None,
        now: datetime,
    ) -> list[InboxFigures]:
        """Per inbox with an open or pending ticket: waiting, the oldest wait, near an SLA
        breach, breached. `inboxes` None: every inbox."""
        rows = await conn.fetch(
            """
            SELECT inbox_id,
              count(*) FILTER (WHERE status = 'open' AND waiting_since IS NOT NULL) AS waiting,
              min(waiting_since) FILTER (WHERE status = 'open') AS oldest,
              count(*) FILTER (WHERE due_at <= $3) AS breached,
              count(*) FILTER (WHERE due_at > $3 AND warned_due_at = due_at) AS near
            FROM live_tickets
            WHERE tenant_id = $1 AND status = ANY($4::text[]) AND inbox_id IS NOT NULL
              AND ($2::uuid[] IS NULL OR inbox_id = ANY($2::uuid[]))
            GROUP BY inbox_id
            """,
            uuid.UUID(tenant),
            _ids(inboxes),
            now,
            list(ACTIVE),
        )
        return [
            InboxFigures(str(r["inbox_id"]), r["waiting"], r["oldest"], r["near"], r["breached"])
            for r in rows
        ]

    async def waits(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant: str,
        inboxes: Sequence[str] | None,
        now: datetime,
    ) -> dict[str, list[tuple[int, int]]]:
        """Per inbox: (whole minutes waited, how many open tickets waited that long)."""
        rows = await conn.fetch(
            """
            SELECT inbox_id, floor(extract(epoch FROM ($3 - waiting_since)) / 60)::int AS m,
                   count(*) AS n
            FROM live_tickets
            WHERE tenant_id = $1 AND status = 'open' AND waiting_since IS NOT NULL
              AND inbox_id IS NOT NULL AND ($2::uuid[] IS NULL OR inbox_id = ANY($2::uuid[]))
            GROUP BY 1, 2
            """,
            uuid.UUID(tenant),
            _ids(inboxes),
            now,
        )
        out: dict[str, list[tuple[int, int]]] = {}
        for r in rows:
            out.setdefault(str(r["inbox_id"]), []).append((max(0, r["m"]), r["n"]))
        return out

    async def loads(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant: str, inboxes: Sequence[str] | None
    ) -> list[Load]:
        """Open and pending tickets per inbox and assignee ("" unassigned)."""
        rows = await conn.fetch(
            """
            SELECT inbox_id, assignee_id,
                   count(*) FILTER (WHERE status = 'open') AS open,
                   count(*) FILTER (WHERE status = 'pending') AS pending
            FROM live_tickets
            WHERE tenant_id = $1 AND status = ANY($3::text[]) AND inbox_id IS NOT NULL
              AND ($2::uuid[] IS NULL OR inbox_id = ANY($2::uuid[]))
            GROUP BY 1, 2
            """,
            uuid.UUID(tenant),
            _ids(inboxes),
            list(ACTIVE),
        )
        return [
            Load(
                str(r["inbox_id"]),
                str(r["assignee_id"]) if r["assignee_id"] else "",
                r["open"],
                r["pending"],
            )
            for r in rows
        ]
