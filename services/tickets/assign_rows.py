"""Tickets' storage for the assigner's batches (AssignTickets, issue 18): many tickets
locked, given their assignee and audited in a few statements instead of a few per ticket.
Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from switchboard.v1 import common_pb2

from .domain import Change
from .records import Ticket, ticket_of
from .repo import ACTOR_KIND, AUDIT_INSERT


@dataclass(frozen=True, slots=True)
class NewAssignee:
    ticket_id: uuid.UUID
    assignee_id: uuid.UUID | None
    assignee_name: str | None
    change: Change  # for the audit trail
    comment: str
    audit_id: uuid.UUID


async def locked_rows(
    conn: asyncpg.Connection, tenant_id: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Ticket]:
    """The tenant's tickets among `ids`, locked until the transaction ends (in the order of
    their ids, so that two batches never wait on each other in a circle)."""
    rows = await conn.fetch(
        "SELECT * FROM tickets WHERE tenant_id = $1 AND id = ANY($2::uuid[])"
        " ORDER BY id FOR UPDATE",
        uuid.UUID(tenant_id),
        list(ids),
    )
    return {r["id"]: ticket_of(r) for r in rows}


async def set_assignees(
    conn: asyncpg.Connection,
    tenant_id: str,
    new: Sequence[NewAssignee],
    actor: common_pb2.Actor,
    now: datetime,
) -> dict[uuid.UUID, Ticket]:
    """Give each ticket its new assignee (one UPDATE) and audit each change (one pipelined
    INSERT); the tickets as they are now, by id."""
    if not new:
        return {}
    tenant = uuid.UUID(tenant_id)
    rows = await conn.fetch(
        "UPDATE tickets t SET assignee_id = v.assignee_id, assignee_name = v.assignee_name,"
        " updated_at = $2"
        " FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS v(id, assignee_id, assignee_name)"
        " WHERE t.tenant_id = $1 AND t.id = v.id RETURNING t.*",
        tenant,
        now,
        [n.ticket_id for n in new],
        [n.assignee_id for n in new],
        [n.assignee_name for n in new],
    )
    kind = ACTOR_KIND.get(actor.kind, "system")
    await conn.executemany(
        AUDIT_INSERT,
        [
            (
                n.audit_id,
                tenant,
                n.ticket_id,
                now,
                kind,
                actor.id,
                actor.display,
                "update",
                [n.change.to_json()],
                n.comment,
            )
            for n in new
        ],
    )
    return {r["id"]: ticket_of(r) for r in rows}
