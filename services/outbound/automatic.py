"""A mail outbound writes itself (an automatic reply, a form confirmation, a satisfaction
survey): the outbox item, queued with its `send.changed` in the caller's transaction, then
sent by the dispatcher like any other (exactly once across replicas and crashes)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime import events

from .api import Deps
from .changes import send_changed
from .records import Send
from .repo import NewSend

ACTOR = events.system_actor("outbound")


def automatic_send(
    d: Deps,
    *,
    tenant: str,
    kind: str,
    ticket_id: str,
    inbox_id: str,
    message_id: str,
    subject: str,
    sender: str,
    recipient: str,
    raw: bytes,
    signed: bool,
    now: datetime,
) -> NewSend:
    return NewSend(
        id=d.ids.new(),
        tenant_id=uuid.UUID(tenant),
        kind=kind,
        draft_id=None,
        draft_revision=0,
        ticket_id=uuid.UUID(ticket_id) if ticket_id else None,  # none: filed as a new mail
        inbox_id=uuid.UUID(inbox_id),
        operator_id=None,
        operator_name="",
        operator_md=(),
        fence=0,
        lock_held=False,
        status_after=0,
        message_id=message_id,
        subject=subject,
        envelope_from=sender,
        recipients=[recipient],
        raw=raw,
        dkim_signed=signed,
        send_at=now,
        max_attempts=d.max_attempts,
        route_name="",
    )


async def queue(
    d: Deps,
    conn: asyncpg.Connection,
    new: NewSend,
    now: datetime,
    *,
    cause: events_pb2.EventEnvelope | None = None,
) -> Send:
    """Insert `new` as scheduled now, with its `send.changed` (action `queued`)."""
    row = await d.repo.insert_send(conn, new, now, None)
    await d.repo.add_event(
        conn,
        send_changed(
            d.ids,
            row,
            action="queued",
            state="scheduled",
            previous="",
            at=now,
            actor=ACTOR,
            cause=cause,
        ),
    )
    return row
