"""The suppression list on real PostgreSQL (issue 20, OUT-6): per tenant, lower-cased,
the first entry kept; an unsubscribe that adds an address queues exactly one
`contact.unsubscribed` in the same transaction; search and cursor paging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from switchboard.v1 import events_pb2

from services.outbound import suppression
from services.runtime.db import Database, with_database
from services.runtime.errors import InvalidArgument
from services.runtime.service import service_migrations
from tests.conftest import Infra


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    db = Database(with_database(infra.postgres.url, f"test_sup_{uuid.uuid4().hex[:8]}"))
    await db.open(service_migrations("outbound"))
    yield db
    await db.close()


async def _events(db: Database, tenant: str) -> list[events_pb2.EventEnvelope]:
    rows = await db.pool.fetch(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND subject = $2",
        uuid.UUID(tenant),
        "sb.outbound.contact.unsubscribed",
    )
    return [events_pb2.EventEnvelope.FromString(r["payload"]) for r in rows]


async def test_suppress_is_per_tenant_idempotent_and_announces_an_unsubscribe_once(
    db: Database,
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    campaign, recipient = uuid.uuid4(), uuid.uuid4()
    async with db.transaction() as conn:
        assert await suppression.suppress(
            conn,
            a,
            "Taro@Example.JP",
            "unsubscribed",
            campaign_id=campaign,
            recipient_id=str(recipient),
            language="ja",
        )
        assert not await suppression.suppress(conn, a, "taro@example.jp", "manual")
        assert await suppression.suppress(conn, a, "bounce@example.com", "bounced")
    async with db.transaction() as conn:
        assert not await suppression.suppress(conn, a, "TARO@example.jp", "unsubscribed")
    got = await suppression.suppressed_among(
        db.pool, a, ["taro@EXAMPLE.jp", "other@example.com", "Bounce@example.com", ""]
    )
    assert got == {"taro@example.jp", "bounce@example.com"}
    assert await suppression.suppressed_among(db.pool, b, ["taro@example.jp"]) == set()
    (env,) = await _events(db, a)
    p = env.contact_unsubscribed
    assert (p.address, p.campaign_id, p.recipient_id, p.language) == (
        "taro@example.jp",
        str(campaign),
        str(recipient),
        "ja",
    )
    rows, _ = await suppression.list_suppressions(db.pool, a)
    first = next(r for r in rows if r.address == "taro@example.jp")
    assert first.reason == "unsubscribed" and first.campaign_id == campaign
    assert await suppression.unsuppress(db.pool, a, "Taro@example.jp")
    assert not await suppression.unsuppress(db.pool, a, "taro@example.jp")
    with pytest.raises(InvalidArgument):
        async with db.transaction() as conn:
            await suppression.suppress(conn, a, "not an address", "manual")


async def test_the_list_is_searched_and_paged_newest_first(db: Database) -> None:
    tenant = str(uuid.uuid4())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.transaction() as conn:
        for n in range(7):
            await suppression.suppress(
                conn,
                tenant,
                f"user{n}@example.com",
                "manual",
                now=start + timedelta(minutes=n // 2),
            )
        await suppression.suppress(conn, tenant, "x_y@other.jp", "manual", now=start)
    seen: list[str] = []
    cursor = ""
    while True:
        rows, cursor = await suppression.list_suppressions(db.pool, tenant, cursor=cursor, limit=3)
        seen += [r.address for r in rows]
        if not cursor:
            break
    assert len(seen) == 8 and len(set(seen)) == 8
    assert seen[0] == "user6@example.com"
    rows, cursor = await suppression.list_suppressions(db.pool, tenant, query="_Y@")
    assert [r.address for r in rows] == ["x_y@other.jp"] and cursor == ""
    rows, _ = await suppression.list_suppressions(db.pool, tenant, query="%")
    assert rows == []
    with pytest.raises(InvalidArgument):
        await suppression.list_suppressions(db.pool, tenant, cursor="garbage!")
