"""Outgoing mail in the ticket's audit trail (issue 16, from sb.outbound.send.changed):
every change to a send of a ticket — submitted, cancelled, rescheduled, an operator's
decision on an unknown mail, each attempt's outcome, a bounce — becomes an audit row of
the ticket, with who did it (the event's actor: the operator, or outbound). Outbound owns
the sends and tickets owns the audit: the event is the only link between them."""

from __future__ import annotations

import uuid
from datetime import UTC

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from .deps import Deps
from .domain import Change

SENDS_DURABLE = registry.TICKETS_SENDS.durable


def audit_of(change: events_pb2.SendChanged) -> tuple[str, list[Change], str]:
    """The audit row's action, changes and note for one change of a send (pure)."""
    action = f"send.{change.action or 'changed'}"
    changes = [Change("send", change.previous_state, change.state)]
    if change.HasField("previous_send_at"):
        changes.append(
            Change(
                "send_at",
                change.previous_send_at.ToDatetime(tzinfo=UTC).isoformat(),
                change.send_at.ToDatetime(tzinfo=UTC).isoformat(),
            )
        )
    elif change.action in ("submitted", "queued") and change.HasField("send_at"):
        changes.append(Change("send_at", "", change.send_at.ToDatetime(tzinfo=UTC).isoformat()))
    note = f"{change.kind} {change.send_id}"
    if change.channel:  # a reply through a channel (issue 21): the UI words it so
        note += f" via {change.channel}"
    if change.smtp_code or change.smtp_message:
        # a channel reply (issue 21) has no SMTP code: its message alone
        code = str(change.smtp_code) if change.smtp_code else ""
        reply = f"{code} {change.smtp_message}".strip()
        note += f"; attempt {change.attempts}: {reply}"[:500]
    return action, changes, note


class SendAudit:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.send_audit")

    async def on_send(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        change = events.payload_of(env, events.SEND_CHANGED)
        if not change.ticket_id:
            return  # a new mail without a ticket: nothing to audit on
        ticket_id = uuid.UUID(change.ticket_id)
        action, changes, note = audit_of(change)
        async with d.db.transaction() as conn:
            if not await first_time(conn, SENDS_DURABLE, env):
                return
            if await d.repo.row(conn, env.tenant_id, ticket_id) is None:
                return  # not a ticket of this tenant
            await d.repo.add_audit(
                conn,
                id=d.ids.new(),
                tenant_id=env.tenant_id,
                ticket_id=ticket_id,
                at=env.occurred_at.ToDatetime(tzinfo=UTC),
                actor=env.actor,
                action=action,
                changes=changes,
                comment=note,
            )
        self._log.info("send audited", action=action, send_id=change.send_id)
