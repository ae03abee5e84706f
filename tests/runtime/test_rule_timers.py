"""The rule time triggers' timers (issue 18) on real PostgreSQL, with an injected clock:
tickets' events arm `no_first_reply` timers (one per distinct minutes of the tenant's
rules) and `pending_until` timers in the SLA's due-time index; the same claim loop fires
each once as rule.timer_due, also from a fresh loop (a restart); a reply, a closing or a
new date takes them away or moves them; saving a rule arms the tickets already waiting."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.routing.peers import Peers
from services.routing.rule_store import RuleCache, RuleStore
from services.routing.rules import validate
from services.routing.rules_intake import RulesContext
from services.routing.rules_time import TimeRules
from services.routing.sla_clocks import DueTimers, SlaClocks
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
INBOX = str(uuid.uuid4())


@dataclass
class Parts:
    db: Database
    repo: SlaRepo
    store: RuleStore
    cache: RuleCache
    clock: ManualClock
    clocks: SlaClocks
    timers: DueTimers
    outbox: Outbox
    ids: IdGenerator
    tenant: str


@pytest.fixture
async def p(infra: Infra) -> AsyncIterator[Parts]:
    db = Database(with_database(infra.postgres.url, f"test_rt_{uuid.uuid4().hex[:8]}"))
    await db.open(service_migrations("routing"))
    bus = Bus(infra.nats.url, "test-rule-timers")
    await bus.connect()
    await bus.provision(default_streams())
    outbox = Outbox(db, bus)  # its relay is not started: the events stay in the table
    clock, ids, repo = ManualClock(T0), IdGenerator(), SlaRepo(db.pool)
    timers = DueTimers(db, repo, outbox, clock, ids)
    clocks = SlaClocks(db, repo, outbox, clock, ids, registry.ROUTING_SLA, timers)
    store = RuleStore(db.pool)
    cache = RuleCache(store, check_every_s=0)

    async def no_hours(tenant: str) -> Any:
        return lambda calendar_id, at: None

    # the peers are only asked when a timer's rules run (the e2e test does that)
    ctx = RulesContext(store, cache, cast(Peers, None), clock, no_hours)
    clocks.also_arm(TimeRules(ctx, repo).arm)
    yield Parts(db, repo, store, cache, clock, clocks, timers, outbox, ids, str(uuid.uuid4()))
    await bus.drain()
    await db.close()


async def _rule(p: Parts, trigger: str, minutes: int | None = None, **more: Any) -> None:
    raw: dict[str, Any] = {
        "name": f"{trigger} {minutes} {uuid.uuid4().hex[:6]}",
        "triggers": [trigger],
        "actions": [{"type": "add_label", "value": "late"}],
        **more,
    }
    if minutes is not None:
        raw["no_first_reply_minutes"] = minutes
    definition = validate.parse(raw)
    await p.store.create(p.tenant, str(uuid.uuid4()), definition, None, T0, str(uuid.uuid4()))
    p.cache.forget(p.tenant)


def _summary(
    ticket_id: str,
    status: common_pb2.TicketStatus = common_pb2.TICKET_STATUS_OPEN,
    pending_until: datetime | None = None,
) -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(id=ticket_id, status=status, inbox=common_pb2.InboxRef(id=INBOX))
    s.received_at.FromDatetime(T0)
    if pending_until is not None:
        s.pending_until.FromDatetime(pending_until)
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


async def _created(p: Parts, tid: str, channel: str = "smtp") -> None:
    await _event(
        p, events.TICKET_CREATED, events_pb2.TicketCreated(ticket=_summary(tid), channel=channel)
    )


async def _fired(p: Parts) -> list[tuple[str, int, str]]:
    """(trigger, minutes, ticket id) of every rule.timer_due queued, in order."""
    rows = await p.db.pool.fetch(
        "SELECT payload FROM outbox WHERE subject = $1 ORDER BY created_at, event_id",
        events.RULE_TIMER_DUE.subject,
    )
    envs = [events_pb2.EventEnvelope.FromString(r["payload"]) for r in rows]
    return [(e.rule_timer.trigger, e.rule_timer.minutes, e.rule_timer.ticket_id) for e in envs]


async def _due(p: Parts, ticket_id: str) -> list[tuple[str, str, datetime]]:
    rows = await p.db.pool.fetch(
        "SELECT target, which, fire_at FROM sla_timers WHERE ticket_id = $1 ORDER BY fire_at",
        uuid.UUID(ticket_id),
    )
    return [(r["target"], r["which"], r["fire_at"]) for r in rows]


async def test_no_first_reply_fires_once_per_minutes_at_its_time_and_after_a_restart(
    p: Parts,
) -> None:
    await _rule(p, "no_first_reply", 30)
    await _rule(p, "no_first_reply", 30)  # the same minutes: one timer for both
    await _rule(p, "no_first_reply", 60)
    tid = str(uuid.uuid4())
    await _created(p, tid)
    assert await _due(p, tid) == [
        ("no_first_reply", "30", T0 + timedelta(minutes=30)),
        ("no_first_reply", "60", T0 + timedelta(minutes=60)),
    ]
    p.clock.advance(minutes=29, seconds=59)
    await p.timers.step()
    assert await _fired(p) == []
    p.clock.advance(seconds=1)
    await p.timers.step()
    assert await _fired(p) == [("no_first_reply", 30, tid)]
    # routing restarts: a fresh claim loop starts from the index
    restarted = DueTimers(p.db, p.repo, p.outbox, p.clock, p.ids)
    p.clock.advance(minutes=31)
    await restarted.step()
    assert await _fired(p) == [("no_first_reply", 30, tid), ("no_first_reply", 60, tid)]
    # a later event recomputes the ticket but arms nothing that already fired
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=_summary(tid)))
    assert await _due(p, tid) == []
    p.clock.advance(hours=1)
    await p.timers.step()
    assert len(await _fired(p)) == 2


async def test_a_reply_a_closing_or_a_ticket_we_opened_owe_no_first_reply(p: Parts) -> None:
    await _rule(p, "no_first_reply", 30)
    replied, closed, ours = (str(uuid.uuid4()) for _ in range(3))
    for tid in (replied, closed):
        await _created(p, tid)
    await _created(p, ours, channel="sent")
    assert await _due(p, ours) == []
    p.clock.advance(minutes=10)
    await _event(
        p,
        events.TICKET_MESSAGE_ADDED,
        events_pb2.TicketMessageAdded(ticket=_summary(replied), channel="sent"),
    )
    resolved = _summary(closed, common_pb2.TICKET_STATUS_RESOLVED)
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=resolved))
    assert await _due(p, replied) == [] and await _due(p, closed) == []
    p.clock.advance(hours=1)
    await p.timers.step()
    assert await _fired(p) == []


async def test_pending_until_fires_once_per_date_and_leaving_pending_disarms(p: Parts) -> None:
    await _rule(p, "pending_until")
    tid, left = str(uuid.uuid4()), str(uuid.uuid4())
    first, later = T0 + timedelta(hours=2), T0 + timedelta(hours=5)
    for t in (tid, left):
        await _created(p, t)
        assert await _due(p, t) == []  # open: no date
        pending = _summary(t, common_pb2.TICKET_STATUS_PENDING, first)
        await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=pending))
        assert await _due(p, t) == [("pending_until", "at", first)]
    # a new date moves the timer; leaving pending takes it away
    moved = _summary(tid, common_pb2.TICKET_STATUS_PENDING, later)
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=moved))
    assert await _due(p, tid) == [("pending_until", "at", later)]
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=_summary(left)))
    assert await _due(p, left) == []
    p.clock.advance(hours=3)
    await p.timers.step()
    assert await _fired(p) == []
    p.clock.advance(hours=2)
    await p.timers.step()
    assert await _fired(p) == [("pending_until", 0, tid)]
    # the same date again fires nothing more
    await _event(p, events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=moved))
    await p.timers.step()
    assert await _fired(p) == [("pending_until", 0, tid)]


async def test_a_rule_saved_later_arms_the_tickets_already_waiting(p: Parts) -> None:
    tid, other_inbox = str(uuid.uuid4()), str(uuid.uuid4())
    await _created(p, tid)
    assert await _due(p, tid) == []
    await _rule(p, "no_first_reply", 45)
    await _rule(p, "no_first_reply", 15, inbox_id=other_inbox)  # not the ticket's inbox
    assert await p.clocks.recompute_tenant(p.tenant) == 1
    assert await _due(p, tid) == [("no_first_reply", "45", T0 + timedelta(minutes=45))]
