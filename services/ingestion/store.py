"""Ingestion's storage: keep the raw bytes and the message.received event in one
transaction; dedupe the same bytes per tenant."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox


@dataclass(frozen=True)
class Accepted:
    message_id: str
    event_id: str
    duplicate: bool


def dedupe_key(inbox_id: str, summary: events_pb2.MailSummary) -> str:
    """One message per Message-ID per inbox; per content hash when there is none."""
    mid = summary.rfc822_message_id.strip()
    if mid:
        return f"mid:{inbox_id}:{hashlib.sha256(mid.encode()).hexdigest()}"
    return f"sha:{summary.sha256}"


@dataclass(frozen=True)
class Intake:
    tenant_id: str
    inbox: common_pb2.InboxRef
    channel: str
    raw: bytes
    envelope_from: str
    envelope_recipients: list[str]
    use_mail_date: bool = False  # imports keep the mail's own Date as its received time
    # Events that follow from a new message (form.submitted), written in the same
    # transaction; called with the new message id and its message.received envelope.
    followups: Callable[[str, events_pb2.EventEnvelope], list[events_pb2.EventEnvelope]] | None = (
        None
    )


class RawStore:
    def __init__(self, db: Database, outbox: Outbox, ids: IdGenerator) -> None:
        self.pool = db.pool  # ingestion's own tables (forms) are read through it too
        self._db = db
        self._outbox = outbox
        self._ids = ids

    async def accept(
        self, intake: Intake, summary: events_pb2.MailSummary, received_at: datetime
    ) -> Accepted:
        """Store the mail and its event (not yet published), or find the copy already stored."""
        sha = bytes.fromhex(summary.sha256)
        key = dedupe_key(intake.inbox.id, summary)
        tenant = uuid.UUID(intake.tenant_id)
        message_id = self._ids.new_str()
        event_id = self._ids.new_str()
        payload = events_pb2.MessageReceived(
            message_id=message_id,
            inbox=intake.inbox,
            channel=intake.channel,
            envelope_recipients=intake.envelope_recipients,
            mail=summary,
        )
        payload.received_at.FromDatetime(received_at)
        env = events.envelope(
            events.MESSAGE_RECEIVED,
            event_id=event_id,
            tenant_id=intake.tenant_id,
            occurred_at=received_at,
            payload=payload,
            actor=events.system_actor("ingestion"),
        )
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(
                "INSERT INTO raw_messages (id, tenant_id, inbox_id, inbox_name, channel, sha256, "
                "size_bytes, raw, envelope_from, envelope_recipients, summary, parse_problems, "
                "event_id, received_at, dedupe_key) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) "
                "ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id",
                uuid.UUID(message_id),
                tenant,
                uuid.UUID(intake.inbox.id),
                intake.inbox.name,
                intake.channel,
                sha,
                len(intake.raw),
                intake.raw,
                intake.envelope_from[:998],
                intake.envelope_recipients,
                summary.SerializeToString(),
                list(summary.parse_problems),
                uuid.UUID(event_id),
                received_at,
                key,
            )
            if row is None:
                existing = await conn.fetchrow(
                    "SELECT id, event_id FROM raw_messages "
                    "WHERE tenant_id = $1 AND dedupe_key = $2",
                    tenant,
                    key,
                )
                return Accepted(str(existing["id"]), str(existing["event_id"]), duplicate=True)
            await self._outbox.add(conn, env)
            if intake.followups is not None:
                for follow in intake.followups(message_id, env):
                    await self._outbox.add(conn, follow)
        return Accepted(message_id, event_id, duplicate=False)

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Any:
        return await self._db.pool.fetchrow(
            "SELECT id, raw, channel, received_at, summary FROM raw_messages "
            "WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            message_id,
        )
