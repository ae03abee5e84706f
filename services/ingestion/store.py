"""Ingestion's storage of mails, in two steps.

1. `store_raw`: the bytes (content-addressed in `blobs`) and a `raw_messages` row in state
   `stored`, deduped per tenant (one per Message-ID per inbox, or per content hash without
   one). Nothing is parsed yet, so nothing about the content can stop this.
2. `complete`: the parsed document, the MailSummary, the attachments (content-addressed
   too) and the `message.received` event (plus follow-ups such as `form.submitted`) in one
   transaction; state `parsed`. Only the first completion of a message counts.
"""

from __future__ import annotations

import hashlib
import time
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

from . import blocking
from .parser import ParsedMail, to_summary

BLOCKLIST_CACHE_S = 5.0
Followups = Callable[[str, events_pb2.EventEnvelope], list[events_pb2.EventEnvelope]]


def dedupe_key(inbox_id: str, rfc822_message_id: str, sha256_hex: str) -> str:
    """One message per Message-ID per inbox; per content hash when there is none."""
    mid = rfc822_message_id.strip()
    if mid:
        return f"mid:{inbox_id}:{hashlib.sha256(mid.encode()).hexdigest()}"
    return f"sha:{sha256_hex}"


@dataclass(frozen=True)
class Accepted:
    message_id: str
    event_id: str
    duplicate: bool


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
    # transaction as its message.received; called with the message id and that envelope.
    followups: Followups | None = None


@dataclass(frozen=True)
class Stored:
    """A raw_messages row as `complete` needs it."""

    message_id: str
    event_id: str
    tenant_id: str
    inbox: common_pb2.InboxRef
    channel: str
    envelope_recipients: list[str]
    received_at: datetime
    state: str
    envelope_from: str = ""
    duplicate: bool = False

    @classmethod
    def from_row(cls, row: Any, duplicate: bool = False) -> Stored:
        return cls(
            message_id=str(row["id"]),
            event_id=str(row["event_id"]),
            tenant_id=str(row["tenant_id"]),
            inbox=common_pb2.InboxRef(id=str(row["inbox_id"]), name=row["inbox_name"]),
            channel=row["channel"],
            envelope_recipients=list(row["envelope_recipients"]),
            received_at=row["received_at"],
            state=row["state"],
            envelope_from=row["envelope_from"],
            duplicate=duplicate,
        )


_ROW = (
    "id, event_id, tenant_id, inbox_id, inbox_name, channel, envelope_recipients, "
    "received_at, state, envelope_from"
)


