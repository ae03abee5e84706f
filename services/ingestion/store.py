"""Ingestion's storage of mails, in two steps.

1. `store_raw`: the bytes (content-addressed in `blobs`) and a `raw_messages` row in state
   `stored`, deduped per tenant (one per Message-ID per inbox, or per content hash without
   one). Nothing is parsed yet, so nothing about the content can stop this.
2. `complete`: the parsed document, the MailSummary, the attachments (content-addressed
   too), the virus verdict and the `message.received` event (plus follow-ups such as
   `form.submitted`) in one transaction; state `parsed`. Only the first completion of a
   message counts. A "not_scanned" verdict is due for the rescanner at once (scans.py).

Both take a batch too (`store_raw_many`, `complete_many`: an import's window), in one
transaction with one statement per table. The parsed document is kept without its bodies
until the message is first shown (`without_bodies`, `keep_document`). Blobs that would not
compress are kept uncompressed (`compresses`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox

from . import blocking
from .parser import ParsedMail, sender_auth, to_summary
from .virus import NOT_SCANNED, NOTHING, Verdict

BLOCKLIST_CACHE_S = 5.0
PLAIN_FROM_BYTES = 64 * 1024  # smaller blobs are always left to PostgreSQL to compress
Followups = Callable[[str, events_pb2.EventEnvelope], list[events_pb2.EventEnvelope]]
Also = Callable[[asyncpg.Connection], Awaitable[object]]  # more work in the same transaction


BODIES_PENDING = "bodies_pending"  # in a parsed document kept without its bodies


def without_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The parsed document as intake keeps it: without the text and HTML bodies (most of
    its size, and HTML may not be sanitised yet), which are parsed again from the raw bytes
    when the message is first shown, and kept from then on."""
    kept = {k: v for k, v in document.items() if k not in ("text", "html")}
    kept[BODIES_PENDING] = True
    return kept


