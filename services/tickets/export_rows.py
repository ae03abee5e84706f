"""The rows of tickets' export streams (issue 19, DAT-1): tickets, and the messages filed
in them, received in a period, oldest first by (received_at, id), a batch at a time as
columns (many rows per message, so a CSV of tens of thousands of rows a second is
reachable). Read by the keyset index of migration 016."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime.export_rows import encode_cursor, from_micros

_US = "(extract(epoch FROM {0}) * 1000000)::bigint"

# (the batch's column, the SQL that reads it), in the order selected
_TICKET_COLUMNS = (
    ("id", "t.id::text"),
    ("number", "t.number"),
    ("subject", "t.subject"),
    ("status", "t.status"),
    ("priority", "t.priority"),
    ("inbox_id", "t.inbox_id::text"),
    ("inbox_name", "t.inbox_name"),
    ("from_name", "t.from_name"),
    ("from_address", "t.from_address"),
    ("contact_id", "coalesce(t.contact_id::text, '')"),
    ("assignee_id", "coalesce(t.assignee_id::text, '')"),
    ("assignee_name", "coalesce(t.assignee_name, '')"),
    ("labels", "array_to_string(t.labels, ', ')"),
    ("category", "t.category"),
    ("message_count", "t.message_count"),
    ("received_at_us", _US.format("t.received_at")),
    ("last_message_at_us", "coalesce(" + _US.format("t.last_message_at") + ", 0)"),
    ("closed_at_us", "coalesce(" + _US.format("t.closed_at") + ", 0)"),
    ("updated_at_us", _US.format("t.updated_at")),
)
# ... then the mail's summary and a phone memo's caller, decoded per row
_MESSAGE_COLUMNS = (
    ("id", "m.id::text"),
    ("ticket_id", "m.ticket_id::text"),
    ("ticket_number", "t.number"),
    ("inbox_id", "t.inbox_id::text"),
    ("inbox_name", "t.inbox_name"),
    ("channel", "m.channel"),
    ("received_at_us", _US.format("m.received_at")),
)
_MESSAGE_EXTRA = "m.summary, coalesce(m.memo_caller_name, ''), coalesce(m.memo_phone, '')"


@dataclass(frozen=True)
class Scope:
    """What a stream covers: a tenant's rows received in [start, end), of these inboxes
    (None: every inbox)."""

    tenant_id: str
    start: datetime
    end: datetime
    inboxes: list[uuid.UUID] | None

    def args(self) -> list[object]:
        return [uuid.UUID(self.tenant_id), self.start, self.end, self.inboxes]


def _where(alias: str, after: bool) -> str:
    sql = (
        f"{alias}.tenant_id = $1 AND {alias}.received_at >= $2 AND {alias}.received_at < $3 "
        "AND ($4::uuid[] IS NULL OR t.inbox_id = ANY($4::uuid[]))"
    )
    if after:
        sql += f" AND ({alias}.received_at, {alias}.id) > ($5, $6)"
    return sql


_TICKETS_FROM = "FROM tickets t"
_MESSAGES_FROM = "FROM messages m JOIN tickets t ON t.id = m.ticket_id"


def _fill(batch: tickets_pb2.TicketExportBatch | tickets_pb2.MessageExportBatch,
          columns: tuple[tuple[str, str], ...], rows: list[asyncpg.Record]) -> None:  # fmt: skip
    for i, (name, _) in enumerate(columns):
        getattr(batch, name).extend([r[i] for r in rows])


class ExportRows:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def count_tickets(self, scope: Scope) -> int:
        sql = f"SELECT count(*) {_TICKETS_FROM} WHERE {_where('t', False)}"
        return int(await self._pool.fetchval(sql, *scope.args()))

    async def count_messages(self, scope: Scope) -> int:
        sql = f"SELECT count(*) {_MESSAGES_FROM} WHERE {_where('m', False)}"
        return int(await self._pool.fetchval(sql, *scope.args()))

    async def _fetch(
        self,
        select: str,
        alias: str,
        scope: Scope,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        args = scope.args() + (list(after) if after is not None else [])
        sql = (
            f"{select} WHERE {_where(alias, after is not None)} "
            f"ORDER BY {alias}.received_at, {alias}.id LIMIT {int(limit)}"
        )
        return list(await self._pool.fetch(sql, *args))

    async def tickets(
        self, scope: Scope, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> tickets_pb2.TicketExportBatch:
        select = f"SELECT {', '.join(c for _, c in _TICKET_COLUMNS)} {_TICKETS_FROM}"
        rows = await self._fetch(select, "t", scope, after, limit)
        b = tickets_pb2.TicketExportBatch()
        if rows:
            _fill(b, _TICKET_COLUMNS, rows)
            b.next_cursor = encode_cursor(from_micros(rows[-1][15]), rows[-1][0])
        return b

    async def messages(
        self, scope: Scope, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> tickets_pb2.MessageExportBatch:
        columns = ", ".join(c for _, c in _MESSAGE_COLUMNS)
        select = f"SELECT {columns}, {_MESSAGE_EXTRA} {_MESSAGES_FROM}"
        rows = await self._fetch(select, "m", scope, after, limit)
        b = tickets_pb2.MessageExportBatch()
        if not rows:
            return b
        _fill(b, _MESSAGE_COLUMNS, rows)
        parse = events_pb2.MailSummary.FromString
        for r in rows:
            if r[7] is None:  # a phone memo: its caller
                s = events_pb2.MailSummary()
                getattr(s, "from").name, getattr(s, "from").address = r[8], r[9]
            else:
                s = parse(r[7])
            sender = getattr(s, "from")
            b.from_name.append(sender.name)
            b.from_address.append(sender.address)
            b.to.append(", ".join(a.address for a in s.to))
            b.cc.append(", ".join(a.address for a in s.cc))
            b.subject.append(s.subject)
            b.rfc822_message_id.append(s.rfc822_message_id)
            b.size_bytes.append(s.size_bytes)
            b.has_attachments.append(s.has_attachments)
        b.next_cursor = encode_cursor(from_micros(rows[-1][6]), rows[-1][0])
        return b
