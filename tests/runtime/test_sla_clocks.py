"""routing's SLA clocks on real PostgreSQL, with an injected clock: tickets' events set
the ticket's timers, a reply or a pause takes them away, the due-time index fires a
warning and a breach once each at their time, and two replicas claiming the same due
timers at once fire each exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.routing.sla import Kind, Policy, Timer
from services.routing.sla_clocks import DueTimers, SlaClocks
from services.routing.sla_records import SlaTicket
from services.routing.sla_repo import SlaRepo
from services.runtime import events, registry
from services.runtime.bus import Bus, Delivery, default_streams
from services.runtime.clock import ManualClock
from services.runtime.db import Database, with_database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox
from services.runtime.service import service_migrations
from tests.conftest import Infra

T0 = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
NO_DELIVERY = cast(Delivery, None)  # the handlers do not look at it


@dataclass
class Parts:
    db: Database
    repo: SlaRepo
    clock: ManualClock
    clocks: SlaClocks
    timers: DueTimers
    outbox: Outbox
    ids: IdGenerator
    tenant: str


@pytest.fixture
async def p(infra: Infra) -> AsyncIterator[Parts]:
    db = Database(with_database(infra.postgres.url, f"test_sla_{uuid.uuid4().hex[:8]}"))
    await db.open(service_migrations("routing"))
    bus = Bus(infra.nats.url, "test-sla")
    await bus.connect()
    await bus.provision(default_streams())
    outbox = Outbox(db, bus)  # its relay is not started: the events stay in the table
    clock, ids, repo = ManualClock(T0), IdGenerator(), SlaRepo(db.pool)
    timers = DueTimers(db, repo, outbox, clock, ids)
    clocks = SlaClocks(db, repo, outbox, clock, ids, registry.ROUTING_SLA, timers)
    yield Parts(db, repo, clock, clocks, timers, outbox, ids, str(uuid.uuid4()))
    await bus.drain()
    await db.close()


async def _policy(p: Parts, **targets: int) -> None:
    policy = Policy(
        id=str(uuid.uuid4()),
        name="standard",
        position=0,
        enabled=True,
        inbox_ids=(),
        categories=(),
        priorities=(),
        calendar_id="",
        first_response_minutes=targets.get("first", 60),
        next_response_minutes=None,
        resolution_minutes=None,
        warn_at_percent=50,
    )
    async with p.db.transaction() as conn:
        await p.repo.save_policy(conn, p.tenant, policy, T0, create=True)


def _summary(
    ticket_id: str, status: common_pb2.TicketStatus = common_pb2.TICKET_STATUS_OPEN
) -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(
        id=ticket_id, status=status, inbox=common_pb2.InboxRef(id=str(uuid.uuid4()))
    )
    s.received_at.FromDatetime(T0)
    return s


async def _event(p: Parts, etype: events.EventType, payload: object) -> None:
    env = events.envelope(
        etype,
        event_id=p.ids.new_str(),
        tenant_id=p.tenant,
        occurred_at=p.clock.now(),
        payload=payload,  # type: ignore[arg-type]
        actor=events.system_actor("tickets"),
    )
    await p.clocks.on_ticket_event(env, NO_DELIVERY)


async def _fired(p: Parts) -> list[tuple[str, str]]:
    """(type, ticket id) of every sla.warning / sla.breached queued, in order."""
    rows = await p.db.pool.fetch(
        "SELECT payload FROM outbox WHERE subject LIKE 'sb.routing.sla.%' "
        "AND subject <> 'sb.routing.sla.changed' ORDER BY created_at, event_id"
    )
    envs = [events_pb2.EventEnvelope.FromString(r["payload"]) for r in rows]
    return [(e.type, e.sla_alert.ticket_id) for e in envs]


async def _due(p: Parts, ticket_id: str) -> list[tuple[str, str, datetime]]:
    rows = await p.db.pool.fetch(
        "SELECT target, which, fire_at FROM sla_timers WHERE ticket_id = $1 ORDER BY fire_at",
        uuid.UUID(ticket_id),
    )
    return [(r["target"], r["which"], r["fire_at"]) for r in rows]


async def test_a_ticket_s_timers_fire_once_at_their_time_on_the_injected_clock(p: Parts) -> None:
    await _policy(p, first=60)
    tid = str(uuid.uuid4())
    await _event(p, events.TICKET_CREATED, events_pb2.TicketCreated(ticket=_summary(tid)))
    assert await _due(p, tid) == [
        ("first_response", "warning", T0 + timedelta(minutes=30)),
        ("first_response", "breach", T0 + timedelta(minutes=60)),
    ]
    p.clock.advance(minutes=29, seconds=59)
    await p.timers.step()
    assert await _fired(p) == []
    assert p.timers.every_s == pytest.approx(1.0)  # it sleeps until the warning is due
    p.clock.advance(seconds=1)
    await p.timers.step()
    await p.timers.step()
    assert await _fired(p) == [("sla.warning", tid)]
    p.clock.advance(minutes=31)
    await p.timers.step()
    assert await _fired(p) == [("sla.warning", tid), ("sla.breached", tid)]
    assert await _due(p, tid) == []
    # a later event of the ticket recomputes its SLA but does not fire them again
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=_summary(tid)))
    await p.timers.step()
    assert await _fired(p) == [("sla.warning", tid), ("sla.breached", tid)]


async def test_a_reply_or_a_pause_takes_the_timers_away(p: Parts) -> None:
    await _policy(p, first=60)
    replied, paused = str(uuid.uuid4()), str(uuid.uuid4())
    for tid in (replied, paused):
        await _event(p, events.TICKET_CREATED, events_pb2.TicketCreated(ticket=_summary(tid)))
    p.clock.advance(minutes=10)
    await _event(
        p,
        events.TICKET_MESSAGE_ADDED,
        events_pb2.TicketMessageAdded(ticket=_summary(replied), channel="sent"),
    )
    pending = _summary(paused, common_pb2.TICKET_STATUS_PENDING)
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=pending))
    assert await _due(p, replied) == [] and await _due(p, paused) == []
    # 20 minutes in pending, then open again: due 20 minutes later than before
    p.clock.advance(minutes=20)
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=_summary(paused)))
    assert await _due(p, paused) == [
        ("first_response", "warning", T0 + timedelta(minutes=50)),
        ("first_response", "breach", T0 + timedelta(minutes=80)),
    ]
    p.clock.advance(hours=2)
    await p.timers.step()
    assert await _fired(p) == [("sla.warning", paused), ("sla.breached", paused)]


async def test_two_replicas_claiming_the_same_due_timers_fire_each_once(p: Parts) -> None:
    tickets = [str(uuid.uuid4()) for _ in range(500)]
    async with p.db.transaction() as conn:
        for tid in tickets:
            row = SlaTicket(tid, "", "", "", "open", T0, False, "", "ok", None)
            await p.repo.upsert_ticket(conn, p.tenant, row)
            due = T0 + timedelta(minutes=1)
            await p.repo.replace_timers(
                conn, p.tenant, tid, [Timer(Kind.FIRST_RESPONSE, "breach", T0, due, due)]
            )
    p.clock.advance(minutes=2)
    other = DueTimers(p.db, p.repo, p.outbox, p.clock, p.ids)

    async def drain(t: DueTimers) -> None:
        while await t.step():
            pass

    await asyncio.gather(drain(p.timers), drain(other), drain(p.timers), drain(other))
    fired = await _fired(p)
    assert len(fired) == 500 and sorted(t for _, t in fired) == sorted(tickets)
    assert {etype for etype, _ in fired} == {"sla.breached"}
