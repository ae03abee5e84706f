"""Drafts in progress (CMP-4, from sb.compose.draft.changed): a ticket with an open draft
is "editing". The consumer keeps the set of a ticket's open drafts, so that a redelivered
or reordered event cannot count one twice, and announces ticket.updated when the ticket
starts or stops being edited by a draft."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from .convert import summary_pb
from .deps import Deps
from .records import ticket_of

DRAFTS_DURABLE = registry.TICKETS_DRAFTS.durable


class DraftTracker:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.drafts")

    async def on_draft(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        change = events.payload_of(env, events.DRAFT_CHANGED)
        if not change.ticket_id:
            return
        tenant = uuid.UUID(env.tenant_id)
        ticket_id = uuid.UUID(change.ticket_id)
        draft_id = uuid.UUID(change.draft_id)
        async with d.db.transaction() as conn:
            if not await first_time(conn, DRAFTS_DURABLE, env):
                return
            row = await d.repo.row(conn, env.tenant_id, ticket_id, for_update=True)
            if row is None:
                return  # not a ticket of this tenant
            if change.state == "open":
                await conn.execute(
                    "INSERT INTO ticket_drafts (tenant_id, draft_id, ticket_id) VALUES ($1,$2,$3) "
                    "ON CONFLICT DO NOTHING",
                    tenant,
                    draft_id,
                    ticket_id,
                )
            else:
                await conn.execute(
                    "DELETE FROM ticket_drafts WHERE tenant_id = $1 AND draft_id = $2",
                    tenant,
                    draft_id,
                )
            count = await conn.fetchval(
                "SELECT count(*) FROM ticket_drafts WHERE tenant_id = $1 AND ticket_id = $2",
                tenant,
                ticket_id,
            )
            if count == row.draft_count:
                return
            updated = ticket_of(
                await conn.fetchrow(
                    "UPDATE tickets SET draft_count = $3 WHERE tenant_id = $1 AND id = $2 "
                    "RETURNING *",
                    tenant,
                    ticket_id,
                    count,
                )
            )
            if (row.draft_count > 0) != (count > 0):
                was = row.lock_fence is not None or row.draft_count > 0
                now = updated.lock_fence is not None or count > 0
                payload = events_pb2.TicketUpdated(
                    ticket=summary_pb(updated),
                    changes=[
                        events_pb2.FieldChange(
                            field="editing",
                            old_value=str(was).lower(),
                            new_value=str(now).lower(),
                        )
                    ],
                    action="draft",
                )
                await d.outbox.add(
                    conn,
                    events.caused_by(
                        events.TICKET_UPDATED,
                        env,
                        event_id=d.ids.new_str(),
                        occurred_at=d.clock.now(),
                        payload=payload,
                        actor=env.actor,
                    ),
                )
        d.outbox.wake()
        self._log.info("drafts counted", drafts=count)  # ticket_id: bound from the event
