"""Tickets' storage. Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import asyncpg
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from . import search
from .convert import audit_pb, comment_pb
from .domain import Change, Cursor, NewTicket, PhoneMemoInput
from .query import TERM_PROBE_CAP, TicketQuery, build_list_query, build_term_probe
from .records import (
    MESSAGE_COLUMNS,
    InboxSettings,
    StoredMessage,
    Ticket,
    inbox_settings_of,
    message_of,
    ticket_of,
)

AUDIT_INSERT = (
    "INSERT INTO audit (id, tenant_id, ticket_id, at, actor_kind, actor_id, actor_name, "
    "action, changes, comment) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
)
ACTOR_KIND = {
    common_pb2.Actor.KIND_OPERATOR: "operator",
    common_pb2.Actor.KIND_SYSTEM: "system",
    common_pb2.Actor.KIND_CUSTOMER: "customer",
}


# work_mem of the keyword probe's transaction (list_tickets)
PROBE_WORK_MEM = "16MB"


class TicketsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def row(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant_id: str,
        ticket_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> Ticket | None:
        """One ticket of the tenant (None when missing or another tenant's)."""
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT * FROM tickets WHERE tenant_id = $1 AND id = $2{lock}",
            uuid.UUID(tenant_id),
            ticket_id,
        )
        return None if row is None else ticket_of(row)

    async def add_audit(
        self,
        conn: asyncpg.Connection,
        *,
        id: uuid.UUID,
        tenant_id: str,
        ticket_id: uuid.UUID,
        at: datetime,
        actor: common_pb2.Actor,
        action: str,
        changes: Sequence[Change] = (),
        comment: str = "",
    ) -> None:
        """TKT-13: every change stamped with time, who, what changed and the note."""
        await conn.execute(
            AUDIT_INSERT,
            id,
            uuid.UUID(tenant_id),
            ticket_id,
            at,
            ACTOR_KIND.get(actor.kind, "system"),
            actor.id,
            actor.display,
            action,
            [c.to_json() for c in changes],
            comment,
        )

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

    async def next_number(self, conn: asyncpg.Connection, tenant_id: str) -> int:
        """The tenant's next ticket number (the counter row is locked until commit)."""
        return int(
            await conn.fetchval(
                "INSERT INTO tenant_counters (tenant_id, next_number) VALUES ($1, 2) "
                "ON CONFLICT (tenant_id) DO UPDATE "
                "SET next_number = tenant_counters.next_number + 1 RETURNING next_number - 1",
                uuid.UUID(tenant_id),
            )
        )

    async def insert_ticket(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        t: NewTicket,
        now: datetime,
        *,
        number: int,
        contact_id: uuid.UUID | None,
        message_count: int = 0,
        language: str = "",
    ) -> Ticket:
        """The new ticket. `message_count` 1: its first message is filed with
        `insert_message(..., count=False)` in the same transaction. It waits from now and
        keeps its contact's customer value (the priority score, issue 18)."""
        row = await conn.fetchrow(
            "INSERT INTO tickets (id, tenant_id, subject, status, inbox_id, inbox_name, from_name, "
            "from_address, received_at, created_at, updated_at, number, contact_id, "
            "last_message_at, message_count, language, waiting_since, customer_value) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10,$11,$12,$9,$13,$14,$10,"
            "(SELECT c.customer_value FROM contacts c WHERE c.tenant_id = $2 AND c.id = $12))"
            " RETURNING *",
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
            number,
            contact_id,
            message_count,
            language,
        )
        return ticket_of(row)

    async def insert_message(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        ticket_id: str,
        routed: events_pb2.MessageRouted,
        received_at: datetime,
        *,
        count: bool = True,
        stranger: bool = False,
    ) -> None:
        """File a mail in a ticket: its summary (without the search text, which goes to
        the index), its participants and its search grams; and count it on the ticket
        unless `count` is False (a new ticket created already counting it). `stranger`:
        its sender is not a participant (ADR 0009)."""
        mail = events_pb2.MailSummary()
        mail.CopyFrom(routed.mail)
        mail.ClearField("search_text")
        sender = getattr(mail, "from")
        # a mail we sent: whom we wrote to take part, our own From address is nobody
        who = (*mail.to, *mail.cc) if routed.channel == "sent" else (sender, *mail.to, *mail.cc)
        people = {a.address.lower() for a in who if a.address}
        text, grams = search.document(mail.subject, routed.mail.search_text or mail.snippet)
        await conn.execute(
            "INSERT INTO messages (tenant_id, id, ticket_id, channel, received_at, "
            "rfc822_message_id, summary, participants, search_text, search_grams, stranger) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            uuid.UUID(tenant_id),
            uuid.UUID(routed.message_id),
            uuid.UUID(ticket_id),
            routed.channel,
            received_at,
            mail.rfc822_message_id[:998],
            mail.SerializeToString(),
            sorted(people),
            text,
            grams,
            stranger,
        )
        if count:
            await self.count_message(conn, tenant_id, uuid.UUID(ticket_id), received_at)

    async def insert_memo(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        ticket_id: uuid.UUID,
        memo_id: uuid.UUID,
        memo: PhoneMemoInput,
        author: common_pb2.OperatorRef,
    ) -> StoredMessage:
        text, grams = search.document(memo.caller_name, memo.body)
        row = await conn.fetchrow(
            "INSERT INTO messages (tenant_id, id, ticket_id, channel, received_at, memo_body, "
            "memo_direction, memo_caller_name, memo_phone, memo_duration_s, author_id, "
            "author_name, search_text, search_grams) "
            "VALUES ($1,$2,$3,'phone',$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) "
            f"RETURNING {MESSAGE_COLUMNS}",
            uuid.UUID(tenant_id),
            memo_id,
            ticket_id,
            memo.occurred_at,
            memo.body,
            memo.direction,
            memo.caller_name,
            memo.phone,
            memo.duration_s,
            uuid.UUID(author.id),
            author.display_name,
            text,
            grams,
        )
        await self.count_message(conn, tenant_id, ticket_id, memo.occurred_at)
        return message_of(row)

    async def count_message(
        self, conn: asyncpg.Connection, tenant_id: str, ticket_id: uuid.UUID, at: datetime
    ) -> None:
        await conn.execute(
            "UPDATE tickets SET message_count = message_count + 1, "
            "last_message_at = greatest(last_message_at, $3) WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            ticket_id,
            at,
        )

    # -- threading lookups -----------------------------------------------------------

    async def final_ticket(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, ticket_id: uuid.UUID
    ) -> Ticket | None:
        """The ticket, or the one it was merged into (followed to the end); None if missing."""
        for _ in range(20):
            row = await self.row(conn, tenant_id, ticket_id)
            if row is None or row.merged_into is None:
                return row
            ticket_id = row.merged_into
        return None

    async def tickets_by_reference(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant_id: str,
        refs: list[str],
        limit: int = 10,
    ) -> list[uuid.UUID]:
        """The tickets of filed mails whose Message-ID is one of `refs`, the ticket of the
        most recent such mail first (at most `limit`)."""
        if not refs:
            return []
        rows = await conn.fetch(
            "SELECT ticket_id FROM messages WHERE tenant_id = $1 AND rfc822_message_id = ANY($2) "
            "AND rfc822_message_id <> '' GROUP BY ticket_id ORDER BY max(received_at) DESC "
            "LIMIT $3",
            uuid.UUID(tenant_id),
            refs,
            limit,
        )
        return [cast(uuid.UUID, r["ticket_id"]) for r in rows]

    async def ticket_by_number(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, number: int
    ) -> uuid.UUID | None:
        found = await conn.fetchval(
            "SELECT id FROM tickets WHERE tenant_id = $1 AND number = $2",
            uuid.UUID(tenant_id),
            number,
        )
        return cast(uuid.UUID | None, found)

    async def is_participant(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant_id: str,
        ticket_id: uuid.UUID,
        address: str,
    ) -> bool:
        """Whether `address` takes part in the ticket (thread_rules, ADR 0009): its
        customer (the ticket's sender, an address of its contact), or a sender, To or Cc
        address of one of its mails that is not a stranger's (for the mail we sent, whom
        we wrote to)."""
        if not address:
            return False
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2 "
                "AND lower(t.from_address) = $3) "
                "OR EXISTS (SELECT 1 FROM messages WHERE tenant_id = $1 AND ticket_id = $2 "
                "AND NOT stranger AND participants @> ARRAY[$3]) "
                "OR EXISTS (SELECT 1 FROM tickets t JOIN contact_addresses ca "
                "ON ca.tenant_id = t.tenant_id AND ca.contact_id = t.contact_id "
                "WHERE t.tenant_id = $1 AND t.id = $2 AND ca.address = $3)",
                uuid.UUID(tenant_id),
                ticket_id,
                address.lower(),
            )
        )

    # -- changes -----------------------------------------------------------------------

    async def update_fields(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        ticket_id: uuid.UUID,
        values: dict[str, Any],
        now: datetime,
    ) -> Ticket:
        """Set these columns (names from the code, never from a request) and updated_at.
        A ticket leaving pending loses its pending-until date, whoever changes it; a ticket
        that becomes open again starts waiting now (its priority score)."""
        if values.get("status", "pending") != "pending" and "pending_until" not in values:
            values = {**values, "pending_until": None}
        cols = [*values, "updated_at"]
        args = [*values.values(), now]
        sets = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(cols))
        if "status" in values:
            at = cols.index("status") + 3
            sets += (
                f", waiting_since = CASE WHEN status <> 'open' AND ${at} = 'open'"
                f" THEN ${len(cols) + 2} ELSE waiting_since END"
            )
        row = await conn.fetchrow(
            f"UPDATE tickets SET {sets} WHERE tenant_id = $1 AND id = $2 RETURNING *",
            uuid.UUID(tenant_id),
            ticket_id,
            *args,
        )
        return ticket_of(row)

    async def move_messages(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        source: uuid.UUID,
        target: uuid.UUID,
        message_id: uuid.UUID | None = None,
    ) -> int:
        """Move messages (all, or one) and — for a whole move — comments from one ticket to
        another, and recount both."""
        tenant = uuid.UUID(tenant_id)
        if message_id is None:
            moved = await conn.execute(
                "UPDATE messages SET ticket_id = $3 WHERE tenant_id = $1 AND ticket_id = $2",
                tenant,
                source,
                target,
            )
            await conn.execute(
                "UPDATE comments SET ticket_id = $3 WHERE tenant_id = $1 AND ticket_id = $2",
                tenant,
                source,
                target,
            )
        else:
            # split out: the message starts its own ticket, its sender the customer
            moved = await conn.execute(
                "UPDATE messages SET ticket_id = $3, stranger = false "
                "WHERE tenant_id = $1 AND ticket_id = $2 AND id = $4",
                tenant,
                source,
                target,
                message_id,
            )
        for t in (source, target):
            await conn.execute(
                "UPDATE tickets SET (message_count, last_message_at) = (SELECT count(*), "
                "coalesce(max(received_at), tickets.received_at) FROM messages m "
                "WHERE m.tenant_id = $1 AND m.ticket_id = $2) WHERE tenant_id = $1 AND id = $2",
                tenant,
                t,
            )
        return int(moved.split()[-1])

    async def message_row(
        self, conn: asyncpg.Connection, tenant_id: str, message_id: uuid.UUID
    ) -> StoredMessage | None:
        row = await conn.fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            message_id,
        )
        return None if row is None else message_of(row)

    async def message_place(
        self, tenant_id: str, message_id: uuid.UUID
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """The ticket a message is filed in, and that ticket's inbox."""
        row = await self._pool.fetchrow(
            "SELECT t.id, t.inbox_id FROM messages m JOIN tickets t ON t.tenant_id = m.tenant_id "
            "AND t.id = m.ticket_id WHERE m.tenant_id = $1 AND m.id = $2",
            uuid.UUID(tenant_id),
            message_id,
        )
        return None if row is None else (row["id"], row["inbox_id"])

    async def insert_comment(
        self,
        conn: asyncpg.Connection,
        *,
        id: uuid.UUID,
        tenant_id: str,
        ticket_id: uuid.UUID,
        author: common_pb2.OperatorRef,
        body: str,
        mentions: list[common_pb2.OperatorRef],
        at: datetime,
    ) -> tickets_pb2.Comment:
        row = await conn.fetchrow(
            "INSERT INTO comments (id, tenant_id, ticket_id, author_id, author_name, body, "
            "mentions, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *",
            id,
            uuid.UUID(tenant_id),
            ticket_id,
            uuid.UUID(author.id),
            author.display_name,
            body,
            [{"id": m.id, "display_name": m.display_name} for m in mentions],
            at,
        )
        return comment_pb(row)

    # -- reading -------------------------------------------------------------------------

    async def list_tickets(
        self, tenant_id: str, q: TicketQuery, limit: int, visible: Sequence[str] | None = None
    ) -> list[Ticket]:
        holding: dict[str, Sequence[uuid.UUID] | None] = {}
        if q.terms:
            async with self._pool.acquire() as conn, conn.transaction(readonly=True):
                # A common term's bitmap (a quarter of a million messages at a million
                # tickets) kept exact, not lossy pages rechecked whole: the probe in half
                # the time (docs/development.md, the scale data set).
                await conn.execute(f"SET LOCAL work_mem = '{PROBE_WORK_MEM}'")
                for term in q.terms:  # how common each term is (query.build_term_probe)
                    probe, probe_args = build_term_probe(tenant_id, term, q.addresses)
                    found = await conn.fetch(probe, *probe_args)
                    common = len(found) >= TERM_PROBE_CAP
                    holding[term] = None if common else list({r["ticket_id"] for r in found})
        sql, args = build_list_query(tenant_id, q, limit + 1, visible, holding)
        return [ticket_of(r) for r in await self._pool.fetch(sql, *args)]

    async def get(
        self, tenant_id: str, ticket_id: uuid.UUID
    ) -> tuple[Ticket, list[StoredMessage], list[tickets_pb2.Comment]] | None:
        """A ticket with its messages and comments, oldest first — read in one snapshot, so
        the ticket's counts agree with its messages even while a mail is being filed."""
        tenant = uuid.UUID(tenant_id)
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(
                "SELECT * FROM tickets WHERE tenant_id = $1 AND id = $2", tenant, ticket_id
            )
            if row is None:
                return None
            msgs = await conn.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND ticket_id = $2 "
                "ORDER BY received_at, id",
                tenant,
                ticket_id,
            )
            comments = await conn.fetch(
                "SELECT * FROM comments WHERE tenant_id = $1 AND ticket_id = $2 "
                "ORDER BY created_at, id",
                tenant,
                ticket_id,
            )
        return ticket_of(row), [message_of(m) for m in msgs], [comment_pb(c) for c in comments]

    async def audit(
        self, tenant_id: str, ticket_id: uuid.UUID, limit: int, after: Cursor | None
    ) -> list[tickets_pb2.AuditEntry]:
        """The ticket's audit trail, newest first: `limit + 1` entries at most."""
        args: list[Any] = [uuid.UUID(tenant_id), ticket_id, limit + 1]
        where = "tenant_id = $1 AND ticket_id = $2"
        if after is not None:
            args.extend([after.received_at, after.id])
            where += " AND (at, id) < ($4, $5)"
        return [
            audit_pb(r)
            for r in await self._pool.fetch(
                f"SELECT * FROM audit WHERE {where} ORDER BY at DESC, id DESC LIMIT $3", *args
            )
        ]

    # -- inbox settings ------------------------------------------------------------------

    async def inbox_settings(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, inbox_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, InboxSettings]:
        rows = await conn.fetch(
            "SELECT * FROM inbox_settings WHERE tenant_id = $1 AND inbox_id = ANY($2)",
            uuid.UUID(tenant_id),
            inbox_ids,
        )
        return {r["inbox_id"]: inbox_settings_of(r) for r in rows}

    async def set_inbox_settings(
        self,
        tenant_id: str,
        inbox_id: uuid.UUID,
        thresholds: list[dict[str, Any]],
        new_ticket_after_days: int,
        now: datetime,
    ) -> InboxSettings:
        row = await self._pool.fetchrow(
            "INSERT INTO inbox_settings (tenant_id, inbox_id, thresholds, new_ticket_after_days, "
            "updated_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (tenant_id, inbox_id) DO UPDATE "
            "SET thresholds = $3, new_ticket_after_days = $4, updated_at = $5 RETURNING *",
            uuid.UUID(tenant_id),
            inbox_id,
            thresholds,
            new_ticket_after_days,
            now,
        )
        return inbox_settings_of(row)
