"""The deliveries of replies through channels (issue 21, migration 011
`channel_deliveries`): queries of ChannelRepo, kept here. Every query names the tenant, but
the deliverer's claim (due rows of every tenant)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from .channel_model import ConversationRow

_DLV = (
    "d.id, d.tenant_id, d.channel_id, c.name AS channel_name, c.kind, d.conversation_id, "
    "d.seq, d.send_id, d.ticket_id, d.state, d.attempts, d.next_attempt_at, d.last_error, "
    "d.created_at, d.delivered_at"
)


@dataclass(frozen=True)
class DeliveryRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    channel_id: uuid.UUID
    channel_name: str
    kind: str
    conversation_id: uuid.UUID
    seq: int
    send_id: str
    ticket_id: uuid.UUID | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


def _delivery(r: asyncpg.Record) -> DeliveryRow:
    return DeliveryRow(**{k: r[k] for k in DeliveryRow.__dataclass_fields__})


class DeliveryQueries:
    pool: asyncpg.Pool

    async def add_delivery(
        self,
        conn: asyncpg.Connection,
        *,
        delivery_id: uuid.UUID,
        conv: ConversationRow,
        seq: int,
        send_id: str,
        ticket_id: uuid.UUID | None,
        state: str,
        now: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO channel_deliveries (id, tenant_id, channel_id, conversation_id, seq, "
            "send_id, ticket_id, state, next_attempt_at, created_at, delivered_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, "
            "CASE WHEN $8 = 'delivered' THEN $9::timestamptz END)",
            delivery_id,
            conv.tenant_id,
            conv.channel_id,
            conv.id,
            seq,
            send_id,
            ticket_id,
            state,
            now,
        )

    async def delivery_by_send(
        self, conn: asyncpg.Connection | None, tenant: uuid.UUID, send_id: str
    ) -> DeliveryRow | None:
        r = await (conn or self.pool).fetchrow(
            f"SELECT {_DLV} FROM channel_deliveries d JOIN channels c ON c.id = d.channel_id "
            "WHERE d.tenant_id = $1 AND d.send_id = $2",
            tenant,
            send_id,
        )
        return None if r is None else _delivery(r)

    async def delivery(
        self,
        tenant: uuid.UUID,
        delivery_id: uuid.UUID,
        conn: asyncpg.Connection | None = None,
    ) -> DeliveryRow | None:
        r = await (conn or self.pool).fetchrow(
            f"SELECT {_DLV} FROM channel_deliveries d JOIN channels c ON c.id = d.channel_id "
            "WHERE d.tenant_id = $1 AND d.id = $2",
            tenant,
            delivery_id,
        )
        return None if r is None else _delivery(r)

    async def deliveries(
        self, tenant: uuid.UUID, state: str, channel_id: uuid.UUID | None, limit: int
    ) -> list[DeliveryRow]:
        rows = await self.pool.fetch(
            f"SELECT {_DLV} FROM channel_deliveries d JOIN channels c ON c.id = d.channel_id "
            "WHERE d.tenant_id = $1 AND ($2 = '' OR d.state = $2) "
            "AND ($3::uuid IS NULL OR d.channel_id = $3) "
            "ORDER BY d.created_at DESC, d.id DESC LIMIT $4",
            tenant,
            state,
            channel_id,
            limit,
        )
        return [_delivery(r) for r in rows]

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[DeliveryRow]:
        """Due deliveries of any tenant, leased to this replica (SKIP LOCKED: two replicas
        never take the same one; a lease that ran out is taken again)."""
        rows = await self.pool.fetch(
            "WITH due AS (UPDATE channel_deliveries SET lease_until = $2 WHERE id IN ("
            " SELECT id FROM channel_deliveries WHERE state = 'pending'"
            " AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)"
            " ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *) "
            f"SELECT {_DLV} FROM due d JOIN channels c ON c.id = d.channel_id",
            now,
            now + lease,
            limit,
        )
        return [_delivery(r) for r in rows]

    async def settle(
        self,
        conn: asyncpg.Connection,
        d: DeliveryRow,
        *,
        state: str,
        error: str,
        next_attempt_at: datetime,
        now: datetime,
    ) -> DeliveryRow | None:
        """An attempt's outcome (attempts + 1); None if the row moved meanwhile."""
        r = await conn.fetchrow(
            "UPDATE channel_deliveries SET state = $3, attempts = attempts + 1, "
            "last_error = $4, next_attempt_at = $5, lease_until = NULL, "
            "delivered_at = CASE WHEN $3 = 'delivered' THEN $6::timestamptz END "
            "WHERE tenant_id = $1 AND id = $2 AND state = 'pending' RETURNING id",
            d.tenant_id,
            d.id,
            state,
            error[:1000],
            next_attempt_at,
            now,
        )
        if r is None:
            return None
        return await self.delivery(d.tenant_id, d.id, conn)

    async def retry(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, delivery_id: uuid.UUID, now: datetime
    ) -> bool:
        """A dead delivery pending again at once, its attempts counted from zero."""
        status = await conn.execute(
            "UPDATE channel_deliveries SET state = 'pending', attempts = 0, "
            "next_attempt_at = $3, lease_until = NULL WHERE tenant_id = $1 AND id = $2 "
            "AND state = 'dead'",
            tenant,
            delivery_id,
            now,
        )
        return bool(status == "UPDATE 1")
