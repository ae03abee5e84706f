"""The campaign finisher on real PostgreSQL (issue 20, OUT-6): a campaign mail whose send
an operator cancelled in the outbox leaves its recipient `cancelled` (not `queued`
forever), so that the campaign still completes; a sent one `sent`, an unknown one
`failed` with why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.outbound.campaign_mail import CampaignFinish
from services.outbound.campaign_repo import CampaignRepo
from services.runtime.clock import ManualClock
from services.runtime.db import Database, with_database
from services.runtime.service import service_migrations
from tests.conftest import Infra

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    db = Database(with_database(infra.postgres.url, f"test_cfin_{uuid.uuid4().hex[:8]}"))
    await db.open(service_migrations("outbound"))
    yield db
    await db.close()


async def _campaign(db: Database, tenant: uuid.UUID, sends: Sequence[str]) -> uuid.UUID:
    """A running campaign, its snapshot done, one queued recipient per send state."""
    campaign = uuid.uuid4()
    await db.pool.execute(
        "INSERT INTO campaigns (tenant_id, id, name, inbox_id, subject, body, list_id, state, "
        "snapshot_done, created_at, updated_at, started_at) VALUES ($1, $2, 'c', $3, 's', "
        "'b', $4, 'running', true, $5, $5, $5)",
        tenant,
        campaign,
        uuid.uuid4(),
        uuid.uuid4(),
        NOW,
    )
    for i, state in enumerate(sends):
        send = uuid.uuid4()
        await db.pool.execute(
            "INSERT INTO sends (tenant_id, id, kind, inbox_id, state, message_id, "
            "envelope_from, recipients, raw, send_at, next_attempt_at, max_attempts, "
            "last_message, updated_at, created_at) VALUES ($1, $2, 'campaign', $3, $4, $5, "
            "'help@example.jp', $6, '', $7, $7, 3, $8, $7, $7)",
            tenant,
            send,
            uuid.uuid4(),
            state,
            f"<m{i}@example.jp>",
            [f"r{i}@example.com"],
            NOW,
            "421 try later" if state == "unknown" else "",
        )
        await db.pool.execute(
            "INSERT INTO campaign_recipients (tenant_id, id, campaign_id, contact_id, address, "
            "domain, state, not_before, send_id, updated_at) VALUES ($1, $2, $3, $4, $5, "
            "'example.com', 'queued', $6, $7, $6)",
            tenant,
            uuid.uuid4(),
            campaign,
            uuid.uuid4(),
            f"r{i}@example.com",
            NOW,
            send,
        )
    return campaign


async def test_a_cancelled_campaign_send_ends_its_recipient_and_the_campaign_completes(
    db: Database,
) -> None:
    tenant = uuid.uuid4()
    campaign = await _campaign(db, tenant, ["sent", "cancelled", "unknown"])
    touched: list[uuid.UUID] = []

    async def note(ids: Sequence[uuid.UUID]) -> None:
        touched.extend(ids)

    deps: Any = SimpleNamespace(db=db)  # the finisher reads only the database
    finish = CampaignFinish(deps, ManualClock(NOW), note)
    await finish.step()
    rows = await db.pool.fetch(
        "SELECT address, state, error FROM campaign_recipients WHERE campaign_id = $1 "
        "ORDER BY address",
        campaign,
    )
    got = [(r["address"], r["state"]) for r in rows]
    assert got == [
        ("r0@example.com", "sent"),
        ("r1@example.com", "cancelled"),
        ("r2@example.com", "failed"),
    ]
    assert "cancelled" in rows[1]["error"] and "unknown" in rows[2]["error"]
    assert touched == [campaign]
    async with db.transaction() as conn:
        done = await CampaignRepo(db.pool).complete_if_done(conn, [campaign], NOW)
    assert [c.id for c in done] == [campaign]


async def test_cancelling_a_campaign_cancels_its_mails_still_waiting_in_the_outbox(
    db: Database,
) -> None:
    """Pending recipients and queued ones whose mails no sender has taken yet are
    cancelled; a mail being sent is left to finish."""
    tenant = uuid.uuid4()
    campaign = await _campaign(db, tenant, ["scheduled", "retrying", "sending"])
    await db.pool.execute(
        "INSERT INTO campaign_recipients (tenant_id, id, campaign_id, contact_id, address, "
        "domain, state, not_before, updated_at) VALUES ($1, $2, $3, $4, 'later@example.com', "
        "'example.com', 'pending', $5, $5)",
        tenant,
        uuid.uuid4(),
        campaign,
        uuid.uuid4(),
        NOW,
    )
    async with db.transaction() as conn:
        await CampaignRepo(db.pool).cancel_pending(conn, campaign, NOW)
    sends = await db.pool.fetch(
        "SELECT s.state FROM sends s JOIN campaign_recipients r ON r.send_id = s.id "
        "WHERE r.campaign_id = $1 ORDER BY r.address",
        campaign,
    )
    assert [r["state"] for r in sends] == ["cancelled", "cancelled", "sending"]

    async def note(ids: Sequence[uuid.UUID]) -> None:
        pass

    deps: Any = SimpleNamespace(db=db)
    await CampaignFinish(deps, ManualClock(NOW), note).step()
    rows = await db.pool.fetch(
        "SELECT address, state, error FROM campaign_recipients WHERE campaign_id = $1 "
        "ORDER BY address",
        campaign,
    )
    assert [(r["address"], r["state"]) for r in rows] == [
        ("later@example.com", "cancelled"),
        ("r0@example.com", "cancelled"),
        ("r1@example.com", "cancelled"),
        ("r2@example.com", "queued"),
    ]
    assert rows[1]["error"] == "the campaign was cancelled"
