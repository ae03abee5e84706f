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


async def test_a_batch_is_kept_then_recorded_with_its_events_out_and_known_mails_deduped(
    parts,  # type: ignore[no-untyped-def]
) -> None:
    db, _store, pipeline, _outbox = parts
    tenant = str(uuid.uuid4())
    inbox = common_pb2.InboxRef(id=str(uuid.uuid4()), name="Support")

    def intake(raw: bytes) -> Intake:
        return Intake(tenant, inbox, "import", raw, "", [], use_mail_date=True)

    known, first, second = _mail("Known"), _mail("First"), _mail("Second")
    [before] = await pipeline.accept([intake(known)])
    batch = await pipeline.prepare([intake(first), intake(second), intake(first), intake(known)])
    # kept, not yet recorded: a crash now leaves them to the sweeper or the resumed import
    states = await db.pool.fetch(
        "SELECT state FROM raw_messages WHERE tenant_id = $1 AND state = 'stored'",
        uuid.UUID(tenant),
    )
    assert len(states) == 2
    in_transaction: list[bool] = []

    async def also(conn) -> None:  # type: ignore[no-untyped-def]
        in_transaction.append(conn.is_in_transaction())

    accepted = await pipeline.finish(batch, also=also)
    assert in_transaction == [True]
    assert [a.duplicate for a in accepted] == [False, False, True, True]
    assert accepted[2].message_id == accepted[0].message_id
    assert (accepted[3].message_id, accepted[3].event_id) == (before.message_id, before.event_id)
    rows = await db.pool.fetch(
        "SELECT m.state, m.summary, m.parsed, o.published_at FROM raw_messages m "
        "JOIN outbox o ON o.event_id = m.event_id WHERE m.tenant_id = $1",
        uuid.UUID(tenant),
    )
    assert len(rows) == 3 and all(r["state"] == "parsed" and r["published_at"] for r in rows)
    subjects = {events_pb2.MailSummary.FromString(r["summary"]).subject for r in rows}
    assert subjects == {"Known", "First", "Second"}
    # The bodies are left for the first showing; everything else is recorded.
    doc = rows[0]["parsed"]
    assert doc["bodies_pending"] and "text" not in doc and "html" not in doc
    assert doc["attachments"][0]["filename"] == "見積書.pdf"


async def test_bytes_that_would_not_compress_are_kept_as_they_are_and_read_back_the_same(
    parts,  # type: ignore[no-untyped-def]
) -> None:
    import hashlib
    import os

    db, store, pipeline, _outbox = parts
    m = EmailMessage()
    m["From"] = "c@example.com"
    m["Subject"] = "Scan"
    m["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    m.set_content("the scan\n")
    scan = os.urandom(300_000)
    m.add_attachment(scan, maintype="application", subtype="pdf", filename="scan.pdf")
    raw = m.as_bytes()
    tenant = str(uuid.uuid4())
    [accepted] = await pipeline.accept([_intake(raw, tenant)])
    stored = await db.pool.fetch(
        "SELECT sha256, data IS NULL AS plain FROM blobs WHERE sha256 = ANY($1::bytea[])",
        [hashlib.sha256(raw).digest(), hashlib.sha256(scan).digest()],
    )
    assert [r["plain"] for r in stored] == [True, True]  # base64 and random: not compressed
    row = await store.get(tenant, uuid.UUID(accepted.message_id))
    assert bytes(row["raw"]) == raw
    attachment = await store.attachment(tenant, uuid.UUID(accepted.message_id), 0)
    assert bytes(attachment["data"]) == scan
    text = _mail("Plain text")
    await pipeline.accept([_intake(text, tenant)])
    assert not await db.pool.fetchval(
        "SELECT data IS NULL FROM blobs WHERE sha256 = $1", hashlib.sha256(text).digest()
    )


async def test_a_mail_kept_but_not_yet_parsed_is_asked_for_again_not_read_as_empty(parts) -> None:  # type: ignore[no-untyped-def]
    """message.received goes out just before the completion commits, so a quick reader
    (routing, for a rule on attachments) may ask for the mail in that moment: it is told
    to come back (UNAVAILABLE, which its consumer retries), never handed an empty
    document without the attachments."""
    import hashlib

    import grpc
    from switchboard.v1 import ingestion_pb2

    from services.ingestion.api import IngestionApi
    from services.runtime import identity
    from services.runtime.errors import Unavailable

    _db, store, pipeline, outbox = parts
    tenant = str(uuid.uuid4())
    raw = _mail("Quick reader")
    intake = _intake(raw, tenant)
    sha = hashlib.sha256(raw)
    mid, _ = quick_headers(raw)
    stored = await store.store_raw(
        intake, dedupe_key(intake.inbox.id, mid, sha.hexdigest()), sha.digest(), SystemClock().now()
    )
    # only what GetMessage reads for another service's call: the store and the pipeline
    # (the peers' channels are never dialled: another service asking needs no access check)
    unused = grpc.aio.insecure_channel("127.0.0.1:9")
    api = IngestionApi(  # type: ignore[arg-type]
        store,
        None,
        None,
        None,
        unused,
        SystemClock(),
        IdGenerator(),
        None,
        None,
        0,
        pipeline=pipeline,
        tickets=unused,
    )
    token = identity.set_current(identity.Identity(tenant_id=tenant))
    try:
        request = ingestion_pb2.GetMessageRequest(message_id=stored.message_id)
        with pytest.raises(Unavailable):
            await api.GetMessage(request, None)  # type: ignore[arg-type]
        sweeper = UnparsedSweeper(store, pipeline, outbox, SystemClock(), grace_s=0)
        assert await sweeper.sweep_once() == 1
        got = await api.GetMessage(request, None)  # type: ignore[arg-type]
    finally:
        identity.reset(token)
        await unused.close()
    import json

    names = [a["filename"] for a in json.loads(got.parsed_json)["attachments"]]
    assert names == ["見積書.pdf"]
