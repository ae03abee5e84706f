"""Ingestion's two-step store on real PostgreSQL and NATS: a mail is kept before it is
parsed; one whose intake died between the steps is finished by the sweeper; one whose
parsing never finishes becomes a message with that problem shown; the same mail twice is
one message; attachments are stored once by content."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.ingestion.intake import IntakePipeline, UnparsedSweeper, quick_headers
from services.ingestion.store import Intake, RawStore, dedupe_key
from services.runtime.bus import Bus, default_streams
from services.runtime.clock import SystemClock
from services.runtime.db import Database, with_database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox
from services.runtime.service import service_migrations
from tests.conftest import Infra


@pytest.fixture
async def parts(infra: Infra) -> AsyncIterator[tuple[Database, RawStore, IntakePipeline, Outbox]]:
    db = Database(with_database(infra.postgres.url, f"test_ing_{uuid.uuid4().hex[:8]}"))
    await db.open(service_migrations("ingestion"))
    bus = Bus(infra.nats.url, "test-intake")
    await bus.connect()
    await bus.provision(default_streams())
    outbox = Outbox(db, bus)
    ids, clock = IdGenerator(), SystemClock()
    store = RawStore(db, outbox, ids)
    yield db, store, IntakePipeline(store, outbox, clock), outbox
    await bus.drain()
    await db.close()


def _mail(subject: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Customer <c@example.com>"
    m["Subject"] = subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    m.set_content("hello\n")
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="見積書.pdf")
    return m.as_bytes()


def _intake(raw: bytes, tenant: str) -> Intake:
    return Intake(
        tenant_id=tenant,
        inbox=common_pb2.InboxRef(id=str(uuid.uuid4()), name="Support"),
        channel="smtp",
        raw=raw,
        envelope_from="",
        envelope_recipients=[],
    )


async def test_a_mail_left_unparsed_is_finished_by_the_sweeper(parts) -> None:  # type: ignore[no-untyped-def]
    db, store, pipeline, outbox = parts
    raw = _mail("Left half-way")
    intake = _intake(raw, str(uuid.uuid4()))
    import hashlib

    sha = hashlib.sha256(raw)
    mid, _ = quick_headers(raw)
    # The intake died after keeping the bytes, before recording the parse:
    stored = await store.store_raw(
        intake, dedupe_key(intake.inbox.id, mid, sha.hexdigest()), sha.digest(), SystemClock().now()
    )
    row = await db.pool.fetchrow(
        "SELECT state, summary FROM raw_messages WHERE id = $1", uuid.UUID(stored.message_id)
    )
    assert (row["state"], row["summary"]) == ("stored", None)
    sweeper = UnparsedSweeper(store, pipeline, outbox, SystemClock(), grace_s=0)
    assert await sweeper.sweep_once() == 1
    row = await db.pool.fetchrow(
        "SELECT state, summary, parsed FROM raw_messages WHERE id = $1",
        uuid.UUID(stored.message_id),
    )
    assert row["state"] == "parsed"
    assert events_pb2.MailSummary.FromString(row["summary"]).subject == "Left half-way"
    [att] = row["parsed"]["attachments"]
    assert att["filename"] == "見積書.pdf"
    assert (
        await db.pool.fetchval(
            "SELECT data FROM blobs WHERE sha256 = decode($1, 'hex')", att["sha256"]
        )
        == b"%PDF-1.4 fake"
    )
    queued = await db.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id = $1", uuid.UUID(stored.event_id)
    )
    assert queued == 1
    assert await sweeper.sweep_once() == 0  # nothing twice


async def test_a_mail_whose_parsing_never_finishes_is_kept_with_the_problem(parts) -> None:  # type: ignore[no-untyped-def]
    db, store, pipeline, outbox = parts
    raw = _mail("Parser killer")
    intake = _intake(raw, str(uuid.uuid4()))
    import hashlib

    sha = hashlib.sha256(raw)
    stored = await store.store_raw(
        intake, f"sha:{sha.hexdigest()}", sha.digest(), SystemClock().now()
    )
    await db.pool.execute(
        "UPDATE raw_messages SET parse_attempts = 3 WHERE id = $1", uuid.UUID(stored.message_id)
    )
    sweeper = UnparsedSweeper(store, pipeline, outbox, SystemClock(), grace_s=0)
    assert await sweeper.sweep_once() == 1
    row = await db.pool.fetchrow(
        "SELECT state, parse_problems FROM raw_messages WHERE id = $1", uuid.UUID(stored.message_id)
    )
    assert row["state"] == "parsed"
    assert "could not be parsed (3 attempts did not finish)" in row["parse_problems"]
    raw_back = await store.get(intake.tenant_id, uuid.UUID(stored.message_id))
    assert bytes(raw_back["raw"]) == raw  # the bytes are kept whatever happened


async def test_the_same_mail_twice_is_one_message_and_blobs_are_shared(parts) -> None:  # type: ignore[no-untyped-def]
    db, _store, pipeline, _outbox = parts
    raw = _mail("Twice")
    tenant = str(uuid.uuid4())
    intake = _intake(raw, tenant)
    [first] = await pipeline.accept([intake])
    [second] = await pipeline.accept([intake])
    assert not first.duplicate and second.duplicate
    assert (second.message_id, second.event_id) == (first.message_id, first.event_id)
    other_tenant = await pipeline.accept([_intake(raw, str(uuid.uuid4()))])
    assert not other_tenant[0].duplicate  # another tenant: its own message …
    assert (
        await db.pool.fetchval("SELECT count(*) FROM blobs WHERE size_bytes = $1", len(raw)) == 1
    )  # … same bytes
    assert await db.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
