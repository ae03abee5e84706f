"""What routing learns from tickets' events for assignment (`routing__tickets`): each
ticket's inbox, channel, status, assignee and priority into routing's own row, and the
operators' load counters with it (`AssignRepo.apply_state`); a mail we sent on a ticket
marks it replied. Applied once per event (`processed_events`), in one transaction; a
state older than the row changes nothing, so replicas may take events in any order.
Each change waits for the tenant's assignment pass, if one runs (the same lock).
When a ticket starts waiting or someone's load goes down, the assigner is woken."""

from __future__ import annotations

from collections.abc import Callable

from switchboard.v1 import events_pb2

from services.runtime import events, registry
from services.runtime.bus import Delivery
from services.runtime.db import Database
from services.runtime.outbox import first_time

from .assign_repo import AssignRepo
from .ticket_state import Incoming, state_of

TICKETS = registry.ROUTING_TICKETS


class TicketEvents:
    def __init__(self, db: Database, repo: AssignRepo, wake: Callable[[], None]) -> None:
        self._db = db
        self._repo = repo
        self._wake = wake

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        kind = env.WhichOneof("payload")
        channel = ""
        replied = False
        if kind == "ticket_created":
            summary = env.ticket_created.ticket
            channel = env.ticket_created.channel
        elif kind == "ticket_updated":
            summary = env.ticket_updated.ticket
        elif kind == "ticket_assigned":
            summary = env.ticket_assigned.ticket
        else:
            added = events.payload_of(env, events.TICKET_MESSAGE_ADDED)
            summary = added.ticket
            replied = events.answers_customer(added.channel, added.mail)
        async with self._db.transaction() as conn:
            if not await first_time(conn, TICKETS.durable, env):
                return
            # after the tenant's assignment pass, if one runs: the pass and this change
            # then never wait on each other's rows (no deadlock), and a pass never reads
            # loads an event is halfway through changing
            await self._repo.lock_tenant(conn, env.tenant_id)
            applied = await self._repo.apply_state(
                conn, env.tenant_id, Incoming(state_of(summary), channel=channel, replied=replied)
            )
        if applied.changed and (applied.waiting or applied.freed):
            self._wake()
