"""Agentless notifications' rows (issue 20, OUT-6): one per (tenant, idempotency key),
inserted with `ON CONFLICT DO NOTHING` in the transaction that queues the mail — so of
concurrent requests under one key exactly one queues it — and read with the state of
their outbox item (queued while it is scheduled, sending, retrying or unknown; then
sent, failed — also cancelled — or bounced)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.runtime.errors import InvalidArgument

PAGE_MAX = 200
_SELECT = """
SELECT n.tenant_id, n.id, n.idempotency_key, n.fingerprint, n.inbox_id, n.to_address,
       n.to_name, n.template_id, n.subject, n.send_id, n.created_at,
       CASE WHEN s.id IS NULL THEN n.state
            WHEN s.state IN ('scheduled', 'sending', 'retrying', 'unknown') THEN 'queued'
            WHEN s.state = 'cancelled' THEN 'failed'
            ELSE s.state END AS state,
       CASE WHEN s.id IS NULL THEN n.error
            WHEN s.state = 'bounced' THEN s.bounce
            WHEN s.state IN ('failed', 'cancelled')
                 THEN coalesce(nullif(s.last_message, ''), s.state)
            WHEN s.state = 'unknown' THEN 'the delivery is unknown: an operator decides'
            ELSE '' END AS error,
       s.sent_at
FROM notifications n LEFT JOIN sends s ON s.id = n.send_id
"""


@dataclass(frozen=True, slots=True)
class NewNotification:
    tenant_id: uuid.UUID
    id: uuid.UUID
    idempotency_key: str
    fingerprint: str
    inbox_id: uuid.UUID
    to_address: str
    to_name: str
    template_id: str
    subject: str
    send_id: uuid.UUID | None
    state: str  # queued (with a send), failed (none queued)
    error: str
    created_by: uuid.UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    tenant_id: uuid.UUID
    id: uuid.UUID
    idempotency_key: str
    fingerprint: str
    inbox_id: uuid.UUID
    to_address: str
    to_name: str
    template_id: str
    subject: str
    send_id: uuid.UUID | None
    created_at: datetime
    state: str
    error: str
    sent_at: datetime | None


async def insert(conn: asyncpg.Connection, n: NewNotification) -> bool:
    """False when the tenant has this key already (nothing inserted: the caller queues
    nothing). Waits for a concurrent insert of the same key to commit or roll back."""
    status = await conn.execute(
        "INSERT INTO notifications (tenant_id, id, idempotency_key, fingerprint, inbox_id, "
        "to_address, to_name, template_id, subject, send_id, state, error, created_by, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
        n.tenant_id,
        n.id,
        n.idempotency_key,
        n.fingerprint,
        n.inbox_id,
        n.to_address,
        n.to_name,
        n.template_id,
        n.subject,
        n.send_id,
        n.state,
        n.error,
        n.created_by,
        n.created_at,
    )
    return bool(status == "INSERT 0 1")


async def by_key(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, key: str
) -> Notification | None:
    row = await conn.fetchrow(
        _SELECT + "WHERE n.tenant_id = $1 AND n.idempotency_key = $2", uuid.UUID(tenant_id), key
    )
    return Notification(**dict(row)) if row else None


async def by_id(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant_id: str,
    notification_id: uuid.UUID,
    inboxes: Sequence[str] | None,
) -> Notification | None:
    """The tenant's notification, if its inbox is among `inboxes` (None: any)."""
    row = await conn.fetchrow(
        _SELECT + "WHERE n.tenant_id = $1 AND n.id = $2 "
        "AND ($3::uuid[] IS NULL OR n.inbox_id = ANY($3::uuid[]))",
        uuid.UUID(tenant_id),
        notification_id,
        [uuid.UUID(i) for i in inboxes] if inboxes is not None else None,
    )
    return Notification(**dict(row)) if row else None


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant_id: str,
    *,
    inboxes: Sequence[str] | None,
    cursor: str,
    limit: int,
    state: str,
) -> tuple[list[Notification], str]:
    """Newest first; the cursor is the last id of the page (ids sort by time)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidArgument(f"limit must be between 1 and {PAGE_MAX}", field="limit")
    after: uuid.UUID | None = None
    if cursor:
        try:
            after = uuid.UUID(cursor)
        except ValueError:
            raise InvalidArgument("cursor is not one this list gave", field="cursor") from None
    rows = await conn.fetch(
        "SELECT * FROM (" + _SELECT + "WHERE n.tenant_id = $1 "
        "AND ($2::uuid[] IS NULL OR n.inbox_id = ANY($2::uuid[])) "
        "AND ($3::uuid IS NULL OR n.id < $3)) x WHERE ($4 = '' OR state = $4) "
        "ORDER BY id DESC LIMIT $5",
        uuid.UUID(tenant_id),
        [uuid.UUID(i) for i in inboxes] if inboxes is not None else None,
        after,
        state,
        limit + 1,
    )
    out = [Notification(**dict(r)) for r in rows[:limit]]
    return out, (str(out[-1].id) if len(rows) > limit and out else "")
