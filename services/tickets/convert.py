"""Tickets' rows as protobuf messages (the API's and the events' shapes): a ticket's
summary and its reply lock, a comment, an audit entry. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import priority_score

from .domain import Priority, Status
from .records import Ticket

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _stamp(into: Timestamp, at: datetime) -> None:
    """`into.FromDatetime(at)` for an aware datetime, without its struct_time round trip
    (a fifth of the cost; every row of the ticket list has five)."""
    if at.tzinfo is None:
        into.FromDatetime(at)
        return
    delta = at - _EPOCH
    into.seconds = delta.days * 86_400 + delta.seconds
    into.nanos = delta.microseconds * 1000


def lock_pb(row: Ticket) -> events_pb2.ReplyLock | None:
    """The reply lock a ticket row records, or None when nobody holds one."""
    if row.lock_fence is None or row.lock_expires_at is None or row.lock_acquired_at is None:
        return None
    lock = events_pb2.ReplyLock(
        holder=common_pb2.OperatorRef(
            id=str(row.lock_holder_id), display_name=row.lock_holder_name or ""
        ),
        fence=row.lock_fence,
    )
    _stamp(lock.expires_at, row.lock_expires_at)
    _stamp(lock.acquired_at, row.lock_acquired_at)
    return lock


def summary_pb(row: Ticket) -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(
        id=str(row.id),
        subject=row.subject,
        status=Status(row.status).to_pb(),
        inbox=common_pb2.InboxRef(id=str(row.inbox_id), name=row.inbox_name),
        number=row.number,
        contact_id=str(row.contact_id or ""),
        labels=list(row.labels),
        category=row.category,
        priority=Priority(row.priority).to_pb(),
        flags=list(row.flags),
        merged_into=str(row.merged_into or ""),
        message_count=row.message_count,
        awaiting_approval=row.awaiting_approval,
        editing=row.lock_fence is not None or row.draft_count > 0,
    )
    getattr(s, "from").CopyFrom(common_pb2.Address(name=row.from_name, address=row.from_address))
    _stamp(s.received_at, row.received_at)
    _stamp(s.updated_at, row.updated_at)
    _stamp(s.last_message_at, row.last_message_at or row.received_at)
    if row.assignee_id is not None:
        s.assignee.CopyFrom(
            common_pb2.OperatorRef(id=str(row.assignee_id), display_name=row.assignee_name or "")
        )
    lock = lock_pb(row)
    if lock is not None:
        s.lock.CopyFrom(lock)
    if row.sla_due_at is not None:
        _stamp(s.sla_due_at, row.sla_due_at)
    if row.pending_until is not None:
        _stamp(s.pending_until, row.pending_until)
    s.language = row.language
    for name, level in row.required_skills:
        s.required_skills.add(name=name, min_level=level)
    if row.customer_value is not None:
        s.customer_value = row.customer_value
    since = row.waiting_since or row.created_at
    _stamp(
        s.priority_score_since,
        priority_score.origin(since, s.priority, row.customer_value),
    )
    return s


def comment_pb(row: asyncpg.Record) -> tickets_pb2.Comment:
    out = tickets_pb2.Comment(
        id=str(row["id"]),
        author=common_pb2.OperatorRef(id=str(row["author_id"]), display_name=row["author_name"]),
        body=row["body"],
        mentions=[
            common_pb2.OperatorRef(id=str(m.get("id", "")), display_name=m.get("display_name", ""))
            for m in (row["mentions"] or [])
            if isinstance(m, dict)
        ],
    )
    out.created_at.FromDatetime(row["created_at"])
    return out


_ACTOR_PB = {
    "operator": common_pb2.Actor.KIND_OPERATOR,
    "customer": common_pb2.Actor.KIND_CUSTOMER,
}


def audit_pb(r: asyncpg.Record) -> tickets_pb2.AuditEntry:
    e = tickets_pb2.AuditEntry(
        id=str(r["id"]),
        action=r["action"],
        comment=r["comment"],
        actor=common_pb2.Actor(
            kind=_ACTOR_PB.get(r["actor_kind"], common_pb2.Actor.KIND_SYSTEM),
            id=r["actor_id"],
            display=r["actor_name"],
        ),
        changes=[
            events_pb2.FieldChange(field=c["field"], old_value=c["old"], new_value=c["new"])
            for c in r["changes"]
        ],
    )
    e.at.FromDatetime(r["at"])
    return e
