"""Envelopes of the events reporting makes facts from, as their producers shape them — for
the facts unit tests and the e2e tests that publish them (backdated by `occurred_at`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events

SYSTEM = common_pb2.Actor(kind=common_pb2.Actor.KIND_SYSTEM, id="tickets", display="tickets")


def op(operator_id: str) -> common_pb2.Actor:
    return common_pb2.Actor(kind=common_pb2.Actor.KIND_OPERATOR, id=operator_id, display="op")


def _env(
    etype: events.EventType,
    tenant: str,
    at: datetime,
    payload: object,
    actor: common_pb2.Actor = SYSTEM,
) -> events_pb2.EventEnvelope:
    return events.envelope(
        etype,
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        occurred_at=at,
        payload=payload,  # type: ignore[arg-type]
        actor=actor,
    )


def ticket(
    ticket_id: str,
    inbox: str,
    status: int = common_pb2.TICKET_STATUS_OPEN,
    *,
    labels: tuple[str, ...] = (),
    category: str = "",
    assignee: str = "",
) -> events_pb2.TicketSummary:
    t = events_pb2.TicketSummary(
        id=ticket_id,
        status=status,
        inbox=common_pb2.InboxRef(id=inbox),
        labels=list(labels),
        category=category,
        priority=common_pb2.PRIORITY_NORMAL,
    )
    if assignee:
        t.assignee.id = assignee
    return t


def created(
    tenant: str, t: events_pb2.TicketSummary, at: datetime, message_id: str, channel: str = "smtp"
) -> events_pb2.EventEnvelope:
    return _env(
        events.TICKET_CREATED,
        tenant,
        at,
        events_pb2.TicketCreated(ticket=t, message_id=message_id, channel=channel),
    )


def message(
    tenant: str,
    t: events_pb2.TicketSummary,
    at: datetime,
    message_id: str,
    channel: str = "smtp",
    *,
    reopened: bool = False,
    rfc822_id: str = "",
) -> events_pb2.EventEnvelope:
    m = events_pb2.TicketMessageAdded(
        ticket=t, message_id=message_id, channel=channel, reopened=reopened
    )
    m.mail.rfc822_message_id = rfc822_id
    return _env(events.TICKET_MESSAGE_ADDED, tenant, at, m)


def status_change(
    tenant: str,
    t: events_pb2.TicketSummary,
    at: datetime,
    old: str,
    new: str,
    by: str,
) -> events_pb2.EventEnvelope:
    u = events_pb2.TicketUpdated(
        ticket=t,
        action="update",
        changes=[events_pb2.FieldChange(field="status", old_value=old, new_value=new)],
    )
    return _env(events.TICKET_UPDATED, tenant, at, u, op(by))


def approval(
    etype: events.EventType,
    tenant: str,
    at: datetime,
    *,
    request_id: str,
    inbox: str,
    author: str,
    approver: str = "",
    requested_at: datetime | None = None,
    stage: int = 0,
) -> events_pb2.EventEnvelope:
    a = events_pb2.ApprovalChanged(
        request_id=request_id,
        inbox_id=inbox,
        author=common_pb2.OperatorRef(id=author),
        approver=common_pb2.OperatorRef(id=approver),
        stage=stage,
        stage_count=1,
    )
    a.requested_at.FromDatetime(requested_at or at)
    return _env(etype, tenant, at, a, op(approver or author))
