"""Reporting's rollups on real PostgreSQL (issue 19 §2): the bulk path writes facts by COPY
and folds them once (a chunk written twice counts once); the roller folds queued facts
into their own buckets; the SQL histogram sum agrees with histogram.py; the audit finds a
tampered row and the rebuild repairs it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.reporting import commands, histogram, rollup_audit, rollups
from services.reporting.facts import NewFact
from services.reporting.facts_bulk import write_facts
from services.reporting.facts_roller import roll_once
from services.reporting.facts_store import insert_facts
from services.runtime.db import Database, with_database
from services.runtime.service import service_migrations
from tests.conftest import Infra

TENANT, INBOX, ALICE = (str(uuid.uuid4()) for _ in range(3))
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_rpt_{uuid.uuid4().hex[:8]}"))
    await d.open(service_migrations("reporting"))
    yield d
    await d.close()


def _reply(n: int, at: datetime, wall: float, labels: tuple[str, ...] = ()) -> NewFact:
    return NewFact(
        TENANT, "reply", f"r{n}", at, INBOX, operator_id=ALICE, labels=labels, channel="smtp",
        wall_s=wall, business_s=wall / 2,
    )  # fmt: skip


async def test_the_bulk_path_folds_each_fact_once(db: Database) -> None:
    chunk = [_reply(n, T0 + timedelta(minutes=n), 60.0 * n, ("返品",)) for n in range(100)]
    async with db.transaction() as conn:
        assert await write_facts(conn, chunk) == 100
    async with db.transaction() as conn:
        assert await write_facts(conn, chunk[:10]) == 0  # written twice: nothing new
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT bucket, count, sum_wall, hist_wall FROM rollups_hour WHERE dimension = '' "
            "ORDER BY bucket"
        )
        # 60 facts in the 09:00 hour (0..59 minutes), 40 in the 10:00 hour
        assert [(r["bucket"], r["count"]) for r in rows] == [
            (T0, 60),
            (T0 + timedelta(hours=1), 40),
        ]
        assert rows[0]["sum_wall"] == sum(60.0 * n for n in range(60))
        assert list(rows[0]["hist_wall"]) == histogram.of([60.0 * n for n in range(60)])
        summed = await conn.fetchval(
            "SELECT hist_sum(hist_wall) FROM rollups_hour WHERE dimension = 'label' "
            "AND value = '返品'"
        )
        assert list(summed) == histogram.of([60.0 * n for n in range(100)])
        assert await conn.fetchval("SELECT count(*) FROM facts_unrolled") == 0


async def test_the_roller_folds_queued_facts_into_their_own_buckets(db: Database) -> None:
    late = T0 - timedelta(days=30)
    async with db.transaction() as conn:
        assert await insert_facts(conn, [_reply(1, T0, 30.0), _reply(2, late, 90.0)]) == 2
        assert await insert_facts(conn, [_reply(1, T0, 30.0)]) == 0
    assert await roll_once(db) == 2
    assert await roll_once(db) == 0
    async with db.pool.acquire() as conn:
        got = await conn.fetch(
            "SELECT bucket, count FROM rollups_15m WHERE dimension = 'operator' ORDER BY bucket"
        )
        assert [(r["bucket"], r["count"]) for r in got] == [(late, 1), (T0, 1)]


async def test_the_audit_finds_a_tampered_row_and_the_rebuild_repairs_it(db: Database) -> None:
    async with db.transaction() as conn:
        await write_facts(conn, [_reply(n, T0 + timedelta(hours=n), 100.0) for n in range(5)])
    async with db.pool.acquire() as conn:
        await conn.execute(
            "UPDATE rollups_hour SET sum_wall = 1 WHERE bucket = $1 AND dimension = ''", T0
        )
        async with conn.transaction():
            expected = await rollup_audit.from_facts(conn, TENANT, "hour")
            found = await rollup_audit.stored(conn, TENANT, "hour")
        [line] = rollup_audit.differences(expected, found)
        assert "reply 2025-01-06T09:00:00+00:00" in line and "wall 100 s" in line
        # a rebuild of one hour's range touches only that hour
        # (its total, operator and channel rows, hourly and of 15 minutes)
        assert await commands.rebuild(conn, TENANT, T0, T0 + timedelta(hours=1)) == 6
        found = await rollup_audit.stored(conn, TENANT, "hour")
        assert rollup_audit.differences(expected, found) == []


async def test_the_fold_in_sql_makes_the_rows_the_python_fold_makes(db: Database) -> None:
    """A bulk load folds its facts in PostgreSQL (rollups.fold_in_sql): the same rows,
    sums and histograms as `deltas` — dimensions (a label twice, an empty label, no
    operator), count-only facts, durations on, below and between the histogram's edges,
    business time missing, quarters and hours."""
    bob = str(uuid.uuid4())
    walls = [None, -5.0, 0.0, 59.0, 60.0, 61.5, 3600.0, 86400.0 * 100, *histogram.EDGES_S]
    chunk = [
        NewFact(
            TENANT, "reply" if wall is not None else "received", f"k{n}",
            T0 + timedelta(minutes=7 * n), INBOX,
            operator_id=(ALICE, bob, None)[n % 3],
            labels=(("返品", "返品", ""), (), ("VIP",))[n % 3],
            channel=("smtp", "")[n % 2], category=("", "請求")[n % 2],
            priority=("normal", "", "high")[n % 3],
            wall_s=wall, business_s=None if n % 4 == 0 else 7.0 if wall is None else wall / 3,
        )
        for n, wall in enumerate(walls * 3)
    ]  # fmt: skip
    async with db.transaction() as conn:
        assert await write_facts(conn, chunk, fold=False) == len(chunk)
        assert await conn.fetchval("SELECT count(*) FROM rollups_hour") == 0
        await rollups.fold_in_sql(conn, TENANT, T0 - timedelta(days=1), T0 + timedelta(days=2))
        for grain in rollups.GRAINS:
            expected = await rollup_audit.from_facts(conn, TENANT, grain)
            found = await rollup_audit.stored(conn, TENANT, grain)
            assert len(found) > len(chunk) and rollup_audit.differences(expected, found) == []
