"""ingestion's storage of channels (issue 21, migration 011): the channels of a tenant with
their sealed credentials, the conversations, the transcript and the deliveries of replies.
Every query names the tenant, but the two that start from outside: a public key (which
names the tenant) and the deliverer's claim (due rows of every tenant)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .channel_delivery_repo import DeliveryQueries, DeliveryRow
from .channel_model import ChannelRow, ConversationRow

__all__ = ["ChannelRepo", "DeliveryRow", "Sealed", "Transcript", "conversation", "transcript"]

_CH = (
    "id, tenant_id, kind, inbox_id, name, public_key, settings, enabled, secret_hint, "
    "token_enc IS NOT NULL AS token_set, created_at, updated_at, secret_enc, token_enc"
)
_CONV = (
    "id, tenant_id, channel_id, external_id, sender_id, sender_name, email, language, "
    "ticket_id, last_inbound_at, reply_token, reply_token_expires_at, last_seq, ended_at, "
    "created_at"
)
_CONV_C = ", ".join("c." + k for k in _CONV.split(", "))


@dataclass(frozen=True)
class Sealed:
    """A channel with its sealed credentials (SecretBox, bound to the channel id)."""

    row: ChannelRow
    secret_enc: bytes | None
    token_enc: bytes | None


@dataclass(frozen=True)
class Transcript:
    conversation_id: uuid.UUID
    seq: int
    direction: str
    key: str
    text: str
    attachments: list[dict[str, Any]]
    author_name: str
    message_id: uuid.UUID | None
    created_at: datetime


def _channel(r: asyncpg.Record) -> Sealed:
    row = ChannelRow(
        id=r["id"],
        tenant_id=r["tenant_id"],
        kind=r["kind"],
        inbox_id=r["inbox_id"],
        name=r["name"],
        public_key=r["public_key"],
        settings=dict(r["settings"] or {}),
        enabled=r["enabled"],
        secret_hint=r["secret_hint"],
        token_set=r["token_set"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )
    return Sealed(row, r["secret_enc"], r["token_enc"])


def conversation(r: asyncpg.Record) -> ConversationRow:
    return ConversationRow(**{k: r[k] for k in _CONV.split(", ")})


def transcript(r: asyncpg.Record) -> Transcript:
    return Transcript(
        conversation_id=r["conversation_id"],
        seq=r["seq"],
        direction=r["direction"],
        key=r["key"],
        text=r["text"],
        attachments=list(r["attachments"] or []),
        author_name=r["author_name"],
        message_id=r["message_id"],
        created_at=r["created_at"],
    )


class ChannelRepo(DeliveryQueries):
    """Channels, conversations and the transcript; the deliveries' queries are
    DeliveryQueries'."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- channels ----------------------------------------------------------------------

    async def create(self, conn: asyncpg.Connection, row: ChannelRow) -> None:
        await conn.execute(
            "INSERT INTO channels (id, tenant_id, kind, inbox_id, name, public_key, settings, "
            "enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            row.id,
            row.tenant_id,
            row.kind,
            row.inbox_id,
            row.name,
            row.public_key,
            row.settings,
            row.enabled,
            row.created_at,
        )

    async def set_credentials(
        self,
        conn: asyncpg.Connection,
        tenant: uuid.UUID,
        channel_id: uuid.UUID,
        *,
        secret_enc: bytes | None = None,
        secret_hint: str | None = None,
        token_enc: bytes | None = None,
        now: datetime,
    ) -> None:
        if secret_enc is not None:
            await conn.execute(
                "UPDATE channels SET secret_enc = $3, secret_hint = $4, updated_at = $5 "
                "WHERE tenant_id = $1 AND id = $2",
                tenant,
                channel_id,
                secret_enc,
                secret_hint or "",
                now,
            )
        if token_enc is not None:
            await conn.execute(
                "UPDATE channels SET token_enc = $3, updated_at = $4 "
                "WHERE tenant_id = $1 AND id = $2",
                tenant,
                channel_id,
                token_enc,
                now,
            )

    async def get(
        self, tenant: uuid.UUID, channel_id: uuid.UUID, conn: asyncpg.Connection | None = None
    ) -> Sealed | None:
        r = await (conn or self.pool).fetchrow(
            f"SELECT {_CH} FROM channels WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            tenant,
            channel_id,
        )
        return None if r is None else _channel(r)

    async def by_public_key(self, public_key: str) -> Sealed | None:
        """An enabled channel by its public key (which names the tenant)."""
        r = await self.pool.fetchrow(
            f"SELECT {_CH} FROM channels WHERE public_key = $1 AND deleted_at IS NULL AND enabled",
            public_key,
        )
        return None if r is None else _channel(r)

    async def channels(self, tenant: uuid.UUID, kind: str = "") -> list[Sealed]:
        rows = await self.pool.fetch(
            f"SELECT {_CH} FROM channels WHERE tenant_id = $1 AND deleted_at IS NULL "
            "AND ($2 = '' OR kind = $2) ORDER BY created_at, id",
            tenant,
            kind,
        )
        return [_channel(r) for r in rows]

    async def update(
        self,
        conn: asyncpg.Connection,
        tenant: uuid.UUID,
        channel_id: uuid.UUID,
        *,
        name: str,
        enabled: bool,
        settings: dict[str, Any],
        inbox_id: uuid.UUID,
        now: datetime,
    ) -> None:
        await conn.execute(
            "UPDATE channels SET name = $3, enabled = $4, settings = $5, inbox_id = $6, "
            "updated_at = $7 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            tenant,
            channel_id,
            name,
            enabled,
            settings,
            inbox_id,
            now,
        )

    async def delete(self, tenant: uuid.UUID, channel_id: uuid.UUID, now: datetime) -> bool:
        """Deleted (kept for the transcripts, its public key dead); False if none."""
        status = await self.pool.execute(
            "UPDATE channels SET deleted_at = $3, enabled = false, secret_enc = NULL, "
            "token_enc = NULL, secret_hint = '' WHERE tenant_id = $1 AND id = $2 "
            "AND deleted_at IS NULL",
            tenant,
            channel_id,
            now,
        )
        return bool(status == "UPDATE 1")

    # -- conversations and the transcript ------------------------------------------------

    async def lock_conversation(
        self,
        conn: asyncpg.Connection,
        *,
        new_id: uuid.UUID,
        channel: ChannelRow,
        external_id: str,
        sender_id: str,
        sender_name: str,
        now: datetime,
    ) -> ConversationRow:
        """The conversation of (channel, external id), made now if new, locked for the
        transaction (so seq numbers and dedupe are decided one message at a time)."""
        await conn.execute(
            "INSERT INTO channel_conversations (id, tenant_id, channel_id, external_id, "
            "sender_id, sender_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (channel_id, external_id) DO NOTHING",
            new_id,
            channel.tenant_id,
            channel.id,
            external_id,
            sender_id,
            sender_name,
            now,
        )
        r = await conn.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations WHERE tenant_id = $1 AND channel_id = $2 "
            "AND external_id = $3 FOR UPDATE",
            channel.tenant_id,
            channel.id,
            external_id,
        )
        assert r is not None
        return conversation(r)

    async def lock_conversation_by_id(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationRow | None:
        r = await conn.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations WHERE tenant_id = $1 AND id = $2 "
            "FOR UPDATE",
            tenant,
            conversation_id,
        )
        return None if r is None else conversation(r)

    async def message_by_key(
        self, conn: asyncpg.Connection, conversation_id: uuid.UUID, direction: str, key: str
    ) -> Transcript | None:
        r = await conn.fetchrow(
            "SELECT * FROM channel_messages WHERE conversation_id = $1 AND direction = $2 "
            "AND key = $3",
            conversation_id,
            direction,
            key,
        )
        return None if r is None else transcript(r)

    async def first_inbound(
        self, conn: asyncpg.Connection, conversation_id: uuid.UUID
    ) -> Transcript | None:
        r = await conn.fetchrow(
            "SELECT * FROM channel_messages WHERE conversation_id = $1 AND direction = 'in' "
            "ORDER BY seq LIMIT 1",
            conversation_id,
        )
        return None if r is None else transcript(r)

    async def append(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, t: Transcript, *, inbound: bool
    ) -> None:
        """A transcript row at seq = the conversation's last_seq + 1 (the caller holds the
        conversation's lock and computed it)."""
        await conn.execute(
            "INSERT INTO channel_messages (conversation_id, seq, tenant_id, direction, key, "
            "text, attachments, author_name, message_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            t.conversation_id,
            t.seq,
            tenant,
            t.direction,
            t.key,
            t.text,
            t.attachments,
            t.author_name,
            t.message_id,
            t.created_at,
        )
        await conn.execute(
            "UPDATE channel_conversations SET last_seq = $2, "
            "last_inbound_at = CASE WHEN $3 THEN $4 ELSE last_inbound_at END "
            "WHERE id = $1",
            t.conversation_id,
            t.seq,
            inbound,
            t.created_at,
        )

    async def note_sender(
        self,
        conn: asyncpg.Connection,
        conversation_id: uuid.UUID,
        *,
        sender_name: str,
        reply_token: str,
        reply_token_expires_at: datetime | None,
    ) -> None:
        await conn.execute(
            "UPDATE channel_conversations SET "
            "sender_name = CASE WHEN $2 = '' THEN sender_name ELSE $2 END, "
            "reply_token = CASE WHEN $3 = '' THEN reply_token ELSE $3 END, "
            "reply_token_expires_at = CASE WHEN $3 = '' THEN reply_token_expires_at ELSE $4 END "
            "WHERE id = $1",
            conversation_id,
            sender_name,
            reply_token,
            reply_token_expires_at,
        )

    async def spend_reply_token(self, conversation_id: uuid.UUID, token: str) -> None:
        await self.pool.execute(
            "UPDATE channel_conversations SET reply_token = NULL, reply_token_expires_at = NULL "
            "WHERE id = $1 AND reply_token = $2",
            conversation_id,
            token,
        )

    async def conversation(
        self, tenant: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationRow | None:
        r = await self.pool.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations WHERE tenant_id = $1 AND id = $2",
            tenant,
            conversation_id,
        )
        return None if r is None else conversation(r)

    async def conversation_of_ticket(
        self, tenant: uuid.UUID, ticket_id: uuid.UUID
    ) -> ConversationRow | None:
        r = await self.pool.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations WHERE tenant_id = $1 AND ticket_id = $2 "
            "ORDER BY created_at DESC LIMIT 1",
            tenant,
            ticket_id,
        )
        return None if r is None else conversation(r)

    async def channel_of(self, tenant: uuid.UUID, channel_id: uuid.UUID) -> Sealed | None:
        """A channel, deleted or not (a conversation's, for its kind and inbox)."""
        r = await self.pool.fetchrow(
            f"SELECT {_CH} FROM channels WHERE tenant_id = $1 AND id = $2", tenant, channel_id
        )
        return None if r is None else _channel(r)

    async def messages(
        self, tenant: uuid.UUID, conversation_id: uuid.UUID, after_seq: int = 0, limit: int = 200
    ) -> list[Transcript]:
        rows = await self.pool.fetch(
            "SELECT * FROM channel_messages WHERE tenant_id = $1 AND conversation_id = $2 "
            "AND seq > $3 ORDER BY seq LIMIT $4",
            tenant,
            conversation_id,
            after_seq,
            limit,
        )
        return [transcript(r) for r in rows]

    async def link_ticket(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, message_id: uuid.UUID, ticket: uuid.UUID
    ) -> ConversationRow | None:
        """The conversation of this stored message linked to `ticket`; None when the
        message is no channel's, or the conversation is linked to that ticket already."""
        r = await conn.fetchrow(
            "UPDATE channel_conversations c SET ticket_id = $3 FROM channel_messages m "
            "WHERE m.message_id = $2 AND m.tenant_id = $1 AND c.id = m.conversation_id "
            f"AND c.ticket_id IS DISTINCT FROM $3 RETURNING {_CONV_C}",
            tenant,
            message_id,
            ticket,
        )
        return None if r is None else conversation(r)
