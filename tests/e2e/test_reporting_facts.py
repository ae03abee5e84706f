"""Reporting's facts and rollups through the real processes (issue 19 §1, §2): events
published to JetStream as their producers publish them — backdated by `occurred_at` to a
Monday in March 2026, so every period is hand-computed — reach reporting's consumers, make
facts, and the roller folds them into the rollups, read here from reporting's own tables.
The inbox's calendar (Tokyo, 09:00–17:00 on weekdays) is made through the API, as an
administrator would, and reporting asks routing for it."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import nats
import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.devstack.stack import Stack
from services.runtime import events
from services.runtime.db import with_database
from tests import reporting_events as ev
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import api_call, create_tenant, eventually, login

pytestmark = pytest.mark.e2e

MON_9 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 09:00 in Tokyo
WEEKDAYS_9_TO_17 = [
    {"weekday": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")
]
ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())


@dataclass
class World:
    stack: Stack
    tenant: str
    inbox: str
    db: asyncpg.Connection
    js: nats.js.JetStreamContext

    async def publish(self, env: events_pb2.EventEnvelope, msg_id: str = "") -> None:
        await self.js.publish(
            events.subject_of(env),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": msg_id or env.event_id},
        )

    async def settled(self) -> None:
        """Every reporting consumer has taken everything, and the roller folded it."""

        async def done() -> bool:
            for stream, durable in (
                (events.TICKETS.name, "reporting__tickets"),
                (events.APPROVAL.name, "reporting__approvals"),
                (events.OUTBOUND.name, "reporting__sends"),
            ):
                info = await self.js.consumer_info(stream, durable)
                if info.num_pending or info.num_ack_pending:
                    return False
            return not await self.db.fetchval("SELECT count(*) FROM facts_unrolled")

        await eventually(done, timeout=30)

    async def rollup(
        self, metric: str, bucket: datetime, dimension: str = "", value: str = ""
    ) -> tuple[int, float, float] | None:
        r = await self.db.fetchrow(
            """SELECT count, sum_wall, sum_business FROM rollups_hour WHERE tenant_id = $1
               AND metric = $2 AND bucket = $3 AND inbox_id = $4 AND dimension = $5
               AND value = $6""",
            uuid.UUID(self.tenant),
            metric,
            bucket,
            uuid.UUID(self.inbox),
            dimension,
            value,
        )
        return None if r is None else (r["count"], r["sum_wall"], r["sum_business"])

    async def command(self, module: str, *args: str) -> tuple[int, str]:
        env = {**os.environ, **self.stack.env_for("reporting")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    code, cal = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/calendars",
        {"name": "Tokyo office", "time_zone": "Asia/Tokyo", "slots": WEEKDAYS_9_TO_17},
    )
    assert code == 201, cal
    code, policy = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/sla-policies",
        {
            "name": "Office hours",
            "inbox_ids": [tenant.inbox_id],
            "calendar_id": cal["id"],
            "first_response_minutes": 60,
        },
    )
    assert code == 201, policy
    db = await asyncpg.connect(with_database(stack.database_url, "sb_reporting"))
    nc = await nats.connect(stack.nats_url)
    try:
        yield World(stack, tenant.tenant_id, tenant.inbox_id, db, nc.jetstream())
    finally:
        await nc.close()
        await db.close()


async def test_a_reopen_makes_a_second_resolution_episode(world: World) -> None:
    tid = str(uuid.uuid4())
    t = ev.ticket(tid, world.inbox)
    resolved = ev.ticket(tid, world.inbox, common_pb2.TICKET_STATUS_RESOLVED)
    for env in (
        ev.created(world.tenant, t, MON_9, str(uuid.uuid4())),
        # resolved by Alice after 1 h; the customer writes at 12:00 (reopened); Bob
        # resolves it again at 12:30 Tokyo
        ev.status_change(
            world.tenant, resolved, MON_9 + timedelta(hours=1), "open", "resolved", ALICE
        ),
        ev.message(world.tenant, t, MON_9 + timedelta(hours=3), str(uuid.uuid4()), reopened=True),
        ev.status_change(
            world.tenant, resolved, MON_9 + timedelta(hours=3, minutes=30), "open", "resolved", BOB
        ),
    ):
        await world.publish(env)
    await world.settled()
    assert await world.rollup("resolution", MON_9 + timedelta(hours=1)) == (1, 3600.0, 3600.0)
    assert await world.rollup("reopen", MON_9 + timedelta(hours=3)) == (1, 0.0, 0.0)
    assert await world.rollup("resolution", MON_9 + timedelta(hours=3), "operator", BOB) == (
        1,
        1800.0,
        1800.0,
    )
    episodes = await world.db.fetch(
        "SELECT key FROM facts WHERE tenant_id = $1 AND metric = 'resolution' "
        "AND ticket_id = $2 ORDER BY at",
        uuid.UUID(world.tenant),
        uuid.UUID(tid),
    )
    assert [r["key"] for r in episodes] == [f"{tid}:1", f"{tid}:2"]


async def test_a_reply_outside_business_hours_counts_zero_business_minutes(world: World) -> None:
    tid = str(uuid.uuid4())
    t = ev.ticket(tid, world.inbox)
    evening = MON_9 + timedelta(days=1, hours=9)  # Tuesday 18:00 Tokyo: closed
    await world.publish(ev.created(world.tenant, t, evening, str(uuid.uuid4())))
    await world.publish(
        ev.message(world.tenant, t, evening + timedelta(hours=2), str(uuid.uuid4()), "sent")
    )
    await world.settled()
    bucket = evening + timedelta(hours=2)
    assert await world.rollup("first_reply", bucket) == (1, 7200.0, 0.0)
    assert await world.rollup("reply", bucket) == (1, 7200.0, 0.0)


async def test_an_approval_round_trip_counts_for_the_right_operators(world: World) -> None:
    at = MON_9 + timedelta(days=2)
    request = str(uuid.uuid4())
    common = {"request_id": request, "inbox": world.inbox, "author": ALICE}
    await world.publish(ev.approval(events.APPROVAL_REQUESTED, world.tenant, at, **common))
    await world.publish(
        ev.approval(
            events.APPROVAL_SENT_BACK,
            world.tenant,
            at + timedelta(minutes=10),
            approver=BOB,
            requested_at=at,
            **common,
        )
    )
    await world.settled()
    assert await world.rollup("approval_request", at) == (1, 0.0, 0.0)
    assert await world.rollup("approval_request", at, "operator", ALICE) == (1, 0.0, 0.0)
    assert await world.rollup("send_back", at, "operator", ALICE) == (1, 600.0, 600.0)
    assert await world.rollup("send_back_given", at, "operator", BOB) == (1, 600.0, 600.0)
    assert await world.rollup("send_back", at, "operator", BOB) is None


async def test_a_redelivered_event_counts_once_and_a_late_one_lands_in_its_period(
    world: World,
) -> None:
    at = MON_9 + timedelta(days=3)
    t = ev.ticket(str(uuid.uuid4()), world.inbox)
    arrival = ev.created(world.tenant, t, at, str(uuid.uuid4()))
    await world.publish(arrival)
    await world.settled()
    assert await world.rollup("arrival", at) == (1, 0.0, 0.0)
    # the same envelope again under a new Nats-Msg-Id (past JetStream's duplicate check)
    await world.publish(arrival, msg_id=f"again-{uuid.uuid4()}")
    # a ticket that arrived a week earlier, its event only now
    week_before = at - timedelta(days=7)
    late = ev.created(world.tenant, ev.ticket(str(uuid.uuid4()), world.inbox), week_before, "x")
    await world.publish(late)
    await world.settled()
    assert await world.rollup("arrival", at) == (1, 0.0, 0.0)
    assert await world.rollup("arrival", week_before) == (1, 0.0, 0.0)


async def test_a_tickets_events_and_a_redelivery_published_together_count_once_each(
    world: World,
) -> None:
    """Published back to back, they reach reporting in one fetch, applied in one
    transaction: the redelivery (same event id) and the same arrival under another event
    id count once, and the resolution finds the arrival made just before it."""
    at = MON_9 + timedelta(days=4)
    tid = str(uuid.uuid4())
    t = ev.ticket(tid, world.inbox)
    resolved = ev.ticket(tid, world.inbox, common_pb2.TICKET_STATUS_RESOLVED)
    arrival = ev.created(world.tenant, t, at, str(uuid.uuid4()))
    again = events_pb2.EventEnvelope()
    again.CopyFrom(arrival)
    again.event_id = str(uuid.uuid4())
    await world.publish(arrival)
    await world.publish(arrival, msg_id=f"again-{uuid.uuid4()}")
    await world.publish(again)
    await world.publish(
        ev.status_change(world.tenant, resolved, at + timedelta(hours=2), "open", "resolved", BOB)
    )
    await world.settled()
    assert await world.rollup("arrival", at) == (1, 0.0, 0.0)
    assert await world.rollup("resolution", at + timedelta(hours=2), "operator", BOB) == (
        1,
        7200.0,
        7200.0,
    )


async def test_check_passes_on_consistent_rollups_and_fails_on_a_tampered_one(
    world: World,
) -> None:
    await world.settled()
    code, out = await world.command("services.reporting.check", "--tenant", world.tenant)
    assert code == 0, out
    assert "rows agree" in out
    # a rollup row tampered with (by hand, in reporting's own table)
    await world.db.execute(
        "UPDATE rollups_hour SET count = count + 1 WHERE tenant_id = $1 AND metric = 'reply'",
        uuid.UUID(world.tenant),
    )
    code, out = await world.command("services.reporting.check", "--tenant", world.tenant)
    assert code == 1, out
    assert "reply 2026-03-03T11:00:00+00:00" in out and "facts make count 1" in out
    # the rebuild repairs it from the facts
    code, out = await world.command("services.reporting.rebuild", "--tenant", world.tenant)
    assert code == 0, out
    code, out = await world.command("services.reporting.check", "--tenant", world.tenant)
    assert code == 0, out


async def test_a_lost_fact_is_made_again_by_replaying_the_streams(world: World) -> None:
    await world.settled()
    tenant = uuid.UUID(world.tenant)
    before = await world.db.fetch(
        "SELECT metric, key, at, wall_s, business_s FROM facts WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    # facts lost (deleted by hand from reporting's own table): the check sees the rollups
    # hold more than the facts make
    await world.db.execute(
        "DELETE FROM facts WHERE tenant_id = $1 AND metric IN ('reply', 'send_back')", tenant
    )
    code, out = await world.command("services.reporting.check", "--tenant", world.tenant)
    assert code == 1, out
    code, out = await world.command(
        "services.reporting.rebuild",
        "--tenant",
        world.tenant,
        "--replay-since",
        (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    )
    assert code == 0, out
    assert "replayed" in out and "reporting__tickets" in out
    after = await world.db.fetch(
        "SELECT metric, key, at, wall_s, business_s FROM facts WHERE tenant_id = $1", tenant
    )
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))
    code, out = await world.command("services.reporting.check", "--tenant", world.tenant)
    assert code == 0, out


async def test_a_mailed_ticket_its_reply_and_a_forward_count_for_the_agent(
    stack: Stack, world: World
) -> None:
    """The whole way: a mail by SMTP, an agent's reply and forward sent through the API —
    the reply's fact names the agent (the author of the send whose Message-ID the filed
    mail has), the forward is counted as one."""
    tenant, _admin, agent, _ = await desk(stack)
    _c, me, _ = await call(stack, "GET", "/api/v1/me", token=agent)
    agent_id = me["id"]
    ticket = await mail_ticket(stack, tenant, agent, f"Parcel {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")

    async def finished() -> bool:  # the reply lock released by the send's finisher: the
        # same agent asking again before that would be handed the lock about to be released
        _c, seen, _ = await call(stack, "GET", f"/api/v1/sends/{item['id']}", token=agent)
        return bool(seen["after_send"]["done"])

    await eventually(finished, timeout=20)

    fwd, fence = await reply_draft(
        stack, tenant, agent, ticket, to=["boss@partner.example"], body="FYI", kind="forward"
    )
    code, sent = await send_draft(stack, agent, fwd["id"], fence)
    assert code == 201, sent
    await settled(stack, agent, sent["id"], "sent")

    async def facts() -> dict[str, list[str | None]] | None:
        rows = await world.db.fetch(
            "SELECT metric, operator_id FROM facts WHERE tenant_id = $1 ORDER BY id",
            uuid.UUID(tenant.tenant_id),
        )
        got: dict[str, list[str | None]] = {}
        for r in rows:
            got.setdefault(r["metric"], []).append(
                str(r["operator_id"]) if r["operator_id"] else None
            )
        return got if "forward" in got and "reply" in got else None

    got = await eventually(facts, timeout=30)
    assert got["arrival"] == [None] and got["received"] == [None]
    assert got["first_reply"] == [agent_id] and got["reply"] == [agent_id]
    assert got["sent"] == [agent_id, agent_id] and got["forward"] == [agent_id]
