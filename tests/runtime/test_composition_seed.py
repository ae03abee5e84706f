"""The demo tenant's templates, phrases and signatures (services/composition/seed.py) on
real PostgreSQL: seeded once in both languages, a second run adds nothing, and what an
administrator deleted or made first stays as they left it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.composition import seed
from services.runtime.db import Database, with_database
from services.runtime.demo import DEMO_TENANT, SALES_INBOX
from services.runtime.service import service_migrations
from tests.conftest import Infra


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_cmp_{uuid.uuid4().hex[:8]}"))
    await d.open(service_migrations("composition"))
    yield d
    await d.close()


async def test_the_demo_templates_are_seeded_once_in_japanese_and_english(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.pool.acquire() as conn:
        # an administrator made one of the folders before the seed ran
        mine = uuid.uuid4()
        await conn.execute(
            "INSERT INTO folders (tenant_id, id, name, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $4)",
            DEMO_TENANT,
            mine,
            seed.FOLDERS[0].upper(),
            now,
        )
        added = await seed.seed_demo(conn, now)
        assert added == len(seed.TEMPLATES) + len(seed.FOLDERS) - 1 + len(seed.SIGNATURES)
        rows = await conn.fetch(
            "SELECT kind, name, folder_id, inbox_ids, search_text FROM templates "
            "WHERE tenant_id = $1",
            DEMO_TENANT,
        )
        names = {r["name"] for r in rows}
        assert {"配送状況のご案内", "Delivery status", "お詫び", "Apology"} <= names
        assert {r["kind"] for r in rows} == {"template", "phrase"}
        by_name = {r["name"]: r for r in rows}
        assert by_name["配送状況のご案内"]["folder_id"] == mine  # into the existing folder
        assert by_name["Quote"]["inbox_ids"] == [SALES_INBOX]
        assert "配送" in by_name["配送状況のご案内"]["search_text"]
        signatures = await conn.fetch(
            "SELECT inbox_id FROM signatures WHERE tenant_id = $1", DEMO_TENANT
        )
        assert sorted(str(s["inbox_id"]) for s in signatures) == sorted(["None", str(SALES_INBOX)])

        # a second run adds nothing, and a deleted template does not come back
        await conn.execute(
            "UPDATE templates SET deleted_at = $3 WHERE tenant_id = $1 AND name = $2",
            DEMO_TENANT,
            "Apology",
            now,
        )
        await conn.execute("DELETE FROM signatures WHERE tenant_id = $1", DEMO_TENANT)
        assert await seed.seed_demo(conn, now) == 0
        assert await conn.fetchval(
            "SELECT deleted_at IS NOT NULL FROM templates WHERE tenant_id = $1 AND name = $2",
            DEMO_TENANT,
            "Apology",
        )
        assert (
            await conn.fetchval("SELECT count(*) FROM signatures WHERE tenant_id = $1", DEMO_TENANT)
            == 0
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM templates WHERE tenant_id = $1", DEMO_TENANT
        ) == len(seed.TEMPLATES)
