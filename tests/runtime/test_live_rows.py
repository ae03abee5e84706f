"""reporting's live rows on a real PostgreSQL (services/reporting/live_events.py,
live_repo.py): the same events in any order, and redelivered, leave the same row and the
same figures; the wait starts at the oldest customer message after our latest reply; SLA
states: a warning fired for the clock now due is near, a clock past due is breached."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.reporting.live_events import LiveEvents
from services.reporting.live_repo import LiveRepo
from services.runtime import events
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from tests.conftest import Infra

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
INBOX = str(uuid.uuid4())
OP = str(uuid.uuid4())


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_live_{uuid.uuid4().hex[:8]}"))
    await d.open(
        runtime_migrations() + load_migrations("reporting", "services.reporting.migrations")
    )
    yield d
    await d.close()


def _summary(ticket: str, minute: int, status: int, assignee: str = "") -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(id=ticket, status=status, inbox=common_pb2.InboxRef(id=INBOX))
    s.received_at.FromDatetime(AT)
    s.updated_at.FromDatetime(AT + timedelta(minutes=minute))
    if assignee:
        s.assignee.id = assignee
    return s


def _env(
    etype: events.EventType, tenant: str, minute: int, payload: Any
) -> events_pb2.EventEnvelope:
    return events.envelope(
        etype,
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        occurred_at=AT + timedelta(minutes=minute),
        payload=payload,
        actor=events.system_actor("test"),
    )


def story(tenant: str, ticket: str) -> list[events_pb2.EventEnvelope]:
    """A customer writes (0), is answered (10), writes twice more (20, 30), is assigned
    (31), then the ticket is set pending (40) and open again (50)."""
    open_, pending = common_pb2.TICKET_STATUS_OPEN, common_pb2.TICKET_STATUS_PENDING
    return [
        _env(
            events.TICKET_CREATED,
            tenant,
            0,
            events_pb2.TicketCreated(
                ticket=_summary(ticket, 0, open_), message_id="m0", channel="smtp"
            ),
        ),
        _env(
            events.TICKET_MESSAGE_ADDED,
            tenant,
            10,
            events_pb2.TicketMessageAdded(
                ticket=_summary(ticket, 10, open_), message_id="m1", channel="sent"
            ),
        ),
        _env(
            events.TICKET_MESSAGE_ADDED,
            tenant,
            20,
            events_pb2.TicketMessageAdded(
                ticket=_summary(ticket, 20, open_), message_id="m2", channel="smtp"
            ),
        ),
        _env(
            events.TICKET_MESSAGE_ADDED,
            tenant,
            30,
            events_pb2.TicketMessageAdded(
                ticket=_summary(ticket, 30, open_), message_id="m3", channel="smtp"
            ),
        ),
        _env(
            events.TICKET_ASSIGNED,
            tenant,
            31,
            events_pb2.TicketAssigned(ticket=_summary(ticket, 31, open_, OP)),
        ),
        _env(
            events.TICKET_UPDATED,
            tenant,
            40,
            events_pb2.TicketUpdated(ticket=_summary(ticket, 40, pending, OP)),
        ),
        _env(
            events.TICKET_UPDATED,
            tenant,
            50,
            events_pb2.TicketUpdated(ticket=_summary(ticket, 50, open_, OP)),
        ),
    ]


async def row(db: Database, tenant: str, ticket: str) -> tuple[object, ...]:
    r = await db.pool.fetchrow(
        "SELECT inbox_id, status, assignee_id, version, answered_at, waiting_since"
        " FROM live_tickets WHERE tenant_id = $1 AND ticket_id = $2",
        uuid.UUID(tenant),
        uuid.UUID(ticket),
    )
    assert r is not None
    return tuple(r.values())


async def test_any_order_and_redeliveries_one_by_one_or_in_one_fetch_give_the_same_row(
    db: Database,
) -> None:
    consumer = LiveEvents(db, LiveRepo())
    rows = set()
    for n, order in enumerate(list(itertools.permutations(range(7)))[::97]):  # 52 of 5,040
        tenant, ticket = str(uuid.uuid4()), str(uuid.uuid4())
        envs = story(tenant, ticket)
        if n % 2:  # as one fetch: one transaction, each event twice in it
            await consumer.on_ticket_events([(envs[i], None) for i in order for _ in "ab"])  # type: ignore[misc]
        else:
            for i in order:
                await consumer.on_ticket_event(envs[i], None)  # type: ignore[arg-type]
                await consumer.on_ticket_event(envs[i], None)  # type: ignore[arg-type]
        got = await row(db, tenant, ticket)
        rows.add(got[1:])
    assert rows == {
        (
            "open",
            uuid.UUID(OP),
            AT + timedelta(minutes=50),
            AT + timedelta(minutes=10),
            AT + timedelta(minutes=20),
        )
    }


async def test_figures_of_waiting_late_near_and_breached(db: Database) -> None:
    repo, consumer = LiveRepo(), LiveEvents(db, LiveRepo())
    tenant = str(uuid.uuid4())
    tickets = [str(uuid.uuid4()) for _ in range(4)]
    now = AT + timedelta(minutes=90)  # waited 70 minutes
    due_soon, due_past = now + timedelta(minutes=5), now - timedelta(minutes=1)
    for t in tickets:
        envs = story(tenant, t)[:4]  # waiting since minute 20, unassigned, open
        if t == tickets[3]:  # its first SLA came with it (message.routed): the summary's
            for env in envs:
                payload = getattr(env, str(env.WhichOneof("payload")))
                payload.ticket.sla_due_at.FromDatetime(due_past)
        for env in envs:
            await consumer.on_ticket_event(env, None)  # type: ignore[arg-type]

    def sla(ticket: str, minute: int, state: str, due: datetime) -> events_pb2.EventEnvelope:
        changed = events_pb2.SlaChanged(ticket_id=ticket, state=state)
        changed.next_due_at.FromDatetime(due)
        return _env(events.SLA_CHANGED, tenant, minute, changed)

    def warning(ticket: str, minute: int, due: datetime) -> events_pb2.EventEnvelope:
        alert = events_pb2.SlaAlert(ticket_id=ticket, inbox_id=INBOX, target="next_response")
        alert.due_at.FromDatetime(due)
        return _env(events.SLA_WARNING, tenant, minute, alert)

    await consumer.on_sla_event(sla(tickets[0], 60, "ok", due_soon), None)  # type: ignore[arg-type]
    await consumer.on_sla_event(warning(tickets[0], 80, due_soon), None)  # type: ignore[arg-type]
    # an older sla.changed arriving late changes nothing
    await consumer.on_sla_event(sla(tickets[0], 50, "ok", now + timedelta(hours=5)), None)  # type: ignore[arg-type]
    await consumer.on_sla_event(sla(tickets[1], 60, "ok", due_past), None)  # type: ignore[arg-type]
    await consumer.on_sla_event(sla(tickets[2], 60, "ok", now + timedelta(hours=3)), None)  # type: ignore[arg-type]
    [figures] = await repo.queue(db.pool, tenant, [INBOX], now)
    assert (figures.waiting, figures.near_breach, figures.breached) == (4, 1, 2)
    assert figures.oldest_waiting_since == AT + timedelta(minutes=20)
    assert await repo.waits(db.pool, tenant, None, now) == {INBOX: [(70, 4)]}
    [load] = await repo.loads(db.pool, tenant, None)
    assert (load.operator_id, load.open, load.pending) == ("", 4, 0)
