"""Tickets' bulk path (platform tooling: `make seed-scale`): tickets with their messages,
contacts and audit trail written with COPY, keeping what filing keeps one mail at a time
(services/tickets/filing.py, repo.py):

- numbers: 1, 2, 3 … per tenant in the order given (received order), continuing from
  `tenant_counters`, which is left at the next number;
- messages: the summary without its search text, the participants (sender, to, cc; for
  a mail we sent, whom we wrote to), the search text and grams of `search.document`
  (TKT-10: Japanese and English alike), the ticket's `message_count` and
  `last_message_at` counted from them;
- contacts: one per customer address (stored lower case), the ticket pointing at it;
- audit: the creation, and each later change given (status, assignee) by its operator;
- approvals: a ticket's ended approval requests (`ticket_approvals`, pending false).

Every message of a ticket comes in the same call as the ticket. The rows must be new
(COPY skips nothing: loading the same rows twice fails and writes nothing).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime.bulk import copy_records

from . import search


@dataclass(frozen=True)
class BulkContact:
    id: uuid.UUID
    name: str
    address: str
    created_at: datetime


@dataclass(frozen=True)
class BulkChange:
    at: datetime
    operator_id: uuid.UUID
    operator_name: str
    action: str  # "update", "assign"
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class BulkTicket:
    id: uuid.UUID
    subject: str
    status: str
    inbox_id: uuid.UUID
    inbox_name: str
    from_name: str
    from_address: str
    received_at: datetime
    updated_at: datetime
    contact_id: uuid.UUID | None
    assignee_id: uuid.UUID | None = None
    assignee_name: str | None = None
    labels: tuple[str, ...] = ()
    category: str = ""
    priority: str = "normal"
    closed_at: datetime | None = None
    language: str = ""
    changes: tuple[BulkChange, ...] = ()
    approvals: tuple[uuid.UUID, ...] = ()  # ended approval requests of its drafts


@dataclass(frozen=True)
class BulkMessage:
    id: uuid.UUID  # ingestion's id of the stored mail
    ticket_id: uuid.UUID
    channel: str
    received_at: datetime
    summary: events_pb2.MailSummary = field(compare=False)


_TICKET_COLUMNS = [
    "id",
    "tenant_id",
    "subject",
    "status",
    "inbox_id",
    "inbox_name",
    "from_name",
    "from_address",
    "received_at",
    "assignee_id",
    "assignee_name",
    "created_at",
    "updated_at",
    "contact_id",
    "labels",
    "category",
    "priority",
    "closed_at",
    "last_message_at",
    "message_count",
    "language",
    "waiting_since",
    "number",
]
_MESSAGE_COLUMNS = [
    "tenant_id",
    "id",
    "ticket_id",
    "channel",
    "received_at",
    "rfc822_message_id",
    "summary",
    "participants",
    "search_text",
    "search_grams",
]
_AUDIT_COLUMNS = [
    "id",
    "tenant_id",
    "ticket_id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "changes",
]


def message_row(tenant_id: uuid.UUID, m: BulkMessage) -> tuple[object, ...]:
    """A message as `TicketsRepo.insert_message` files it."""
    mail = events_pb2.MailSummary()
    mail.CopyFrom(m.summary)
    mail.ClearField("search_text")
    sender = getattr(mail, "from")
    who = (*mail.to, *mail.cc) if m.channel == "sent" else (sender, *mail.to, *mail.cc)
    people = sorted({a.address.lower() for a in who if a.address})
    text, grams = search.document(mail.subject, m.summary.search_text or mail.snippet)
    return (
        tenant_id,
        m.id,
        m.ticket_id,
        m.channel,
        m.received_at,
        mail.rfc822_message_id[:998],
        mail.SerializeToString(),
        people,
        text,
        grams,
    )


@dataclass(frozen=True)
class Prepared:
    """A batch's rows, made off the database (`prepare`) and written by `write`; the
    tickets' rows without their number (given at `write`, from the tenant's counter)."""

    tenant_id: uuid.UUID
    contacts: list[tuple[object, ...]]
    addresses: list[tuple[object, ...]]
    tickets: list[tuple[object, ...]]
    messages: list[tuple[object, ...]]
    audit: list[tuple[object, ...]]
    approvals: list[tuple[object, ...]]


def prepare(
    tenant_id: uuid.UUID,
    contacts: Sequence[BulkContact],
    tickets: Sequence[BulkTicket],
    messages: Sequence[BulkMessage],
    audit_ids: Sequence[uuid.UUID],
) -> Prepared:
    """The rows of one batch (CPU only: a thread may do it meanwhile). `audit_ids`: one
    id per ticket and per change (the creation's first), so ids stay the caller's."""
    counted = Counter(m.ticket_id for m in messages)
    last: dict[uuid.UUID, datetime] = {}
    for m in messages:
        if m.ticket_id not in last or m.received_at > last[m.ticket_id]:
            last[m.ticket_id] = m.received_at
    ids = iter(audit_ids)
    audit: list[tuple[object, ...]] = []
    for t in tickets:
        created = {"field": "status", "old": "", "new": "open"}
        audit.append(
            (
                next(ids),
                tenant_id,
                t.id,
                t.received_at,
                "system",
                "tickets",
                "tickets",
                "create",
                [created],
            )
        )
        for c in t.changes:
            change = {"field": c.field, "old": c.old, "new": c.new}
            audit.append(
                (
                    next(ids),
                    tenant_id,
                    t.id,
                    c.at,
                    "operator",
                    str(c.operator_id),
                    c.operator_name,
                    c.action,
                    [change],
                )
            )
    return Prepared(
        tenant_id=tenant_id,
        contacts=[(c.id, tenant_id, c.name, c.created_at, c.created_at) for c in contacts],
        addresses=[(tenant_id, c.address.lower(), c.id) for c in contacts],
        tickets=[
            (
                t.id,
                tenant_id,
                t.subject,
                t.status,
                t.inbox_id,
                t.inbox_name,
                t.from_name,
                t.from_address,
                t.received_at,
                t.assignee_id,
                t.assignee_name,
                t.received_at,
                t.updated_at,
                t.contact_id,
                list(t.labels),
                t.category,
                t.priority,
                t.closed_at,
                last.get(t.id, t.received_at),
                counted[t.id],
                t.language,
                t.received_at,
            )
            for t in tickets
        ],
        messages=[message_row(tenant_id, m) for m in messages],
        audit=audit,
        approvals=[(tenant_id, r, t.id, False) for t in tickets for r in t.approvals],
    )


async def write(conn: asyncpg.Connection, p: Prepared) -> None:
    """Write a prepared batch in one transaction, numbering its tickets in order from the
    tenant's counter and moving the counter past them. `conn` is one of the service's
    pool (runtime/db.py: jsonb taken as Python values)."""
    async with conn.transaction():
        first = int(
            await conn.fetchval(
                "INSERT INTO tenant_counters (tenant_id, next_number) VALUES ($1, 1) "
                "ON CONFLICT (tenant_id) DO UPDATE "
                "SET next_number = tenant_counters.next_number RETURNING next_number",
                p.tenant_id,
            )
        )
        await conn.execute(
            "UPDATE tenant_counters SET next_number = $2 WHERE tenant_id = $1",
            p.tenant_id,
            first + len(p.tickets),
        )
        await copy_records(
            conn, "contacts", ["id", "tenant_id", "name", "created_at", "updated_at"], p.contacts
        )
        await copy_records(
            conn, "contact_addresses", ["tenant_id", "address", "contact_id"], p.addresses
        )
        await copy_records(
            conn,
            "tickets",
            _TICKET_COLUMNS,
            [(*row, first + n) for n, row in enumerate(p.tickets)],
        )
        await copy_records(conn, "messages", _MESSAGE_COLUMNS, p.messages)
        await copy_records(conn, "audit", _AUDIT_COLUMNS, p.audit, json_columns=["changes"])
        await copy_records(
            conn,
            "ticket_approvals",
            ["tenant_id", "request_id", "ticket_id", "pending"],
            p.approvals,
        )


async def bulk_load(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    contacts: Sequence[BulkContact],
    tickets: Sequence[BulkTicket],
    messages: Sequence[BulkMessage],
    audit_ids: Sequence[uuid.UUID],
) -> None:
    """`prepare` and `write` one batch."""
    await write(conn, prepare(tenant_id, contacts, tickets, messages, audit_ids))
