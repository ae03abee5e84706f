"""The web chat's rows (issue 21, ING-6): a chat channel by its public key, the visitor's
conversation, its transcript after a seq, the visitor's contact, the end of a chat (by
the visitor or idle). Tables of migration 011 (channels, channel_conversations,
channel_messages); the receive pipeline itself is channel_intake.py's."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from .channel_model import ChannelRow, ConversationRow
from .channel_repo import Transcript, conversation, transcript

_CONV = ", ".join("c." + f.name for f in fields(ConversationRow))
_LINE = "m.conversation_id, m.seq, m.direction, m.key, m.text, m.attachments, m.author_name, "
_LINE += "m.message_id, m.created_at"


@dataclass(frozen=True)
class Ended:
    conversation: ConversationRow
    inbox_id: uuid.UUID


def _settings(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


class ChatRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def channel_by_key(self, public_key: str) -> ChannelRow | None:
        """An enabled chat channel by its public key (None for any other key)."""
        return await self._channel("public_key = $1", public_key)

    async def channel_by_id(self, channel_id: str) -> ChannelRow | None:
        """An enabled chat channel by id (a visitor token's)."""
        try:
            value = uuid.UUID(channel_id)
        except ValueError:
            return None
        return await self._channel("id = $1", value)

    async def _channel(self, where: str, value: object) -> ChannelRow | None:
        r = await self._pool.fetchrow(
            "SELECT id, tenant_id, kind, inbox_id, name, public_key, settings, enabled, "
            "secret_hint, token_enc IS NOT NULL AS token_set, created_at, updated_at "
            f"FROM channels WHERE {where} AND kind = 'chat' AND deleted_at IS NULL AND enabled",
            value,
        )
        if r is None:
            return None
        return ChannelRow(
            r["id"],
            r["tenant_id"],
            r["kind"],
            r["inbox_id"],
            r["name"],
            r["public_key"],
            _settings(r["settings"]),
            r["enabled"],
            r["secret_hint"],
            r["token_set"],
            r["created_at"],
            r["updated_at"],
        )

    async def conversation(self, channel_id: uuid.UUID, external_id: str) -> ConversationRow | None:
        r = await self._pool.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations c "
            "WHERE c.channel_id = $1 AND c.external_id = $2",
            channel_id,
            external_id,
        )
        return None if r is None else conversation(r)

    async def conversation_by_id(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationRow | None:
        r = await self._pool.fetchrow(
            f"SELECT {_CONV} FROM channel_conversations c WHERE c.tenant_id = $1 AND c.id = $2",
            tenant_id,
            conversation_id,
        )
        return None if r is None else conversation(r)

    async def ensure_conversation(
        self,
        new_id: uuid.UUID,
        channel: ChannelRow,
        visitor_id: str,
        external_id: str,
        name: str,
        email: str,
        language: str,
        now: datetime,
    ) -> ConversationRow:
        """The visitor's conversation, made when it does not exist yet (so the socket knows
        its id before the first message); a name, address or language given now is kept."""
        r = await self._pool.fetchrow(
            "INSERT INTO channel_conversations AS c (id, tenant_id, channel_id, external_id, "
            "sender_id, sender_name, email, language, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (channel_id, external_id) DO UPDATE SET "
            "sender_name = CASE WHEN excluded.sender_name <> '' THEN excluded.sender_name "
            "ELSE c.sender_name END, "
            "email = CASE WHEN excluded.email <> '' THEN excluded.email ELSE c.email END, "
            "language = CASE WHEN excluded.language <> '' THEN excluded.language "
            "ELSE c.language END "
            f"RETURNING {_CONV}",
            new_id,
            channel.tenant_id,
            channel.id,
            external_id,
            visitor_id,
            name,
            email,
            language,
            now,
        )
        assert r is not None
        return conversation(r)

    async def lines_after(
        self, conversation_id: uuid.UUID, after_seq: int, limit: int
    ) -> list[Transcript]:
        rows = await self._pool.fetch(
            f"SELECT {_LINE} FROM channel_messages m WHERE m.conversation_id = $1 "
            "AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            conversation_id,
            after_seq,
            limit,
        )
        return [transcript(r) for r in rows]

    async def send_state(
        self, channel_id: uuid.UUID, external_id: str, key: str, since: datetime
    ) -> tuple[ConversationRow, Transcript | None, int] | None:
        """In one round trip, before a visitor's message: their conversation, the line of
        this key if it was sent before (a second query, for a resend only), and how many
        they sent since `since`."""
        r = await self._pool.fetchrow(
            f"SELECT {_CONV}, "
            "(SELECT m.seq FROM channel_messages m WHERE m.conversation_id = c.id "
            " AND m.direction = 'in' AND m.key = $3) AS seen_seq, "
            "(SELECT count(*) FROM channel_messages r WHERE r.conversation_id = c.id "
            " AND r.direction = 'in' AND r.created_at > $4) AS recent "
            "FROM channel_conversations c WHERE c.channel_id = $1 AND c.external_id = $2",
            channel_id,
            external_id,
            key,
            since,
        )
        if r is None:
            return None
        conv = conversation(r)
        seen = None
        if r["seen_seq"] is not None:
            lines = await self.lines_after(conv.id, r["seen_seq"] - 1, 1)
            seen = lines[0] if lines else None
        return conv, seen, int(r["recent"] or 0)

    async def set_contact(
        self, conversation_id: uuid.UUID, name: str | None, email: str | None
    ) -> ConversationRow:
        r = await self._pool.fetchrow(
            "UPDATE channel_conversations c SET "
            "sender_name = coalesce($2, c.sender_name), email = coalesce($3, c.email) "
            f"WHERE c.id = $1 RETURNING {_CONV}",
            conversation_id,
            name,
            email,
        )
        assert r is not None
        return conversation(r)

    async def end(
        self, conn: asyncpg.Connection, conversation_id: uuid.UUID, now: datetime
    ) -> bool:
        """Ends the conversation; False when it had ended already."""
        done = await conn.fetchval(
            "UPDATE channel_conversations SET ended_at = $2 "
            "WHERE id = $1 AND ended_at IS NULL RETURNING id",
            conversation_id,
            now,
        )
        return done is not None

    async def end_idle(
        self, conn: asyncpg.Connection, quiet_since: datetime, now: datetime, limit: int
    ) -> list[Ended]:
        """Ends chat conversations with no message (either way) since `quiet_since`, at
        most `limit` of them (locked: one replica ends each)."""
        rows = await conn.fetch(
            "WITH due AS ("
            " SELECT c.id FROM channel_conversations c JOIN channels ch ON ch.id = c.channel_id "
            " WHERE c.ended_at IS NULL AND c.last_inbound_at < $1 AND ch.kind = 'chat' "
            " AND NOT EXISTS (SELECT 1 FROM channel_messages m WHERE m.conversation_id = c.id "
            "  AND m.created_at >= $1) "
            " ORDER BY c.last_inbound_at LIMIT $3 FOR UPDATE OF c SKIP LOCKED) "
            "UPDATE channel_conversations c SET ended_at = $2 FROM due, channels ch "
            "WHERE c.id = due.id AND ch.id = c.channel_id "
            f"RETURNING {_CONV}, ch.inbox_id",
            quiet_since,
            now,
            limit,
        )
        return [Ended(conversation(r), r["inbox_id"]) for r in rows]
