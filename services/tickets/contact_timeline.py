"""A contact's timeline (TKT-8): every ticket of the contact and every message and
comment of those tickets, newest first, keyset-paged. Storage only; scoped by tenant (and
by the caller's inboxes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from switchboard.v1 import tickets_pb2

from . import channels
from .contact_rules import EntryKind, TimelineCursor
from .convert import comment_pb, summary_pb
from .records import MESSAGE_COLUMNS, message_of, ticket_of


@dataclass(frozen=True)
class TimelinePage:
    entries: list[tickets_pb2.TimelineEntry]
    next_cursor: TimelineCursor | None


class ContactTimelineRepo:
    """The timeline half of ContactsRepo (contacts.py)."""

    _pool: asyncpg.Pool

    async def timeline(
        self,
        tenant_id: str,
        contact_id: uuid.UUID,
        limit: int,
        after: TimelineCursor | None,
        visible: Sequence[str] | None = None,
    ) -> TimelinePage:
        """Every ticket of the contact (opened at its received_at), and every message and
        comment of those tickets, newest first, keyset-paged on (at, kind, id).

        Each of the three kinds is read through its index newest first and cut at `limit + 1`
        below the cursor — messages and comments per ticket (LATERAL), so a page costs one
        short index range per ticket of the contact, however many years of mail it has."""
        tenant = uuid.UUID(tenant_id)
        inboxes = None if visible is None else [uuid.UUID(i) for i in visible]
        args: list[Any] = [tenant, contact_id, limit + 1, inboxes]

        def below(kind: EntryKind, at: str, ident: str) -> str:
            if after is None:
                return "TRUE"
            if kind < after.kind:
                return f"{at} <= $5"
            if kind > after.kind:
                return f"{at} < $5"
            return f"({at}, {ident}) < ($5, $6)"

        if after is not None:
            args.extend([after.at, after.id])
        k_t, k_m, k_c = EntryKind.TICKET_OPENED, EntryKind.MESSAGE, EntryKind.COMMENT
        sql = f"""
            WITH ct AS MATERIALIZED (
                SELECT id, received_at FROM tickets WHERE tenant_id = $1 AND contact_id = $2
                   AND ($4::uuid[] IS NULL OR inbox_id = ANY($4::uuid[]))
            ), opened AS MATERIALIZED (
                SELECT {int(k_t)} AS kind, ct.id, ct.received_at AS at, ct.id AS ticket_id
                  FROM ct WHERE {below(k_t, "ct.received_at", "ct.id")}
                 ORDER BY ct.received_at DESC, ct.id DESC LIMIT $3
            ), floor AS (
                -- With a full page of openings, nothing older than the last one can be on
                -- the page: messages and comments are read down to it only.
                SELECT COALESCE(
                    (SELECT at FROM opened ORDER BY at DESC, id DESC OFFSET $3 - 1 LIMIT 1),
                    '-infinity'::timestamptz) AS at
            )
            SELECT kind, id, at, ticket_id FROM (
                (SELECT * FROM opened)
                UNION ALL
                (SELECT {int(k_m)}, m.id, m.received_at, m.ticket_id FROM ct
                   CROSS JOIN LATERAL (
                       SELECT id, received_at, ticket_id FROM messages
                        WHERE tenant_id = $1 AND ticket_id = ct.id
                          AND received_at >= (SELECT at FROM floor)
                          AND {below(k_m, "received_at", "id")}
                        ORDER BY received_at DESC, id DESC LIMIT $3) m
                   ORDER BY m.received_at DESC, m.id DESC LIMIT $3)
                UNION ALL
                (SELECT {int(k_c)}, cm.id, cm.created_at, cm.ticket_id FROM ct
                   CROSS JOIN LATERAL (
                       SELECT id, created_at, ticket_id FROM comments
                        WHERE tenant_id = $1 AND ticket_id = ct.id
                          AND created_at >= (SELECT at FROM floor)
                          AND {below(k_c, "created_at", "id")}
                        ORDER BY created_at DESC, id DESC LIMIT $3) cm
                   ORDER BY cm.created_at DESC, cm.id DESC LIMIT $3)
            ) e
            ORDER BY at DESC, kind DESC, id DESC
            LIMIT $3
        """
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            found = await conn.fetch(sql, *args)
            page, more = found[:limit], len(found) > limit
            by_kind: dict[int, list[uuid.UUID]] = {int(k): [] for k in EntryKind}
            for r in page:
                by_kind[r["kind"]].append(r["id"])
            tickets = {
                r["id"]: ticket_of(r)
                for r in await conn.fetch(
                    "SELECT * FROM tickets WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                    tenant,
                    by_kind[int(k_t)],
                )
            }
            messages = {
                r["id"]: message_of(r)
                for r in await conn.fetch(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages "
                    "WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                    tenant,
                    by_kind[int(k_m)],
                )
            }
            comments = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT * FROM comments WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                    tenant,
                    by_kind[int(k_c)],
                )
            }
        entries = []
        for r in page:
            entry = tickets_pb2.TimelineEntry(ticket_id=str(r["ticket_id"]))
            entry.at.FromDatetime(r["at"])
            kind = EntryKind(r["kind"])
            if kind is EntryKind.TICKET_OPENED:
                entry.ticket_opened.CopyFrom(summary_pb(tickets[r["id"]]))
            elif kind is EntryKind.MESSAGE:
                entry.message.CopyFrom(channels.message_pb(messages[r["id"]]))
            else:
                entry.comment.CopyFrom(comment_pb(comments[r["id"]]))
            entries.append(entry)
        next_cursor = None
        if more and page:
            last = page[-1]
            next_cursor = TimelineCursor(last["at"], EntryKind(last["kind"]), last["id"])
        return TimelinePage(entries, next_cursor)
