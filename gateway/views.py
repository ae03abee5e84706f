"""JSON shapes the web clients see (docs: gateway/openapi.yaml)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, events_pb2

STATUS_NAMES = {
    common_pb2.TICKET_STATUS_OPEN: "open",
    common_pb2.TICKET_STATUS_PENDING: "pending",
    common_pb2.TICKET_STATUS_RESOLVED: "resolved",
    common_pb2.TICKET_STATUS_NO_ACTION: "no_action",
    common_pb2.TICKET_STATUS_TRASH: "trash",
}
STATUS_VALUES = {name: value for value, name in STATUS_NAMES.items()}


def iso(ts: Timestamp) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def address(a: common_pb2.Address) -> dict[str, str]:
    return {"name": a.name, "address": a.address}


def ticket(t: events_pb2.TicketSummary) -> dict[str, Any]:
    return {
        "id": t.id,
        "subject": t.subject,
        "status": STATUS_NAMES.get(t.status, "unknown"),
        "inbox": {"id": t.inbox.id, "name": t.inbox.name},
        "from": address(getattr(t, "from")),
        "received_at": iso(t.received_at),
        "updated_at": iso(t.updated_at),
        "assignee": (
            {"id": t.assignee.id, "name": t.assignee.display_name}
            if t.HasField("assignee")
            else None
        ),
    }


def mail(m: events_pb2.MailSummary) -> dict[str, Any]:
    return {
        "message_id": m.rfc822_message_id,
        "subject": m.subject,
        "from": address(getattr(m, "from")),
        "to": [address(a) for a in m.to],
        "cc": [address(a) for a in m.cc],
        "date": iso(m.date),
        "snippet": m.snippet,
        "size_bytes": m.size_bytes,
        "has_attachments": m.has_attachments,
        "auto_submitted": m.auto_submitted,
        "spam": m.spam,
        "blocked_by": m.blocked_by or None,
        "parse_problems": list(m.parse_problems),
    }


def event(env: events_pb2.EventEnvelope) -> dict[str, Any] | None:
    """What an event looks like on the live WebSocket; None for events not pushed."""
    base = {"type": env.type, "event_id": env.event_id, "occurred_at": iso(env.occurred_at)}
    kind = env.WhichOneof("payload")
    if kind == "ticket_created":
        return {**base, "ticket": ticket(env.ticket_created.ticket)}
    return None
