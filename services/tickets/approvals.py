"""Approval requests on a ticket (issue 17, consumer `tickets__approvals`, from
sb.approval.*): the ticket is `awaiting_approval` while one of its drafts' requests is
pending, and every step — requested with the handover note, a stage approved, sent
back with the comment, cancelled, voided — is a row of its audit trail (the timeline).
Approval owns the requests; the events are the only link. Each request is remembered
with whether it is pending, so a redelivered or late event cannot count one twice or
make an ended one pending again; a change of the view is announced as ticket.updated
(action `approval`), so open lists follow it live."""

from __future__ import annotations

import uuid
from datetime import UTC

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from . import approval_rules as rules
from .convert import summary_pb
from .deps import Deps
from .records import Ticket, ticket_of

APPROVALS_DURABLE = registry.TICKETS_APPROVALS.durable

_REMEMBER = (
    "INSERT INTO ticket_approvals (tenant_id, request_id, ticket_id, pending) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, request_id) DO UPDATE "
    "SET pending = false WHERE NOT $4"
)


class ApprovalTracker:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.approvals")

    async def on_approval(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        change = events.approval_change_of(env)
        if not change.ticket_id:
            return  # a new mail without a ticket
        ticket_id = uuid.UUID(change.ticket_id)
        pending = rules.pending_after(env.type, change)
        entry = rules.audit_of(env.type, change)
        async with d.db.transaction() as conn:
            if not await first_time(conn, APPROVALS_DURABLE, env):
                return
            row = await d.repo.row(conn, env.tenant_id, ticket_id, for_update=True)
            if row is None:
                return  # not a ticket of this tenant
            if entry is not None:
                action, changes, note = entry
                await d.repo.add_audit(
                    conn,
                    id=d.ids.new(),
                    tenant_id=env.tenant_id,
                    ticket_id=ticket_id,
                    at=env.occurred_at.ToDatetime(tzinfo=UTC),
                    actor=env.actor,
                    action=action,
                    changes=changes,
                    comment=note[:4000],
                )
            if pending is not None:
                await self._remember(conn, env, row, change.request_id, pending)
        d.outbox.wake()
        self._log.info("approval recorded", event_type=env.type, request_id=change.request_id)

    async def _remember(
        self,
        conn: asyncpg.Connection,
        env: events_pb2.EventEnvelope,
        row: Ticket,
        request_id: str,
        pending: bool,
    ) -> None:
        d = self._d
        tenant = uuid.UUID(env.tenant_id)
        await conn.execute(_REMEMBER, tenant, uuid.UUID(request_id), row.id, pending)
        awaiting = bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ticket_approvals WHERE tenant_id = $1 "
                "AND ticket_id = $2 AND pending)",
                tenant,
                row.id,
            )
        )
        if awaiting == row.awaiting_approval:
            return
        updated = ticket_of(
            await conn.fetchrow(
                "UPDATE tickets SET awaiting_approval = $3 WHERE tenant_id = $1 AND id = $2 "
                "RETURNING *",
                tenant,
                row.id,
                awaiting,
            )
        )
        payload = events_pb2.TicketUpdated(
            ticket=summary_pb(updated),
            changes=[
                events_pb2.FieldChange(
                    field="awaiting_approval",
                    old_value=str(row.awaiting_approval).lower(),
                    new_value=str(awaiting).lower(),
                )
            ],
            action="approval",
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
