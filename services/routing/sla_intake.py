"""The SLA inside message.routed (issue 18 step 5: thread → rules → assignment → SLA, one
message.routed): for a mail that starts a ticket, routing computes the new ticket's SLA
while routing it — from the inbox, category, priority and status the rules left — and
carries the soonest due time in MessageRouted (`sla_due_at`, `sla_policy_id`,
`sla_state`); tickets keeps it in the transaction that files the mail, so the ticket has
its due time from its first moment.

Routing keeps the same SLA on its own row for the ticket (in the routed event's
transaction), so the recompute that ticket.created causes finds nothing moved: no second
sla.changed, and the timers are set once, by that recompute, as for every later change
(sla_clocks.py). A mail joining a ticket changes its SLA through the events as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.clock import Clock

from .sla import Happened, Happening, TicketFacts, compute
from .sla_clocks import SlaClocks, priority_name, status_name
from .sla_records import SlaTicket
from .sla_repo import SlaRepo


def new_ticket(
    received: events_pb2.MessageReceived, routed: events_pb2.MessageRouted
) -> SlaTicket | None:
    """The ticket the routed mail starts, as tickets will file it; None for a mail that
    joins a ticket (or one we sent)."""
    if routed.thread_ticket_id or not routed.new_ticket_id or received.channel == "sent":
        return None
    d = routed.decision
    status = common_pb2.TICKET_STATUS_OPEN
    if events.is_junk(received.mail) or d.trash or d.spam:
        status = common_pb2.TICKET_STATUS_TRASH
    elif d.status:
        status = d.status
    return SlaTicket(
        ticket_id=routed.new_ticket_id,
        inbox_id=d.inbox_id or received.inbox.id,
        category=d.category if d.HasField("category") else "",
        priority=priority_name(d.priority) or "normal",
        status=status_name(status),
        created_at=received.received_at.ToDatetime(tzinfo=UTC),
        opened_by_operator=False,
        policy_id="",
        state="none",
        next_due_at=None,
    )


class SlaAtIntake:
    def __init__(self, repo: SlaRepo, clocks: SlaClocks, clock: Clock) -> None:
        self._repo = repo
        self._clocks = clocks
        self._clock = clock

    async def route(
        self,
        tenant: str,
        received: events_pb2.MessageReceived,
        routed: events_pb2.MessageRouted,
    ) -> SlaTicket | None:
        """The new ticket's SLA into `routed`; the ticket with it, for `note`."""
        t = new_ticket(received, routed)
        if t is None:
            return None
        policy, hours = await self._clocks.policy_and_hours(self._repo.pool, tenant, t)
        if policy is None:
            return None
        facts = TicketFacts(
            t.created_at, "open", (Happening(t.created_at, Happened.STATUS, t.status),)
        )
        sla = compute(policy, hours, facts, self._clock.now())
        routed.sla_policy_id = policy.id
        routed.sla_state = sla.state.value
        if sla.next_due_at is not None:
            routed.sla_due_at.FromDatetime(sla.next_due_at)
        return replace(t, policy_id=policy.id, state=sla.state.value, next_due_at=sla.next_due_at)

    async def note(self, conn: asyncpg.Connection, tenant: str, t: SlaTicket | None) -> None:
        """Routing's row of the new ticket with that SLA (the routed event's transaction)."""
        if t is None:
            return
        await self._repo.upsert_ticket(conn, tenant, t)
        await self._repo.save_sla(conn, tenant, t.ticket_id, t.policy_id, t.state, t.next_due_at)