class RawStore:
    def __init__(self, db: Database, outbox: Outbox, ids: IdGenerator) -> None:
        self.pool = db.pool  # ingestion's own tables (forms) are read through it too
        self._db = db
        self._outbox = outbox
        self._ids = ids
        self._blocks: dict[tuple[str, str], tuple[float, list[blocking.Rule]]] = {}

    async def store_raw(
        self, intake: Intake, key: str, sha256: bytes, received_at: datetime
    ) -> Stored:
        """Keep the bytes; the row of an already known message when it is a duplicate."""
        tenant = uuid.UUID(intake.tenant_id)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO blobs (sha256, size_bytes, data) VALUES ($1, $2, $3) "
                "ON CONFLICT (sha256) DO NOTHING",
                sha256,
                len(intake.raw),
                intake.raw,
            )
            row = await conn.fetchrow(
                "INSERT INTO raw_messages (id, tenant_id, inbox_id, inbox_name, channel, sha256, "
                "size_bytes, envelope_from, envelope_recipients, event_id, received_at, "
                "dedupe_key, state) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,'stored') "
                f"ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING {_ROW}",
                self._ids.new(),
                tenant,
                uuid.UUID(intake.inbox.id),
                intake.inbox.name,
                intake.channel,
                sha256,
                len(intake.raw),
                intake.envelope_from[:998],
                intake.envelope_recipients,
                self._ids.new(),
                received_at,
                key,
            )
            if row is not None:
                return Stored.from_row(row)
            existing = await conn.fetchrow(
                f"SELECT {_ROW} FROM raw_messages WHERE tenant_id = $1 AND dedupe_key = $2",
                tenant,
                key,
            )
            return Stored.from_row(existing, duplicate=True)

    async def complete(
        self,
        stored: Stored,
        parsed: ParsedMail,
        *,
        now: datetime,
        followups: Followups | None = None,
        extra_problem: str | None = None,
        publish: bool = False,
    ) -> bool:
        """Record the parse and queue message.received; False if it was done already.
        With `publish`, the event is published (and its ack awaited) before the commit —
        harmless if the commit then fails: the event id was fixed in `store_raw`, and the
        completion is retried (sender retry, refetch, sweeper) to the same event."""
        summary = to_summary(parsed)
        if extra_problem:
            summary.parse_problems.append(extra_problem)
        senders = [a.address for a in (*parsed.from_, *parsed.sender)] + [stored.envelope_from]
        rule = blocking.matching(await self.blocklist(stored.tenant_id, stored.inbox.id), senders)
        if rule is not None:
            summary.blocked_by = rule.label()
        payload = events_pb2.MessageReceived(
            message_id=stored.message_id,
            inbox=stored.inbox,
            channel=stored.channel,
            envelope_recipients=stored.envelope_recipients,
            mail=summary,
        )
        payload.received_at.FromDatetime(stored.received_at)
        env = events.envelope(
            events.MESSAGE_RECEIVED,
            event_id=stored.event_id,
            tenant_id=stored.tenant_id,
            occurred_at=now,
            payload=payload,
            actor=events.system_actor("ingestion"),
        )
        document = parsed.to_json()
        if extra_problem:
            document["defects"] = [*document.get("defects", []), extra_problem]
        async with self._db.transaction() as conn:
            status = await conn.execute(
                "UPDATE raw_messages SET state = 'parsed', summary = $3, parse_problems = $4, "
                "parsed = $5 WHERE tenant_id = $1 AND id = $2 AND state = 'stored'",
                uuid.UUID(stored.tenant_id),
                uuid.UUID(stored.message_id),
                summary.SerializeToString(),
                list(summary.parse_problems),
                document,
            )
            if status != "UPDATE 1":
                return False
            for att in parsed.attachments:
                if att.data is not None:
                    await conn.execute(
                        "INSERT INTO blobs (sha256, size_bytes, data) VALUES ($1, $2, $3) "
                        "ON CONFLICT (sha256) DO NOTHING",
                        bytes.fromhex(att.sha256),
                        len(att.data),
                        att.data,
                    )
            if followups is not None:
                for follow in followups(stored.message_id, env):
                    await self._outbox.add(conn, follow)
            if publish:
                await self._outbox.add_and_publish(conn, env)
            else:
                await self._outbox.add(conn, env)
        return True

    async def blocklist(self, tenant_id: str, inbox_id: str) -> list[blocking.Rule]:
        """The rules for an inbox, cached a few seconds (a new rule applies within them)."""
        key = (tenant_id, inbox_id)
        hit = self._blocks.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await self.pool.fetch(
            "SELECT kind, value FROM blocklist WHERE tenant_id = $1 "
            "AND (inbox_id IS NULL OR inbox_id = $2) ORDER BY created_at",
            uuid.UUID(tenant_id),
            uuid.UUID(inbox_id),
        )
        rules = [blocking.Rule(r["kind"], r["value"]) for r in rows]
        if len(self._blocks) > 10_000:
            self._blocks.clear()
        self._blocks[key] = (now + BLOCKLIST_CACHE_S, rules)
        return rules

    async def claim_unparsed(
        self, older_than_s: float, limit: int = 10
    ) -> list[tuple[Stored, bytes, int]]:
        """Messages left in state `stored` (their process died while parsing), each with
        its bytes and how many times parsing was tried, now one more."""
        rows = await self.pool.fetch(
            "UPDATE raw_messages SET parse_attempts = parse_attempts + 1 WHERE id IN ("
            "SELECT id FROM raw_messages WHERE state = 'stored' "
            "AND received_at < now() - make_interval(secs => $1) "
            "ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {_ROW}, parse_attempts, sha256, raw",
            older_than_s,
            limit,
        )
        out = []
        for row in rows:
            raw = row["raw"]
            if raw is None:
                raw = await self.pool.fetchval(
                    "SELECT data FROM blobs WHERE sha256 = $1", row["sha256"]
                )
            out.append((Stored.from_row(row), bytes(raw or b""), row["parse_attempts"]))
        return out

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Any:
        return await self._db.pool.fetchrow(
            "SELECT m.id, coalesce(m.raw, b.data) AS raw, m.channel, m.received_at, m.summary, "
            "m.parsed, m.state FROM raw_messages m LEFT JOIN blobs b ON b.sha256 = m.sha256 "
            "WHERE m.tenant_id = $1 AND m.id = $2",
            uuid.UUID(tenant_id),
            message_id,
        )

    async def attachment(self, tenant_id: str, message_id: uuid.UUID, index: int) -> Any:
        """An attachment's listing and bytes, through the tenant's own message."""
        return await self._db.pool.fetchrow(
            "SELECT a.value AS meta, b.data FROM raw_messages m, "
            "jsonb_array_elements(m.parsed -> 'attachments') a, blobs b "
            "WHERE m.tenant_id = $1 AND m.id = $2 AND (a.value ->> 'index')::int = $3 "
            "AND b.sha256 = decode(a.value ->> 'sha256', 'hex')",
            uuid.UUID(tenant_id),
            message_id,
            index,
        )
