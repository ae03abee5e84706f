"""Reporting's consumers of the events that make facts (issue 19 §1): tickets' (arrivals,
customer messages and replies, status changes, transfers, assignments), outbound's (sends
and their authors), approval's (requests, decisions, send-backs) and routing's SLA alerts.

Each event is applied once: `processed_events`, the facts and reporting's own state are
written in one transaction, and a fact already there (same tenant, metric, key) is
skipped — a redelivered or re-published event counts once. The inbox's calendar is asked
before the transaction (inbox_hours.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime.bus import Delivery
from services.runtime.db import Database
from services.runtime.outbox import first_time

from . import facts as f
from . import facts_store as store
from .facts import Hours, NewFact
from .inbox_hours import InboxHours

Wake = Callable[[], None]
Apply = Callable[[asyncpg.Connection], Awaitable[list[NewFact]]]


def _ticket_of(env: events_pb2.EventEnvelope) -> events_pb2.TicketSummary | None:
    kind = env.WhichOneof("payload")
    if kind in ("ticket_created", "ticket_updated", "ticket_assigned", "ticket_message_added"):
        ticket: events_pb2.TicketSummary = getattr(env, kind).ticket
        return ticket
    return None


class FactsIntake:
    def __init__(self, db: Database, hours: InboxHours, wake: Wake, *, once: bool = True) -> None:
        """`once=False` (a replay): the events are not recorded in `processed_events` —
        the facts' keys alone keep an event from counting twice."""
        self._db = db
        self._hours = hours
        self._wake = wake
        self._once = once

    async def _apply(self, consumer: str, env: events_pb2.EventEnvelope, apply: Apply) -> None:
        async with self._db.transaction() as conn:
            if self._once and not await first_time(conn, consumer, env):
                return
            new = await store.insert_facts(conn, await apply(conn))
        if new:
            self._wake()

    # -- tickets -------------------------------------------------------------------------

    async def tickets(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        t = _ticket_of(env)
        if t is None or not t.id:
            return
        tenant = env.tenant_id
        hours = await self._hours.of(tenant, t.inbox.id)

        async def apply(conn: asyncpg.Connection) -> list[NewFact]:
            state, made = await self._ticket_facts(conn, tenant, env, hours)
            if state is not None:
                await store.save_ticket(conn, tenant, state)
            return made

        await self._apply(delivery.consumer, env, apply)

    async def _ticket_facts(
        self, conn: asyncpg.Connection, tenant: str, env: events_pb2.EventEnvelope, hours: Hours
    ) -> f.Derived:
        kind = env.WhichOneof("payload")
        if kind == "ticket_created":
            return f.on_created(tenant, env)
        t = _ticket_of(env)
        assert t is not None
        state = await store.ticket_state(conn, tenant, t.id)
        if kind == "ticket_message_added":
            m = env.ticket_message_added
            replier = None
            if m.channel == f.SENT_CHANNEL:
                replier = await store.author_of_message(conn, tenant, m.mail.rfc822_message_id)
            return f.on_message_added(tenant, env, state, hours, replier)
        if kind == "ticket_updated":
            if env.ticket_updated.action == "sla":  # routing's due time shown on the ticket
                return state, []
            return f.on_updated(tenant, env, state, hours)
        return f.on_assigned(tenant, env, state)

    # -- outbound ------------------------------------------------------------------------

    async def sends(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        c = env.send_changed
        tenant = env.tenant_id

        async def apply(conn: asyncpg.Connection) -> list[NewFact]:
            if c.action == "submitted" or c.action == "queued":
                by = f.operator_of(env.actor) if c.action == "submitted" else None
                await store.record_send(
                    conn, tenant, c.send_id, by, c.kind, c.message_id, c.inbox_id,
                    c.ticket_id or None, f.occurred(env), c.draft_kind,
                )  # fmt: skip
            if c.state != "sent":
                return []
            author, draft_kind = await store.send_author(conn, tenant, c.send_id)
            ticket = await store.ticket_state(conn, tenant, c.ticket_id) if c.ticket_id else None
            return f.on_sent(tenant, env, author, ticket, draft_kind)

        await self._apply(delivery.consumer, env, apply)

    # -- approval ------------------------------------------------------------------------

    async def approvals(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        a = env.approval_changed
        hours = await self._hours.of(env.tenant_id, a.inbox_id)

        async def apply(conn: asyncpg.Connection) -> list[NewFact]:
            return f.on_approval(env.tenant_id, env, hours)

        await self._apply(delivery.consumer, env, apply)

    # -- routing -------------------------------------------------------------------------

    async def sla(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        a = env.sla_alert

        async def apply(conn: asyncpg.Connection) -> list[NewFact]:
            ticket = await store.ticket_state(conn, env.tenant_id, a.ticket_id)
            return f.on_sla(env.tenant_id, env, ticket)

        await self._apply(delivery.consumer, env, apply)
