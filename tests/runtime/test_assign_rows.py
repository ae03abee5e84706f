"""Routing's rows of tickets and load counters on a real PostgreSQL
(services/routing/ticket_rows.py): a batch applied in a few statements gives the same rows
and counters as the same states applied one by one; an older state changes nothing; the
counters always equal the open + pending tickets the rows show per operator."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.routing.assign_repo import AssignRepo
from services.routing.ticket_state import Incoming, TicketState
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from tests.conftest import Infra

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
INBOX = str(uuid.uuid4())
OPS = [str(uuid.uuid4()) for _ in range(4)]


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_rows_{uuid.uuid4().hex[:8]}"))
    await d.open(runtime_migrations() + load_migrations("routing", "services.routing.migrations"))
    yield d
    await d.close()


def state(ticket: str, minute: int, assignee: str | None, status: str = "open") -> TicketState:
    return TicketState(ticket, INBOX, status, assignee, 2, AT + timedelta(minutes=minute))


async def loads(db: Database, tenant: str) -> Counter[str]:
    rows = await db.pool.fetch(
        "SELECT operator_id, tickets FROM assign_loads WHERE tenant_id = $1 AND tickets > 0",
        uuid.UUID(tenant),
    )
    return Counter({str(r["operator_id"]): r["tickets"] for r in rows})


async def counted(db: Database, tenant: str) -> Counter[str]:
    """The open + pending tickets per operator as the rows show them."""
    rows = await db.pool.fetch(
        "SELECT assignee_id, count(*) AS n FROM assign_tickets WHERE tenant_id = $1"
        " AND assignee_id IS NOT NULL AND status IN ('open', 'pending') GROUP BY assignee_id",
        uuid.UUID(tenant),
    )
    return Counter({str(r["assignee_id"]): r["n"] for r in rows})


async def snapshot(db: Database, tenant: str) -> list[tuple[object, ...]]:
    rows = await db.pool.fetch(
        "SELECT ticket_id, status, assignee_id, version, waiting_since, by_strategy,"
        " assigned_at, replied, excluded FROM assign_tickets WHERE tenant_id = $1"
        " ORDER BY ticket_id",
        uuid.UUID(tenant),
    )
    return [tuple(r.values())[1:] for r in rows]


async def test_batch_inserts_updates_and_moves_loads(db: Database) -> None:
    repo = AssignRepo()
    tenant = str(uuid.uuid4())
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    async with db.transaction() as conn:
        applied = await repo.apply_states(
            conn,
            tenant,
            [
                Incoming(state(a, 0, None), channel="mail"),
                Incoming(state(b, 0, OPS[0])),
                Incoming(state(c, 0, OPS[0], "pending")),
            ],
        )
    assert [x.waiting for x in applied] == [True, False, False]
    assert await loads(db, tenant) == Counter({OPS[0]: 2})
    async with db.transaction() as conn:
        applied = await repo.apply_states(
            conn,
            tenant,
            [
                Incoming(state(a, 1, OPS[1]), by_strategy=True),
                Incoming(state(b, 1, None), exclude=OPS[0]),  # taken back
                Incoming(state(c, -5, None)),  # older than the row: ignored
            ],
        )
    assert [(x.changed, x.waiting, x.freed) for x in applied] == [
        (True, False, False),
        (True, True, True),
        (False, False, False),
    ]
    assert await loads(db, tenant) == Counter({OPS[0]: 1, OPS[1]: 1})
    rows = {
        str(r["ticket_id"]): r
        for r in await db.pool.fetch(
            "SELECT * FROM assign_tickets WHERE tenant_id = $1", uuid.UUID(tenant)
        )
    }
    assert rows[a]["by_strategy"] and rows[a]["assigned_at"] == AT + timedelta(minutes=1)
    assert rows[b]["excluded"] == [uuid.UUID(OPS[0])]
    assert rows[b]["waiting_since"] == AT + timedelta(minutes=1)
    assert rows[c]["status"] == "pending" and str(rows[c]["assignee_id"]) == OPS[0]


async def test_batches_equal_one_by_one_and_counters_equal_rows(db: Database) -> None:
    repo = AssignRepo()
    rng = random.Random(18)
    tickets = [str(uuid.uuid4()) for _ in range(40)]
    steps: list[list[Incoming]] = []
    for minute in range(12):
        chosen = rng.sample(tickets, 15)
        steps.append(
            [
                Incoming(
                    state(
                        t,
                        minute - rng.choice([0, 0, 0, 3]),  # some arrive late (older)
                        rng.choice([None, *OPS]),
                        rng.choice(["open", "open", "pending", "resolved"]),
                    ),
                    by_strategy=rng.random() < 0.5,
                    replied=rng.random() < 0.2,
                )
                for t in chosen
            ]
        )
    batched, single = str(uuid.uuid4()), str(uuid.uuid4())
    for step in steps:
        async with db.transaction() as conn:
            await repo.apply_states(conn, batched, step)
        for inc in step:
            async with db.transaction() as conn:
                await repo.apply_state(conn, single, inc)
    assert await snapshot(db, batched) == await snapshot(db, single)
    assert await loads(db, batched) == await loads(db, single)
    assert await loads(db, batched) == await counted(db, batched)
    assert sum((await counted(db, batched)).values()) > 0
