"""Routing's SLA due times on the ticket (issue 18, consumer `tickets__sla`, from
sb.routing.sla.changed): routing owns the SLA; tickets keeps the soonest due time so that
lists sort by it (`sort=sla_due_at`). An event older than the one applied is ignored, so
a redelivered or late one cannot put an old due time back.

A due time that moved is announced as ticket.updated with action "sla" and the change
`sla_due_at` (no audit entry: nobody changed the ticket), so open lists and ticket views
refresh live. Routing's own consumers of ticket.updated pass over that action."""

from __future__ import annotations

import uuid
from datetime import UTC

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from .convert import summary_pb
from .deps import Deps
from .domain import iso_or_empty
from .records import ticket_of

SLA_DURABLE = registry.TICKETS_SLA.durable


class SlaDueTimes:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.sla")

    async def on_sla_changed(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        changed = events.payload_of(env, events.SLA_CHANGED)
        due = (
            changed.next_due_at.ToDatetime(tzinfo=UTC) if changed.HasField("next_due_at") else None
        )
        at = env.occurred_at.ToDatetime(tzinfo=UTC)
        async with d.db.transaction() as conn:
            if not await first_time(conn, SLA_DURABLE, env):
                return
            row = await conn.fetchrow(
                "UPDATE tickets t SET sla_due_at = $3, sla_changed_at = $4 FROM tickets old "
                "WHERE t.tenant_id = $1 AND t.id = $2 "
                "AND old.tenant_id = t.tenant_id AND old.id = t.id "
                "AND (t.sla_changed_at IS NULL OR t.sla_changed_at <= $4) "
                "RETURNING t.*, old.sla_due_at AS old_sla_due_at",
                uuid.UUID(env.tenant_id),
                uuid.UUID(changed.ticket_id),
                due,
                at,
            )
            if row is not None and row["old_sla_due_at"] != due:
                change = events_pb2.FieldChange(
                    field="sla_due_at",
                    old_value=iso_or_empty(row["old_sla_due_at"]),
                    new_value=iso_or_empty(due),
                )
                updated = events_pb2.TicketUpdated(
                    ticket=summary_pb(ticket_of(row)), changes=[change], action=events.SLA_MOVED
                )
                await d.outbox.add(
                    conn,
                    events.caused_by(
                        events.TICKET_UPDATED,
                        env,
                        event_id=d.ids.new_str(),
                        occurred_at=d.clock.now(),
                        payload=updated,
                        actor=events.system_actor("tickets"),
                    ),
                )
        d.outbox.wake()
        self._log.debug("sla due time kept", ticket_id=changed.ticket_id, state=changed.state)
