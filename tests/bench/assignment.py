"""Assignment figures (issue 18, RTE-2; in `make bench`, or alone with
`python -m tests.bench.assignment`): 1,000 waiting tickets given to 200 present operators
of capacity 5 by least loaded. Target: all assigned in ≤ 1 s, none over capacity.

The tickets arrive by SMTP while the inbox's strategy is manual (so they wait); the 200
operators, made through the API, come online; then the strategy is set to least loaded
and the clock runs from that request to the moment tickets' database holds the 1,000th
assignment (and to routing's load counters holding them all: its pass commits after
tickets' answers). Printed as JSON with the operators over capacity (must be 0), from
tickets' own rows.

Baseline, in the same run: the least work the same outcome needs — the plan made in
process (`assignment.plan` over the same 1,000 tickets and 200 operators) plus one bare
UPDATE of 1,000 rows in one transaction on the same PostgreSQL; `ratio_to_baseline` is
the measured time over it.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import asyncpg

from services.devstack.stack import Stack
from services.routing import assignment as a
from services.runtime.db import with_database
from tests.helpers import Tenant, api_call, create_tenant, login, make_mail

TICKETS = 1000
OPERATORS = 200
CAPACITY = 5
TARGET_S = 1.0
AT_ONCE = 4  # setup calls at once (password hashing is slow on a busy machine)


async def _call(stack: Stack, token: str, method: str, path: str, body: Any = None) -> Any:
    """The call's JSON answer; a 503 (a service too busy to answer in time) is tried again."""
    for _ in range(5):
        code, answer = await api_call(stack, token, method, path, body)
        if code != 503:
            assert code in (200, 201), (path, answer)
            return answer
        await asyncio.sleep(1)
    raise AssertionError(f"{path}: still 503")


async def _operator(stack: Stack, tenant: Tenant, admin: str, i: int) -> tuple[str, str]:
    who = f"bench-{i:03d}-{uuid.uuid4().hex[:6]}@ops.example"
    made = await _call(
        stack,
        admin,
        "POST",
        "/api/v1/operators",
        {
            "login": who,
            "display_name": f"Operator {i:03d}",
            "inbox_ids": [tenant.inbox_id],
            "temporary_password": "temporary-password-1",
        },
    )
    token = await login(stack, who, "temporary-password-1")
    await _call(
        stack,
        token,
        "POST",
        "/api/v1/me/password",
        {"current_password": "temporary-password-1", "new_password": "bench-password-42"},
    )
    op_id = made["operator"]["id"]
    await _call(stack, admin, "PUT", f"/api/v1/operators/{op_id}/routing", {"capacity": CAPACITY})
    return op_id, await login(stack, who, "bench-password-42")


async def _gathered(calls: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def baseline(stack: Stack) -> dict[str, float]:
    """The plan in process and one bare UPDATE of as many rows, in seconds."""
    now = datetime.now(UTC)
    inbox = str(uuid.uuid4())
    waiting = [
        a.Waiting(str(uuid.uuid4()), inbox, "mail", now - timedelta(seconds=i))
        for i in range(TICKETS)
    ]
    ops = [
        a.OperatorState(str(uuid.uuid4()), a.Presence.ONLINE, frozenset({inbox}), CAPACITY)
        for _ in range(OPERATORS)
    ]
    policies = {inbox: a.InboxPolicy(inbox, a.Strategy.LEAST_LOADED)}
    started = time.perf_counter()
    plan = a.plan(waiting, ops, policies, {}, now)
    planned = time.perf_counter() - started
    assert len(plan.assignments) == TICKETS
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        await conn.execute("CREATE TEMP TABLE bench_rows (id uuid PRIMARY KEY, who uuid)")
        ids = [uuid.UUID(x.ticket_id) for x in plan.assignments]
        await conn.execute("INSERT INTO bench_rows (id) SELECT unnest($1::uuid[])", ids)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                "UPDATE bench_rows b SET who = v.who FROM unnest($1::uuid[], $2::uuid[])"
                " AS v(id, who) WHERE b.id = v.id",
                ids,
                [uuid.UUID(x.operator_id) for x in plan.assignments],
            )
        updated = time.perf_counter() - started
    finally:
        await conn.close()
    return {"plan_s": round(planned, 4), "update_s": round(updated, 4)}


