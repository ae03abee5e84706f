"""Tickets' storage. Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from .domain import Cursor, NewTicket, Status


def summary_pb(row: Any) -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(
        id=str(row["id"]),
        subject=row["subject"],
        status=Status(row["status"]).to_pb(),
        inbox=common_pb2.InboxRef(id=str(row["inbox_id"]), name=row["inbox_name"]),
    )
    getattr(s, "from").CopyFrom(
        common_pb2.Address(name=row["from_name"], address=row["from_address"])
    )
    s.received_at.FromDatetime(row["received_at"])
    s.updated_at.FromDatetime(row["updated_at"])
    if row["assignee_id"] is not None:
        s.assignee.CopyFrom(
            common_pb2.OperatorRef(
                id=str(row["assignee_id"]), display_name=row["assignee_name"] or ""
            )
        )
    return s


class TicketsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def message_known(
        self, conn: asyncpg.Connection, tenant_id: str, message_id: str
    ) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM messages WHERE tenant_id = $1 AND id = $2",
                uuid.UUID(tenant_id),
                uuid.UUID(message_id),
            )
        )

    async def insert_ticket(
        self, conn: asyncpg.Connection, tenant_id: str, t: NewTicket, now: datetime
    ) -> Any:
        return await conn.fetchrow(
            "INSERT INTO tickets (id, tenant_id, subject, status, inbox_id, inbox_name, from_name, "
            "from_address, received_at, created_at, updated_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10) RETURNING *",
            uuid.UUID(t.id),
            uuid.UUID(tenant_id),
            t.subject,
            t.status.value,
            uuid.UUID(t.inbox.id),
            t.inbox.name,
            t.sender.name,
            t.sender.address,
            t.received_at,
            now,
        )

    async def insert_message(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        ticket_id: str,
        routed: events_pb2.MessageRouted,
        received_at: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO messages (tenant_id, id, ticket_id, channel, received_at, "
            "rfc822_message_id, summary) VALUES ($1,$2,$3,$4,$5,$6,$7)",
            uuid.UUID(tenant_id),
            uuid.UUID(routed.message_id),
            uuid.UUID(ticket_id),
            routed.channel,
            received_at,
            routed.mail.rfc822_message_id[:998],
            routed.mail.SerializeToString(),
        )

    async def list_tickets(
        self, tenant_id: str, status: Status | None, limit: int, after: Cursor | None
    ) -> list[Any]:
        args: list[Any] = [uuid.UUID(tenant_id), limit + 1]
        where = ["tenant_id = $1"]
        if status is None:
            where.append("status <> 'trash'")
        else:
            args.append(status.value)
            where.append(f"status = ${len(args)}")
        if after is not None:
            args.extend([after.received_at, after.id])
            where.append(f"(received_at, id) < (${len(args) - 1}, ${len(args)})")
        sql = (
            f"SELECT * FROM tickets WHERE {' AND '.join(where)} "
            "ORDER BY received_at DESC, id DESC LIMIT $2"
        )
        return list(await self._pool.fetch(sql, *args))

    async def get(self, tenant_id: str, ticket_id: uuid.UUID) -> tuple[Any, list[Any]] | None:
        tenant = uuid.UUID(tenant_id)
        row = await self._pool.fetchrow(
            "SELECT * FROM tickets WHERE tenant_id = $1 AND id = $2", tenant, ticket_id
        )
        if row is None:
            return None
        msgs = await self._pool.fetch(
            "SELECT * FROM messages WHERE tenant_id = $1 AND ticket_id = $2 "
            "ORDER BY received_at, id",
            tenant,
            ticket_id,
        )
        return row, list(msgs)
