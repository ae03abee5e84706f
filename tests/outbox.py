"""Mails written straight into outbound's outbox table by outbound's own repository code
(what SubmitDraft and the automatic replies write), for the tests and the benchmark that
need a thousand items due in the same second — something no test can do through the API.
Their inbox does not exist, so the steps after sending (the copy in a ticket) are refused
at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from services.outbound.repo import NewSend, OutboundRepo


async def write_due(
    pool: asyncpg.Pool,
    tenant_id: str,
    count: int,
    at: datetime,
    *,
    sender: str,
    recipient_domain: str,
    raw: Callable[[int, str], bytes],
) -> list[str]:
    """`count` items due at `at`, in one transaction; returns their Message-IDs.
    `raw(n, message_id)` builds the n-th message."""
    repo = OutboundRepo(pool)
    inbox = uuid.uuid4()
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for n in range(count):
            send_id = uuid.uuid4()
            mid = f"{send_id.hex}@{sender.rpartition('@')[2]}"
            await repo.insert_send(
                conn,
                NewSend(
                    id=send_id,
                    tenant_id=uuid.UUID(tenant_id),
                    kind="auto_reply",
                    draft_id=None,
                    draft_revision=0,
                    ticket_id=None,
                    inbox_id=inbox,
                    operator_id=None,
                    operator_name="",
                    operator_md=(),
                    fence=0,
                    lock_held=False,
                    status_after=0,
                    message_id=mid,
                    subject=f"Your order {n}",
                    envelope_from=sender,
                    recipients=[f"customer{n}@{recipient_domain}"],
                    raw=raw(n, mid),
                    dkim_signed=False,
                    send_at=at,
                    max_attempts=5,
                    route_name="",
                ),
                datetime.now(UTC),
                None,
            )
            ids.append(mid)
    return ids
