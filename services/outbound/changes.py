"""The sb.outbound.send.changed envelope of an outbox item's new state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.ids import IdGenerator

from .records import Send

CHANNEL_ROUTE = "channel:"  # a channel reply's route: channel:<kind> (channel_sends.py)


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def send_changed(
    ids: IdGenerator,
    row: Send,
    *,
    action: str,
    state: str,
    previous: str,
    at: datetime,
    actor: common_pb2.Actor,
    code: int = 0,
    message: str = "",
    attempts: int | None = None,
    send_at: datetime | None = None,
    cause: events_pb2.EventEnvelope | None = None,
    correlation_id: str = "",
    draft_kind: str = "",
) -> events_pb2.EventEnvelope:
    payload = events_pb2.SendChanged(
        send_id=_s(row.id),
        kind=row.kind,
        ticket_id=_s(row.ticket_id),
        inbox_id=_s(row.inbox_id),
        state=state,
        previous_state=previous,
        message_id=row.message_id,
        attempts=row.attempts if attempts is None else attempts,
        smtp_code=code,
        smtp_message=message,
        draft_id=_s(row.draft_id),
        action=action,
        draft_kind=draft_kind,
        channel=row.route_name.removeprefix(CHANNEL_ROUTE)
        if row.route_name.startswith(CHANNEL_ROUTE)
        else "",
    )
    payload.send_at.FromDatetime(send_at or row.send_at)
    if send_at is not None and send_at != row.send_at:
        payload.previous_send_at.FromDatetime(row.send_at)
    if cause is not None:
        return events.caused_by(
            events.SEND_CHANGED,
            cause,
            event_id=ids.new_str(),
            occurred_at=at,
            payload=payload,
            actor=actor,
        )
    return events.envelope(
        events.SEND_CHANGED,
        event_id=ids.new_str(),
        tenant_id=str(row.tenant_id),
        occurred_at=at,
        payload=payload,
        actor=actor,
        correlation_id=correlation_id,
    )
