"""Reporting's consumers of the events that make facts (issue 19 §1): tickets' (arrivals,
customer messages and replies, status changes, transfers, assignments), outbound's (sends
and their authors), approval's (requests, decisions, send-backs) and routing's SLA alerts.

Each event is applied once: `processed_events`, the facts and reporting's own state are
written in one transaction (one per fetch of a consumer's events, in stream order:
facts_wiring.py), and a fact already there (same tenant, metric, key) is skipped — a
redelivered or re-published event counts once. The inbox's calendar is asked
before the transaction (inbox_hours.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime.bus import Delivery, Item
from services.runtime.db import Database
from services.runtime.outbox import first_times

from . import facts as f
from . import facts_store as store
from .facts import Hours, NewFact, TicketState
from .inbox_hours import InboxHours

Wake = Callable[[], None]
Derive = Callable[[asyncpg.Connection, events_pb2.EventEnvelope], Awaitable[list[NewFact]]]
Finish = Callable[[asyncpg.Connection], Awaitable[None]]
_Key = tuple[str, str]  # tenant, ticket


def _ticket_of(env: events_pb2.EventEnvelope) -> events_pb2.TicketSummary | None:
    kind = env.WhichOneof("payload")
    if kind in ("ticket_created", "ticket_updated", "ticket_assigned", "ticket_message_added"):
        ticket: events_pb2.TicketSummary = getattr(env, kind).ticket
        return ticket
    return None


class FactsIntake:
    """Each consumer's handler takes one event (`tickets`) or a fetch's events in stream
    order (`tickets_batch`): applied in one transaction — the events not applied before,
    their facts inserted in one statement, a ticket's state read once and written once."""

    def __init__(self, db: Database, hours: InboxHours, wake: Wake, *, once: bool = True) -> None:
        """`once=False` (a replay): the events are not recorded in `processed_events` —
        the facts' keys alone keep an event from counting twice."""
        self._db = db
        self._hours = hours
        self._wake = wake
        self._once = once

    async def _apply(
        self, items: Sequence[Item], derive: Derive, finish: Finish | None = None
    ) -> None:
        if not items:
            return
        async with self._db.transaction() as conn:
            envs = [env for env, _ in items]
            if self._once:
                envs = await first_times(conn, items[0][1].consumer, envs)
            made: list[NewFact] = []
            for env in envs:
                made += await derive(conn, env)
            if finish is not None:
                await finish(conn)
            new = await store.insert_facts(conn, made)
        if new:
            self._wake()

    # -- tickets -------------------------------------------------------------------------

    async def tickets(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.tickets_batch([(env, delivery)])

    async def tickets_batch(self, items: Sequence[Item]) -> None:
        work = [(env, d) for env, d in items if (t := _ticket_of(env)) is not None and t.id]
        hours: dict[_Key, Hours] = {}
        for env, _ in work:
            t = _ticket_of(env)
            assert t is not None
            if (env.tenant_id, t.inbox.id) not in hours:
                hours[env.tenant_id, t.inbox.id] = await self._hours.of(env.tenant_id, t.inbox.id)
        states: dict[_Key, TicketState | None] = {}  # as read, then as derived
        changed: dict[_Key, TicketState] = {}

        async def derive(conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> list[NewFact]:
            t = _ticket_of(env)
            assert t is not None
            key = (env.tenant_id, t.id)
            state, made = await self._ticket_facts(
                conn, env, hours[env.tenant_id, t.inbox.id], states, key
            )
            if state is not None and store.savable(state):
                states[key] = changed[key] = state
            return made

        async def finish(conn: asyncpg.Connection) -> None:
            await store.save_tickets(conn, list(changed.items()))

        await self._apply(work, derive, finish)

    async def _ticket_facts(
        self,
        conn: asyncpg.Connection,
        env: events_pb2.EventEnvelope,
        hours: Hours,
        states: dict[_Key, TicketState | None],
        key: _Key,
    ) -> f.Derived:
        tenant = env.tenant_id
        kind = env.WhichOneof("payload")
        if kind == "ticket_created":
            return f.on_created(tenant, env)
        if key not in states:
            states[key] = await store.ticket_state(conn, tenant, key[1])
        state = states[key]
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
        await self.sends_batch([(env, delivery)])

    async def sends_batch(self, items: Sequence[Item]) -> None:
        async def derive(conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> list[NewFact]:
            c = env.send_changed
            tenant = env.tenant_id
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

        await self._apply(items, derive)

    # -- approval ------------------------------------------------------------------------

    async def approvals(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.approvals_batch([(env, delivery)])

    async def approvals_batch(self, items: Sequence[Item]) -> None:
        hours: dict[_Key, Hours] = {}
        for env, _ in items:
            key = (env.tenant_id, env.approval_changed.inbox_id)
            if key not in hours:
                hours[key] = await self._hours.of(*key)

        async def derive(conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> list[NewFact]:
            a = env.approval_changed
            return f.on_approval(env.tenant_id, env, hours[env.tenant_id, a.inbox_id])

        await self._apply(items, derive)

    # -- routing -------------------------------------------------------------------------

    async def sla(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.sla_batch([(env, delivery)])

    async def sla_batch(self, items: Sequence[Item]) -> None:
        async def derive(conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> list[NewFact]:
            ticket = await store.ticket_state(conn, env.tenant_id, env.sla_alert.ticket_id)
            return f.on_sla(env.tenant_id, env, ticket)

        await self._apply(items, derive)
