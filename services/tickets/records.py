"""What tickets' storage gives back: each database row converted once, at the repository,
into a frozen dataclass (one constructor call per row)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Ticket:
    """A row of `tickets`."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    subject: str
    status: str
    inbox_id: uuid.UUID
    inbox_name: str
    from_name: str
    from_address: str
    received_at: datetime
    assignee_id: uuid.UUID | None
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime
    number: int
    contact_id: uuid.UUID | None
    labels: list[str]
    category: str
    priority: str
    flags: list[str]
    status_before_trash: str | None
    closed_at: datetime | None
    merged_into: uuid.UUID | None
    last_message_at: datetime | None
    message_count: int
    draft_count: int
    awaiting_approval: bool
    lock_fence: int | None
    lock_holder_id: uuid.UUID | None
    lock_holder_name: str | None
    lock_acquired_at: datetime | None
    lock_expires_at: datetime | None
    sla_due_at: datetime | None  # routing's soonest SLA due time (issue 18)
    pending_until: datetime | None = None  # a pending ticket's date (issue 18: rules)
    # issue 18 (facts): detected language, skills rules require, the contact's customer
    # value, and when it last started waiting (the priority score counts from there)
    language: str = ""
    required_skills: tuple[tuple[str, int], ...] = ()
    customer_value: int | None = None
    waiting_since: datetime | None = None


def ticket_of(r: asyncpg.Record) -> Ticket:
    return Ticket(
        r["id"],
        r["tenant_id"],
        r["subject"],
        r["status"],
        r["inbox_id"],
        r["inbox_name"],
        r["from_name"],
        r["from_address"],
        r["received_at"],
        r["assignee_id"],
        r["assignee_name"],
        r["created_at"],
        r["updated_at"],
        r["number"],
        r["contact_id"],
        r["labels"],
        r["category"],
        r["priority"],
        r["flags"],
        r["status_before_trash"],
        r["closed_at"],
        r["merged_into"],
        r["last_message_at"],
        r["message_count"],
        r["draft_count"],
        r["awaiting_approval"],
        r["lock_fence"],
        r["lock_holder_id"],
        r["lock_holder_name"],
        r["lock_acquired_at"],
        r["lock_expires_at"],
        r["sla_due_at"],
        r["pending_until"],
        r["language"],
        tuple((str(s["name"]), int(s["min_level"])) for s in r["required_skills"]),
        r["customer_value"],
        r["waiting_since"],
    )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message filed in a ticket: a mail's summary, or a phone memo."""

    id: uuid.UUID
    ticket_id: uuid.UUID
    channel: str
    received_at: datetime
    summary: bytes | None  # switchboard.v1.MailSummary
    memo_body: str | None
    memo_direction: str | None
    memo_caller_name: str | None
    memo_phone: str | None
    memo_duration_s: int | None
    author_id: uuid.UUID | None
    author_name: str | None
    stranger: bool  # ADR 0009: the sender was not a participant when it was filed


MESSAGE_COLUMNS = (
    "id, ticket_id, channel, received_at, summary, memo_body, memo_direction, "
    "memo_caller_name, memo_phone, memo_duration_s, author_id, author_name, stranger"
)


def message_of(r: asyncpg.Record) -> StoredMessage:
    summary = r["summary"]
    return StoredMessage(
        r["id"],
        r["ticket_id"],
        r["channel"],
        r["received_at"],
        None if summary is None else bytes(summary),
        r["memo_body"],
        r["memo_direction"],
        r["memo_caller_name"],
        r["memo_phone"],
        r["memo_duration_s"],
        r["author_id"],
        r["author_name"],
        r["stranger"],
    )


@dataclass(frozen=True, slots=True)
class InboxSettings:
    inbox_id: uuid.UUID
    thresholds: list[dict[str, Any]]  # {"after_minutes": int, "color": str}
    new_ticket_after_days: int


def inbox_settings_of(r: asyncpg.Record) -> InboxSettings:
    return InboxSettings(r["inbox_id"], r["thresholds"], r["new_ticket_after_days"])
