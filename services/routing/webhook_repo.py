"""routing's storage of the rule webhooks (issue 18): each tenant's signing secret and the
deliveries outbox (migration 005). Every query names the tenant, but the deliverer's
claim, which takes due rows of every tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.runtime.errors import FailedPrecondition, NotFound

STATES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Secret:
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class NewDelivery:
    id: uuid.UUID
    cause_event_id: str
    position: int
    rule_id: str
    rule_name: str
    url: str
    trigger: str
    ticket_id: str
    ticket_number: int
    body: str


@dataclass(frozen=True)
class Delivery:
    tenant_id: str
    id: str
    rule_id: str
    rule_name: str
    url: str
    trigger: str
    ticket_id: str
    ticket_number: int
    body: str
    state: str
    attempts: int
    last_error: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def _delivery(r: asyncpg.Record) -> Delivery:
    return Delivery(
        tenant_id=str(r["tenant_id"]),
        id=str(r["id"]),
        rule_id=str(r["rule_id"]),
        rule_name=r["rule_name"],
        url=r["url"],
        trigger=r["trigger"],
        ticket_id=str(r["ticket_id"]),
        ticket_number=r["ticket_number"],
        body=r["body"],
        state=r["state"],
        attempts=r["attempts"],
        last_error=r["last_error"],
        created_at=r["created_at"],
        next_attempt_at=r["next_attempt_at"],
        delivered_at=r["delivered_at"],
    )


class WebhookRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def secret(self, tenant: str) -> Secret | None:
        row = await self.pool.fetchrow(
            "SELECT secret, created_at FROM webhook_secrets WHERE tenant_id = $1",
            uuid.UUID(tenant),
        )
        return None if row is None else Secret(row["secret"], row["created_at"])

    async def put_secret(self, tenant: str, secret: str, now: datetime) -> Secret:
        await self.pool.execute(
            "INSERT INTO webhook_secrets (tenant_id, secret, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO UPDATE SET secret = $2, created_at = $3",
            uuid.UUID(tenant),
            secret,
            now,
        )
        return Secret(secret, now)

    async def first_secret(self, tenant: str, secret: str, now: datetime) -> Secret:
        """The tenant's secret, made now (from `secret`) if it has none yet."""
        await self.pool.execute(
            "INSERT INTO webhook_secrets (tenant_id, secret, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO NOTHING",
            uuid.UUID(tenant),
            secret,
            now,
        )
        found = await self.secret(tenant)
        assert found is not None
        return found

    async def add(
        self, conn: asyncpg.Connection, tenant: str, items: list[NewDelivery], now: datetime
    ) -> int:
        """Write the deliveries of one cause event; one already written is left (a
        redelivered event adds nothing). The number written."""
        added = 0
        for d in items:
            status = await conn.execute(
                "INSERT INTO webhook_deliveries (tenant_id, id, cause_event_id, position, "
                "rule_id, rule_name, url, trigger, ticket_id, ticket_number, body, state, "
                "next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                "$11, 'pending', $12, $12) ON CONFLICT (tenant_id, cause_event_id, position) "
                "DO NOTHING",
                uuid.UUID(tenant),
                d.id,
                uuid.UUID(d.cause_event_id),
                d.position,
                uuid.UUID(d.rule_id),
                d.rule_name,
                d.url,
                d.trigger,
                uuid.UUID(d.ticket_id),
                d.ticket_number,
                d.body,
                now,
            )
            added += status == "INSERT 0 1"
        return added

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Due deliveries of any tenant, leased to this replica (SKIP LOCKED: two replicas
        never take the same one; a lease that ran out is taken again)."""
        rows = await self.pool.fetch(
            "UPDATE webhook_deliveries SET leased_until = $2 WHERE id IN ("
            " SELECT id FROM webhook_deliveries WHERE state = 'pending'"
            " AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)"
            " ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
            now,
            now + lease,
            limit,
        )
        return [_delivery(r) for r in rows]

    async def delivered(self, d: Delivery, now: datetime) -> None:
        await self.pool.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, "
            "delivered_at = $3, next_attempt_at = NULL, leased_until = NULL, last_error = '' "
            "WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(d.tenant_id),
            uuid.UUID(d.id),
            now,
        )

    async def failed(self, d: Delivery, error: str, retry_at: datetime | None) -> None:
        """One more failed attempt: due again at `retry_at`, or dead (None)."""
        await self.pool.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3, "
            "state = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END, "
            "next_attempt_at = $4, leased_until = NULL WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(d.tenant_id),
            uuid.UUID(d.id),
            error[:500],
            retry_at,
        )

    async def list(self, tenant: str, state: str, limit: int) -> list[Delivery]:
        rows = await self.pool.fetch(
            "SELECT * FROM webhook_deliveries WHERE tenant_id = $1 AND state = $2 "
            "ORDER BY created_at DESC, id DESC LIMIT $3",
            uuid.UUID(tenant),
            state,
            limit,
        )
        return [_delivery(r) for r in rows]

    async def retry(self, tenant: str, delivery_id: uuid.UUID, now: datetime) -> Delivery:
        """A dead delivery due again at once, its attempts counted anew."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT state FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                uuid.UUID(tenant),
                delivery_id,
            )
            if row is None:
                raise NotFound("no such webhook delivery", field="id")
            if row["state"] != "dead":
                raise FailedPrecondition(f"the delivery is {row['state']}, not dead", field="state")
            found = await conn.fetchrow(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, "
                "next_attempt_at = $3, leased_until = NULL WHERE tenant_id = $1 AND id = $2 "
                "RETURNING *",
                uuid.UUID(tenant),
                delivery_id,
                now,
            )
        return _delivery(found)