def compresses(data: bytes) -> bool:
    """Whether PostgreSQL's compression is worth trying on these bytes: small ones, and
    larger ones whose samples (a quarter, half and three quarters in) deflate well; not
    base64-encoded attachments or compressed files, on which it only burns time."""
    if len(data) < PLAIN_FROM_BYTES:
        return True
    n = len(data)
    sample = b"".join(data[n * k // 4 : n * k // 4 + 4096] for k in (1, 2, 3))
    return len(zlib.compress(sample, 1)) < 0.7 * len(sample)


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
    received_at: datetime | None = None  # the caller's time (outbound: when it sent it)
    # Events that follow from a new message (form.submitted), written in the same
    # transaction as its message.received; called with the message id and that envelope.
    followups: Followups | None = None
    ticket_id: str = ""  # a mail we sent: the ticket outbound sent it from
    # the stored message's id, chosen by the caller (a channel message: its transcript row
    # names it in the same transaction as its channel.message event); "": a new one
    message_id: str = ""


@dataclass(frozen=True, slots=True)
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
    ticket_id: str = ""
    duplicate: bool = False

    @classmethod
    def from_row(cls, row: asyncpg.Record, duplicate: bool = False) -> Stored:
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
            ticket_id=str(row["ticket_id"] or ""),
            duplicate=duplicate,
        )


@dataclass(frozen=True)
class Completion:
    """A stored message and its parse, to be recorded (`RawStore.complete_many`)."""

    stored: Stored
    parsed: ParsedMail
    followups: Followups | None = None
    extra_problem: str | None = None
    verdict: Verdict = NOTHING


_ROW = (
    "id, event_id, tenant_id, inbox_id, inbox_name, channel, envelope_recipients, "
    "received_at, state, envelope_from, ticket_id"
)


class RawStore:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        ids: IdGenerator,
        *,
        trusted_authserv_ids: frozenset[str] = frozenset(),
    ) -> None:
        self.pool = db.pool  # ingestion's own tables (forms) are read through it too
        self._db = db
        self._outbox = outbox
        self._ids = ids
        self._trusted = trusted_authserv_ids  # ADR 0009: whose Authentication-Results count
        self._blocks: dict[tuple[str, str], tuple[float, list[blocking.Rule]]] = {}

    async def store_raw(
        self, intake: Intake, key: str, sha256: bytes, received_at: datetime
    ) -> Stored:
        """Keep the bytes; the row of an already known message when it is a duplicate."""
        [stored] = await self.store_raw_many([(intake, key, sha256, received_at)])
        return stored

    async def store_raw_many(
        self, items: Sequence[tuple[Intake, str, bytes, datetime]]
    ) -> list[Stored]:
        """`store_raw` for several mails (intake, dedupe key, SHA-256, received at) in one
        transaction, a statement per table. Items with the same key for the same tenant
        are one message: the first is stored, the others are its duplicates."""
        if not items:
            return []
        blobs = {sha: intake.raw for intake, _key, sha, _at in items}
        first: dict[tuple[uuid.UUID, str], tuple[Intake, bytes, datetime]] = {}
        for intake, key, sha, at in items:
            first.setdefault((uuid.UUID(intake.tenant_id), key), (intake, sha, at))
        new = sorted(first.items(), key=lambda kv: kv[0])  # key order, as for blobs
        async with self._db.transaction() as conn:
            await self._insert_blobs(conn, blobs)
            rows = await conn.fetch(
                "INSERT INTO raw_messages (id, tenant_id, inbox_id, inbox_name, channel, sha256, "
                "size_bytes, envelope_from, envelope_recipients, event_id, received_at, "
                "dedupe_key, ticket_id, state) "
                "SELECT u.id, u.tenant_id, u.inbox_id, u.inbox_name, u.channel, u.sha256, "
                "u.size_bytes, u.envelope_from, "
                "ARRAY(SELECT jsonb_array_elements_text(u.recipients::jsonb)), u.event_id, "
                "u.received_at, u.dedupe_key, u.ticket_id, 'stored' FROM unnest($1::uuid[], "
                "$2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::int[], "
                "$8::text[], $9::text[], $10::uuid[], $11::timestamptz[], $12::text[], "
                "$13::uuid[]) AS u(id, tenant_id, inbox_id, inbox_name, channel, sha256, "
                "size_bytes, envelope_from, recipients, event_id, received_at, dedupe_key, "
                "ticket_id) "
                f"ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING {_ROW}, dedupe_key",
                [
                    uuid.UUID(i.message_id) if i.message_id else self._ids.new()
                    for _k, (i, _s, _a) in new
                ],
                [tenant for (tenant, _key), _v in new],
                [uuid.UUID(i.inbox.id) for _k, (i, _s, _a) in new],
                [i.inbox.name for _k, (i, _s, _a) in new],
                [i.channel for _k, (i, _s, _a) in new],
                [sha for _k, (_i, sha, _a) in new],
                [len(i.raw) for _k, (i, _s, _a) in new],
                [i.envelope_from[:998] for _k, (i, _s, _a) in new],
                [json.dumps(list(i.envelope_recipients)) for _k, (i, _s, _a) in new],
                [self._ids.new() for _ in new],
                [at for _k, (_i, _s, at) in new],
                [key for (_tenant, key), _v in new],
                [uuid.UUID(i.ticket_id) if i.ticket_id else None for _k, (i, _s, _a) in new],
            )
            found = {(r["tenant_id"], r["dedupe_key"]): Stored.from_row(r) for r in rows}
            known = [k for k in first if k not in found]
            if known:
                for r in await conn.fetch(
                    f"SELECT {', '.join('m.' + c for c in _ROW.split(', '))}, m.dedupe_key "
                    "FROM raw_messages m JOIN unnest($1::uuid[], $2::text[]) AS k(t, d) "
                    "ON m.tenant_id = k.t AND m.dedupe_key = k.d",
                    [t for t, _d in known],
                    [d for _t, d in known],
                ):
                    found[(r["tenant_id"], r["dedupe_key"])] = Stored.from_row(r, duplicate=True)
        out: list[Stored] = []
        taken: set[tuple[uuid.UUID, str]] = set()
        for intake, key, _sha, _at in items:
            k = (uuid.UUID(intake.tenant_id), key)
            out.append(found[k] if k not in taken else replace(found[k], duplicate=True))
            taken.add(k)
        return out

    @staticmethod
    async def _insert_blobs(conn: asyncpg.Connection, blobs: dict[bytes, bytes]) -> None:
        if not blobs:
            return
        ordered = sorted(blobs.items())  # in key order: overlapping writers wait, not deadlock
        plain = [not compresses(data) for _sha, data in ordered]
        await conn.execute(
            "INSERT INTO blobs (sha256, size_bytes, data, data_plain) "
            "SELECT s, n, CASE WHEN p THEN NULL ELSE d END, CASE WHEN p THEN d END "
            "FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bool[]) AS u(s, n, d, p) "
            "ON CONFLICT (sha256) DO NOTHING",
            [sha for sha, _data in ordered],
            [len(data) for _sha, data in ordered],
            [data for _sha, data in ordered],
            plain,
        )

    async def complete(
        self,
        stored: Stored,
        parsed: ParsedMail,
        *,
        now: datetime,
        followups: Followups | None = None,
        extra_problem: str | None = None,
        publish: bool = False,
        verdict: Verdict = NOTHING,
    ) -> bool:
        """Record the parse and queue message.received; False if it was done already."""
        [done] = await self.complete_many(
            [Completion(stored, parsed, followups, extra_problem, verdict)],
            now=now,
            publish=publish,
        )
        return done

    async def complete_many(
        self,
        completions: Sequence[Completion],
        *,
        now: datetime,
        publish: bool = False,
        also: Also | None = None,
    ) -> list[bool]:
        """Record the parses and queue the message.received events (and their follow-ups)
        in one transaction, with `also(conn)` in it too; per message, False if it was
        completed already (its event is then not queued again). With `publish`, the events
        are published (acks awaited together) before the commit — harmless if the commit
        then fails: their ids were fixed in `store_raw`, and the completion is retried
        (sender retry, refetch, import resumed, sweeper) to the same events."""
        records = [await self._record(c, now) for c in completions]
        async with self._db.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE raw_messages m SET state = 'parsed', summary = u.summary, "
                "parse_problems = ARRAY(SELECT jsonb_array_elements_text(u.problems::jsonb)), "
                "parsed = u.document::jsonb, scan_state = u.scan_state, "
                "scan_findings = u.findings::jsonb, scan_error = u.scan_error, "
                "scanned_at = u.scanned_at, scan_next_at = CASE WHEN u.scan_state = "
                f"'{NOT_SCANNED}' THEN $10::timestamptz END "
                "FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::text[], $5::text[], "
                "$6::text[], $7::text[], $8::text[], $9::timestamptz[]) AS u(tenant_id, id, "
                "summary, problems, document, scan_state, findings, scan_error, scanned_at) "
                "WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND m.state = 'stored' "
                "RETURNING m.id",
                [uuid.UUID(c.stored.tenant_id) for c in completions],
                [uuid.UUID(c.stored.message_id) for c in completions],
                [r[0].SerializeToString() for r in records],
                [json.dumps(list(r[0].parse_problems)) for r in records],
                [json.dumps(r[2]) for r in records],
                [c.verdict.state for c in completions],
                [json.dumps([f.to_json() for f in c.verdict.findings]) for c in completions],
                [c.verdict.error for c in completions],
                [c.verdict.scanned_at for c in completions],
                now,
            )
            updated = {str(r["id"]) for r in rows}
            done = [c.stored.message_id in updated for c in completions]
            await self._insert_blobs(
                conn,
                {
                    bytes.fromhex(att.sha256): att.data
                    for c, ok in zip(completions, done, strict=True)
                    if ok
                    for att in c.parsed.attachments
                    if att.data is not None
                },
            )
            follow = [
                f
                for c, (_s, env, _d), ok in zip(completions, records, done, strict=True)
                if ok and c.followups is not None
                for f in c.followups(c.stored.message_id, env)
            ]
            await self._outbox.add_many(conn, follow)
            received = [env for (_s, env, _d), ok in zip(records, done, strict=True) if ok]
            if publish:
                await self._outbox.add_and_publish_many(conn, received)
            else:
                await self._outbox.add_many(conn, received)
            if also is not None:
                await also(conn)
        return done

    async def _record(
        self, c: Completion, now: datetime
    ) -> tuple[events_pb2.MailSummary, events_pb2.EventEnvelope, dict[str, Any]]:
        """The summary, the message.received envelope and the parsed document."""
        stored, parsed = c.stored, c.parsed
        summary = to_summary(parsed)
        if c.extra_problem:
            summary.parse_problems.append(c.extra_problem)
        if c.verdict.state:
            summary.virus.CopyFrom(c.verdict.to_pb())
        if stored.channel != "sent":  # our own mail needs nobody to vouch for it
            summary.sender_auth.CopyFrom(sender_auth(parsed, self._trusted))
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
            ticket_id=stored.ticket_id,
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
        if c.extra_problem:  # not parsed: nothing to read again later
            document["defects"] = [*document.get("defects", []), c.extra_problem]
        else:
            document = without_bodies(document)
        return summary, env, document

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
            "AND stored_at < now() - make_interval(secs => $1) "
            "ORDER BY stored_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {_ROW}, parse_attempts, sha256, raw",
            older_than_s,
            limit,
        )
        out = []
        for row in rows:
            raw = row["raw"]
            if raw is None:
                raw = await self.pool.fetchval(
                    "SELECT coalesce(data, data_plain) FROM blobs WHERE sha256 = $1", row["sha256"]
                )
            out.append((Stored.from_row(row), bytes(raw or b""), row["parse_attempts"]))
        return out

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> asyncpg.Record | None:
        return await self._db.pool.fetchrow(
            "SELECT m.id, coalesce(m.raw, b.data, b.data_plain) AS raw, m.channel, "
            "m.received_at, m.summary, m.parsed, m.state, m.scan_state, m.scan_findings, "
            "m.scan_error, m.scanned_at "
            "FROM raw_messages m LEFT JOIN blobs b ON b.sha256 = m.sha256 "
            "WHERE m.tenant_id = $1 AND m.id = $2",
            uuid.UUID(tenant_id),
            message_id,
        )

    async def keep_document(
        self, tenant_id: str, message_id: uuid.UUID, document: dict[str, Any]
    ) -> None:
        """Keep the whole parsed document of a message whose bodies were left for its first
        showing (`BODIES_PENDING`)."""
        await self._db.pool.execute(
            f"UPDATE raw_messages SET parsed = $3 WHERE tenant_id = $1 AND id = $2 "
            f"AND parsed ? '{BODIES_PENDING}'",
            uuid.UUID(tenant_id),
            message_id,
            document,
        )

    async def attachment(
        self, tenant_id: str, message_id: uuid.UUID, index: int
    ) -> asyncpg.Record | None:
        """An attachment's listing and bytes, through the tenant's own message."""
        return await self._db.pool.fetchrow(
            "SELECT a.value AS meta, coalesce(b.data, b.data_plain) AS data, m.scan_state, "
            "m.scan_findings, m.scan_error, m.scanned_at FROM raw_messages m, "
            "jsonb_array_elements(m.parsed -> 'attachments') a, blobs b "
            "WHERE m.tenant_id = $1 AND m.id = $2 AND (a.value ->> 'index')::int = $3 "
            "AND b.sha256 = decode(a.value ->> 'sha256', 'hex')",
            uuid.UUID(tenant_id),
            message_id,
            index,
        )
