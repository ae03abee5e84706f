"""The tab counts kept by tickets' trigger and compactor (services/tickets/counts.py,
migration 017) on a real PostgreSQL: after any mix of new tickets, status changes,
transfers, reply locks, drafts, approvals, merges and deletions — compacted or not, by two
compactors at once — they equal the tickets counted one by one, per inbox, for every
caller's set of inboxes."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from services.tickets import counts
from tests.conftest import Infra

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
STATUSES = ("open", "pending", "resolved", "no_action", "trash")


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_counts_{uuid.uuid4().hex[:8]}"))
    await d.open(runtime_migrations() + load_migrations("tickets", "services.tickets.migrations"))
    yield d
    await d.close()


async def counted_one_by_one(
    db: Database, tenant: uuid.UUID, visible: list[str] | None
) -> list[tuple[object, ...]]:
    """What GET /api/v1/ticket-counts answered before the counters: every ticket read."""
    rows = await db.pool.fetch(
        "SELECT inbox_id, "
        "count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'pending'), "
        "count(*) FILTER (WHERE status = 'resolved'), "
        "count(*) FILTER (WHERE status = 'no_action'), count(*) FILTER (WHERE status = 'trash'), "
        "count(*) FILTER (WHERE status <> 'trash' AND (lock_fence IS NOT NULL "
        "OR draft_count > 0)), count(*) FILTER (WHERE status <> 'trash' AND awaiting_approval) "
        "FROM tickets WHERE tenant_id = $1 AND merged_into IS NULL "
        "AND ($2::uuid[] IS NULL OR inbox_id = ANY($2::uuid[])) GROUP BY 1 ORDER BY 1",
        tenant,
        None if visible is None else [uuid.UUID(i) for i in visible],
    )
    return [(str(r[0]), *r[1:]) for r in rows]


async def kept(
    db: Database, tenant: uuid.UUID, visible: list[str] | None
) -> list[tuple[object, ...]]:
    return [
        (c.inbox_id, *(getattr(c, k) for k in counts.COLUMNS))
        for c in await counts.read(db.pool, str(tenant), visible)
    ]


async def new_ticket(
    db: Database, tenant: uuid.UUID, inbox: uuid.UUID, n: int, status: str
) -> uuid.UUID:
    tid = uuid.uuid4()
    await db.pool.execute(
        "INSERT INTO tickets (id, tenant_id, subject, status, inbox_id, inbox_name, number,"
        " received_at, created_at, updated_at, waiting_since)"
        " VALUES ($1, $2, 's', $3, $4, 'i', $5, $6, $6, $6, $6)",
        tid, tenant, status, inbox, n, AT,
    )  # fmt: skip
    return tid


async def test_counts_follow_every_change_compacted_or_not(db: Database) -> None:
    rnd = random.Random(17)
    tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    inboxes = [uuid.uuid4() for _ in range(4)]
    tickets: list[uuid.UUID] = []
    await new_ticket(db, other_tenant, inboxes[0], 1, "open")  # never in this tenant's counts
    changes: list[tuple[str, object]] = [
        ("UPDATE tickets SET status = $2 WHERE id = $1", lambda: rnd.choice(STATUSES)),
        ("UPDATE tickets SET inbox_id = $2 WHERE id = $1", lambda: rnd.choice(inboxes)),
        ("UPDATE tickets SET lock_fence = $2 WHERE id = $1", lambda: rnd.randint(1, 10**6)),
        ("UPDATE tickets SET lock_fence = NULL WHERE id = $1", None),
        ("UPDATE tickets SET draft_count = $2 WHERE id = $1", lambda: rnd.randint(0, 2)),
        ("UPDATE tickets SET awaiting_approval = NOT awaiting_approval WHERE id = $1", None),
        ("UPDATE tickets SET merged_into = $2 WHERE id = $1", lambda: rnd.choice(tickets)),
        ("UPDATE tickets SET merged_into = NULL WHERE id = $1", None),
        ("UPDATE tickets SET subject = 'moves no count' WHERE id = $1", None),
    ]
    for step in range(600):
        if not tickets or rnd.random() < 0.25:
            tickets.append(
                await new_ticket(db, tenant, rnd.choice(inboxes), step + 2, rnd.choice(STATUSES))
            )
        elif rnd.random() < 0.03:
            gone = rnd.choice(tickets)
            tickets.remove(gone)
            await db.pool.execute(
                "UPDATE tickets SET merged_into = NULL WHERE merged_into = $1", gone
            )
            await db.pool.execute("DELETE FROM tickets WHERE id = $1", gone)
        else:
            sql, value = rnd.choice(changes)
            args = () if value is None else (value(),)  # type: ignore[operator]
            await db.pool.execute(sql, rnd.choice(tickets), *args)
        if step % 7 == 0:
            await counts.compact(db.pool)
        if step % 25 == 0 or step == 599:
            visible = [str(i) for i in rnd.sample(inboxes, 2)]
            assert await kept(db, tenant, None) == await counted_one_by_one(db, tenant, None)
            assert await kept(db, tenant, visible) == await counted_one_by_one(db, tenant, visible)
    await counts.compact(db.pool)
    rows = await db.pool.fetchval(
        "SELECT count(*) FROM ticket_count_deltas WHERE tenant_id = $1", tenant
    )
    assert rows <= len(inboxes)  # one row an inbox after a compaction
    assert await kept(db, tenant, None) == await counted_one_by_one(db, tenant, None)


async def test_an_inbox_emptied_drops_out_and_two_compactors_agree(db: Database) -> None:
    tenant = uuid.uuid4()
    stays, emptied = uuid.uuid4(), uuid.uuid4()
    moving = [await new_ticket(db, tenant, emptied, n, "open") for n in range(1, 4)]
    for n in range(4, 40):
        await new_ticket(db, tenant, stays, n, "pending")
    assert [c.inbox_id for c in await counts.read(db.pool, str(tenant), None)] == sorted(
        [str(stays), str(emptied)]
    )
    await db.pool.execute("UPDATE tickets SET inbox_id = $1 WHERE id = ANY($2)", stays, moving)
    await asyncio.gather(*(counts.compact(db.pool) for _ in range(4)))
    found = await counts.read(db.pool, str(tenant), None)
    assert [(c.inbox_id, c.open, c.pending) for c in found] == [(str(stays), 3, 36)]
    assert await kept(db, tenant, None) == await counted_one_by_one(db, tenant, None)
