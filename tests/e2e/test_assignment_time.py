"""Assignment over time (issue 18, RTE-2) through the real processes: tiers widen after
their timeout, a ticket nobody answered within N minutes goes to someone else, and
tickets routing never saw are read from tickets when a strategy is set.

"Wait N minutes" is done by back-dating routing's own stored times (a ticket's
waiting_since, its assigned_at) in routing's database, as if the minutes had passed;
the services run on their real clocks. "Routing never saw them" is done by deleting
routing's rows of the tickets (as if routing had begun keeping rows after these tickets
last changed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.e2e.test_assignment import (
    Team,
    _capacity,
    _mail,
    _one,
    _presence,
    _strategy,
    _team,
)
from tests.helpers import api_call, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def routing_db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_routing"))
    yield conn
    await conn.close()


async def _known(db: asyncpg.Connection, team: Team, ticket_ids: list[str]) -> bool | None:
    """Whether routing keeps a row of each of these tickets."""
    n = await db.fetchval(
        "SELECT count(*) FROM assign_tickets WHERE tenant_id = $1 AND ticket_id = ANY($2)",
        uuid.UUID(team.tenant.tenant_id),
        [uuid.UUID(t) for t in ticket_ids],
    )
    return True if n == len(ticket_ids) else None


async def _arrived(stack: Stack, team: Team, subject: str) -> dict[str, Any]:
    await asyncio.to_thread(_mail, stack, team, subject)
    return await eventually(lambda: _one(stack, team, subject), timeout=30, every=0.3)


async def _assignee(stack: Stack, team: Team, subject: str, operator: str) -> dict[str, Any]:
    async def given() -> dict[str, Any] | None:
        t = await _one(stack, team, subject)
        return t if t and t["assignee"] and t["assignee"]["id"] == operator else None

    return await eventually(given, timeout=30, every=0.3)


async def test_tiers_widen_after_their_timeout(
    stack: Stack, routing_db: asyncpg.Connection
) -> None:
    team = await _team(stack, ("ann", "bob"))
    (ann, _), (bob, _) = team.ops["ann"], team.ops["bob"]
    await _capacity(stack, team, "ann", 1)
    await _capacity(stack, team, "bob", 5)
    for name in ("ann", "bob"):
        await _presence(stack, team, name, "online")
    tag = f"tier{uuid.uuid4().hex[:8]}"
    first = await _arrived(stack, team, f"{tag} first")
    second = await _arrived(stack, team, f"{tag} second")
    assert await eventually(
        lambda: _known(routing_db, team, [first["id"], second["id"]]), timeout=30, every=0.2
    )
    # ann first; bob only once a ticket has waited 10 minutes
    await _strategy(
        stack,
        team,
        strategy="least_loaded",
        tiers=[
            {"operator_ids": [ann], "widen_after_minutes": 10},
            {"operator_ids": [bob], "widen_after_minutes": 0},
        ],
    )
    await _assignee(stack, team, f"{tag} first", ann)
    # the pass that gave ann the first ticket planned the second too: ann is full and
    # bob's tier is not open yet, so it waits
    waiting = await _one(stack, team, f"{tag} second")
    assert waiting is not None and waiting["assignee"] is None
    # ten minutes later (routing's stored waiting-since moved back by 11 minutes)
    await routing_db.execute(
        "UPDATE assign_tickets SET waiting_since = waiting_since - interval '11 minutes'"
        " WHERE tenant_id = $1 AND ticket_id = $2",
        uuid.UUID(team.tenant.tenant_id),
        uuid.UUID(second["id"]),
    )
    await _presence(stack, team, "bob", "online")  # a heartbeat: the assigner looks again
    await _assignee(stack, team, f"{tag} second", bob)


async def test_a_ticket_not_answered_in_time_goes_to_someone_else(
    stack: Stack, routing_db: asyncpg.Connection
) -> None:
    team = await _team(stack, ("ann", "bob"))
    (ann, _), (bob, _) = team.ops["ann"], team.ops["bob"]
    await _presence(stack, team, "ann", "online")
    await _presence(stack, team, "bob", "offline")
    await _strategy(stack, team, strategy="least_loaded", reassign_after_minutes=5)
    tag = f"noreply{uuid.uuid4().hex[:8]}"
    ticket = await _arrived(stack, team, f"{tag} one")
    await _assignee(stack, team, f"{tag} one", ann)
    await _presence(stack, team, "bob", "online")
    still = await _one(stack, team, f"{tag} one")
    assert still is not None and still["assignee"]["id"] == ann  # 5 minutes have not passed

    async def given_at() -> bool | None:
        at = await routing_db.fetchval(
            "SELECT assigned_at FROM assign_tickets WHERE tenant_id = $1 AND ticket_id = $2"
            " AND by_strategy",
            uuid.UUID(team.tenant.tenant_id),
            uuid.UUID(ticket["id"]),
        )
        return True if at is not None else None

    assert await eventually(given_at, timeout=30, every=0.2)
    # six minutes later, and ann has not replied (routing's stored assigned-at moved back)
    await routing_db.execute(
        "UPDATE assign_tickets SET assigned_at = assigned_at - interval '6 minutes'"
        " WHERE tenant_id = $1 AND ticket_id = $2",
        uuid.UUID(team.tenant.tenant_id),
        uuid.UUID(ticket["id"]),
    )
    await _presence(stack, team, "bob", "online")  # a heartbeat: the assigner looks again
    await _assignee(stack, team, f"{tag} one", bob)  # never back to ann
    code, audit = await api_call(stack, team.admin, "GET", f"/api/v1/tickets/{ticket['id']}/audit")
    assert code == 200, audit
    comments = [e["comment"] for e in audit["items"] if e["comment"]]
    assert "reassigned: no first reply within 5 minutes" in comments


async def test_tickets_routing_never_saw_are_read_when_a_strategy_is_set(
    stack: Stack, routing_db: asyncpg.Connection
) -> None:
    team = await _team(stack, ("ann", "bob"))
    (ann, _), (bob, _) = team.ops["ann"], team.ops["bob"]
    await _capacity(stack, team, "ann", 5)
    await _capacity(stack, team, "bob", 1)
    tag = f"unseen{uuid.uuid4().hex[:8]}"
    old = [await _arrived(stack, team, f"{tag} {i}") for i in range(3)]
    held = await _arrived(stack, team, f"{tag} held")
    code, body = await api_call(
        stack, team.admin, "PATCH", f"/api/v1/tickets/{held['id']}", {"assignee_id": bob}
    )
    assert code == 200, body
    ids = [t["id"] for t in (*old, held)]
    assert await eventually(lambda: _known(routing_db, team, ids), timeout=30, every=0.2)

    async def bob_holds() -> bool | None:
        n = await routing_db.fetchval(
            "SELECT count(*) FROM assign_tickets WHERE tenant_id = $1 AND assignee_id = $2",
            uuid.UUID(team.tenant.tenant_id),
            uuid.UUID(bob),
        )
        return True if n == 1 else None

    assert await eventually(bob_holds, timeout=30, every=0.2)
    tenant = uuid.UUID(team.tenant.tenant_id)
    async with routing_db.transaction():  # routing began keeping rows after these changed
        await routing_db.execute("DELETE FROM assign_tickets WHERE tenant_id = $1", tenant)
        await routing_db.execute("DELETE FROM assign_loads WHERE tenant_id = $1", tenant)
    for name in ("ann", "bob"):
        await _presence(stack, team, name, "online")
    await _strategy(stack, team, strategy="least_loaded")
    for i in range(3):  # read from tickets, then given: bob is full with the one he holds
        await _assignee(stack, team, f"{tag} {i}", ann)

    async def loads() -> dict[str, int] | None:
        code, body = await api_call(stack, team.admin, "GET", "/api/v1/presence")
        assert code == 200, body
        got = {p["operator_id"]: p["load"] for p in body["operators"]}
        return got if got.get(ann) == 3 else None

    assert (await eventually(loads, timeout=30, every=0.3)).get(bob) == 1
    done = await routing_db.fetchrow(
        "SELECT tickets FROM assign_backfills WHERE tenant_id = $1", tenant
    )
    assert done is not None and done["tickets"] == 4
