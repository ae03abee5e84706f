"""Ingestion's bulk path (platform tooling: `make seed-scale`): mails kept as intake keeps
them, written with COPY — the raw bytes content-addressed in `blobs`, a `raw_messages` row
in state `parsed` with the MailSummary and the parsed document (without its bodies, parsed
again on first showing, like intake's) from this service's own parser, the dedupe key of
`store.dedupe_key`.

Unlike intake it publishes no `message.received`: the mails of a bulk load are filed by
tickets' own bulk path (services/tickets/bulk.py) from the summaries returned here, so no
consumer sees them as new mail. Mails must be new to the database (COPY does not skip a
duplicate: a second load of the same mails fails on the unique keys and writes nothing).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime.bulk import copy_records

from .parser import parse, sender_auth, to_summary
from .store import dedupe_key, without_bodies


@dataclass(frozen=True)
class BulkMail:
    id: uuid.UUID
    event_id: uuid.UUID  # its message.received's id, were it announced
    inbox_id: uuid.UUID
    inbox_name: str
    channel: str  # "email" received, "sent" one of ours (with its ticket)
    raw: bytes
    envelope_from: str
    envelope_recipients: tuple[str, ...]
    received_at: datetime
    ticket_id: uuid.UUID | None = None


_COLUMNS = [
    "id",
    "tenant_id",
    "inbox_id",
    "inbox_name",
    "channel",
    "sha256",
    "size_bytes",
    "envelope_from",
    "envelope_recipients",
    "summary",
    "parse_problems",
    "event_id",
    "received_at",
    "state",
    "parsed",
    "dedupe_key",
    "stored_at",
    "ticket_id",
]


def summarise(mail: BulkMail) -> tuple[events_pb2.MailSummary, dict[str, Any]]:
    """A mail's summary as intake records it, and its parsed document as kept."""
    parsed = parse(mail.raw, defer_html=True)
    summary = to_summary(parsed)
    if mail.channel != "sent":
        summary.sender_auth.CopyFrom(sender_auth(parsed, frozenset()))
    return summary, without_bodies(parsed.to_json())


@dataclass(frozen=True)
class Prepared:
    """A batch's rows, made off the database (`prepare`) and written by `write`."""

    summaries: list[events_pb2.MailSummary]
    blobs: list[tuple[object, ...]]
    rows: list[tuple[object, ...]]


def prepare(tenant_id: uuid.UUID, mails: Sequence[BulkMail]) -> Prepared:
    """Parse `mails` and make their rows (CPU only: a thread may do it meanwhile)."""
    out = Prepared([], [], [])
    for m in mails:
        summary, document = summarise(m)
        out.summaries.append(summary)
        sha = hashlib.sha256(m.raw).digest()
        out.blobs.append((sha, len(m.raw), m.raw))
        out.rows.append(
            (
                m.id,
                tenant_id,
                m.inbox_id,
                m.inbox_name,
                m.channel,
                sha,
                len(m.raw),
                m.envelope_from,
                list(m.envelope_recipients),
                summary.SerializeToString(),
                list(summary.parse_problems),
                m.event_id,
                m.received_at,
                "parsed",
                document,
                dedupe_key(str(m.inbox_id), summary.rfc822_message_id, sha.hex()),
                m.received_at,
                m.ticket_id,
            )
        )
    return out


async def write(conn: asyncpg.Connection, prepared: Prepared) -> None:
    """Write a prepared batch (in the caller's transaction, if any). `conn` is one of the
    service's pool (runtime/db.py: jsonb taken as Python values)."""
    await copy_records(conn, "blobs", ["sha256", "size_bytes", "data"], prepared.blobs)
    await copy_records(conn, "raw_messages", _COLUMNS, prepared.rows, json_columns=["parsed"])


async def bulk_load(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, mails: Sequence[BulkMail]
) -> list[events_pb2.MailSummary]:
    """Keep `mails`: `prepare` and `write`; their summaries, in order."""
    prepared = prepare(tenant_id, mails)
    await write(conn, prepared)
    return prepared.summaries