async def run(stack: Stack) -> dict[str, Any]:
    tenant = await create_tenant(stack)
    admin = await login(stack, tenant.login, tenant.password)
    print("operators…", file=sys.stderr)
    ops = await _gathered([_operator(stack, tenant, admin, i) for i in range(OPERATORS)])
    print("mails…", file=sys.stderr)
    tag = f"bench-assign-{uuid.uuid4().hex[:6]}"

    async def mails(start: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port) as smtp:
            for i in range(start, TICKETS, 8):
                msg = make_mail(f"{tag} {i:04d}", to=tenant.address)
                await smtp.send_message(msg, recipients=[tenant.address])

    await asyncio.gather(*(mails(k) for k in range(8)))
    tickets_db = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    routing_db = await asyncpg.connect(with_database(stack.database_url, "sb_routing"))
    tenant_id = uuid.UUID(tenant.tenant_id)
    try:
        filed = 0
        while filed < TICKETS:  # routing knows every ticket (it waits: strategy manual)
            await asyncio.sleep(0.2)
            filed = await routing_db.fetchval(
                "SELECT count(*) FROM assign_tickets WHERE tenant_id = $1 AND status = 'open'",
                tenant_id,
            )
        print("online…", file=sys.stderr)
        await _gathered(
            [
                _call(stack, token, "PUT", "/api/v1/me/presence", {"status": "online"})
                for _, token in ops
            ]
        )
        print("assigning…", file=sys.stderr)
        started = time.perf_counter()
        await _call(
            stack,
            admin,
            "PUT",
            f"/api/v1/inboxes/{tenant.inbox_id}/assignment",
            {"strategy": "least_loaded"},
        )
        assigned = 0
        while assigned < TICKETS and time.perf_counter() - started < 120:
            assigned = await tickets_db.fetchval(
                "SELECT count(*) FROM tickets WHERE tenant_id = $1 AND assignee_id IS NOT NULL",
                tenant_id,
            )
            await asyncio.sleep(0.005)
        took = time.perf_counter() - started
        loads = 0  # routing's counters move when its pass commits, after tickets' answers
        while loads < assigned and time.perf_counter() - started < 120:
            loads = await routing_db.fetchval(
                "SELECT coalesce(sum(tickets), 0) FROM assign_loads WHERE tenant_id = $1",
                tenant_id,
            )
            await asyncio.sleep(0.005)
        committed = time.perf_counter() - started
        per_operator = await tickets_db.fetch(
            "SELECT assignee_id, count(*) AS n FROM tickets WHERE tenant_id = $1"
            " AND assignee_id IS NOT NULL GROUP BY assignee_id",
            tenant_id,
        )
    finally:
        await tickets_db.close()
        await routing_db.close()
    base = await baseline(stack)
    floor = base["plan_s"] + base["update_s"]
    over = sum(1 for r in per_operator if r["n"] > CAPACITY)
    return {
        "what": f"{TICKETS} waiting tickets to {OPERATORS} present operators (capacity"
        f" {CAPACITY}) by least loaded: strategy set → all assigned in tickets' database",
        "tickets": TICKETS,
        "operators": OPERATORS,
        "capacity": CAPACITY,
        "assigned": assigned,
        "seconds_to_all_assigned": round(took, 3),
        "seconds_to_routing_counters": round(committed, 3),
        "operators_over_capacity": over,
        "routing_load_counters_total": loads,
        "target_s": TARGET_S,
        "met": assigned == TICKETS and took <= TARGET_S and over == 0,
        "baseline": {
            "what": "assignment.plan in process + one bare UPDATE of as many rows",
            **base,
        },
        "ratio_to_baseline": round(took / floor, 2) if floor else None,
    }


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("assignment", run))
