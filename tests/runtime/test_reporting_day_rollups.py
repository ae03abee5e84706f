"""The calendar rollups on a real PostgreSQL (issue 19; services/reporting/day_rollups.py):
daily, weekly and monthly rows in the tenant's zone agree with the facts and with the
hourly rollups — every report, day / week / month, whole and cut weeks and months, wall
and business time, across a Tokyo day boundary and New York's 25-hour day — whichever
path folded them (the roller, the SQL fold, the rebuild);
a late fact lands in its own local day, a redelivered one counts once, a zone change
rebuilds the days; a report in another zone reads the hourly rollups."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from services.reporting import (
    commands,
    day_rollups,
    facts_roller,
    periods,
    report_build,
    report_store,
    rollup_audit,
    rollups,
)
from services.reporting.facts import NewFact
from services.reporting.facts_store import insert_facts
from services.reporting.report_model import Query, Table
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from tests.conftest import Infra

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
TOKYO, NEW_YORK = "Asia/Tokyo", "America/New_York"
A, B = str(uuid.uuid4()), str(uuid.uuid4())
OPS = [str(uuid.uuid4()) for _ in range(3)]


def _facts(tenant: str, n: int = 400) -> list[NewFact]:
    out: list[NewFact] = []
    start = datetime(2026, 10, 27, 0, 7, tzinfo=UTC)
    for i in range(n):  # every 53 minutes for about 15 days, over New York's fall-back
        at = start + timedelta(minutes=53 * i)
        op = OPS[i % 3]
        wall = float((i * 97) % 20000)
        common = {"tenant_id": tenant, "at": at, "inbox_id": (A, B)[i % 2],
                  "labels": (("配送",), ("返品", "配送"), ())[i % 3],
                  "category": ("inquiry", "complaint", "")[i % 3]}  # fmt: skip
        out += [
            NewFact(metric="received", key=f"r{i}", **common),  # type: ignore[arg-type]
            NewFact(metric="arrival", key=f"a{i}", **common),  # type: ignore[arg-type]
            NewFact(metric="sent", key=f"s{i}", operator_id=op, **common),  # type: ignore[arg-type]
            NewFact(metric="first_reply", key=f"f{i}", operator_id=op, wall_s=wall,
                    business_s=wall / 3, **common),  # type: ignore[arg-type]
            NewFact(metric="reply", key=f"p{i}", operator_id=op, wall_s=wall / 2,
                    business_s=0.0, **common),  # type: ignore[arg-type]
        ]  # fmt: skip
        if i % 5 == 0:
            out.append(NewFact(metric="resolution", key=f"z{i}", operator_id=op,
                               wall_s=wall * 3, business_s=wall, **common))  # type: ignore[arg-type]  # fmt: skip
    return out


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_days_{uuid.uuid4().hex[:8]}"))
    await d.open(
        runtime_migrations() + load_migrations("reporting", "services.reporting.migrations")
    )
    yield d
    await d.close()


async def _roll(db: Database) -> None:
    while await facts_roller.roll_once(db):
        pass


async def _tenant(db: Database, zone: str, *, zone_first: bool) -> str:
    """A tenant with the facts; its zone learned before the facts came (the roller folds
    the days) or after (a rebuild makes them)."""
    tenant = str(uuid.uuid4())
    async with db.pool.acquire() as conn:
        if zone_first:
            assert not await day_rollups.learn(conn, tenant, zone)
            assert await day_rollups.rebuild(conn, tenant, zone) == 0
    async with db.transaction() as conn:
        await insert_facts(conn, _facts(tenant))
    await _roll(db)
    if not zone_first:
        async with db.pool.acquire() as conn:
            assert not await day_rollups.learn(conn, tenant, zone)
            assert await day_rollups.rebuild(conn, tenant, zone)
    async with db.pool.acquire() as conn:
        assert await day_rollups.ready_for(conn, tenant, zone)
    return tenant


CUT = ("2026-10-29", "2026-11-08")  # weeks and months cut to the range
WHOLE = {"day": CUT, "week": ("2026-10-26", "2026-11-15"), "month": ("2026-10-01", "2026-12-31")}


def query(
    report: str, zone: str, granularity: str, basis: str, day_zone: str, span: tuple[str, str] = CUT
) -> Query:
    r = periods.report_range(*span, granularity, periods.zone_of(zone), NOW)
    bounds = list(periods.periods(r))
    days = periods.zone_of(day_zone) if day_zone == zone else None
    return Query(report, r, tuple(bounds), basis, None, periods.source_for(bounds, days), 2)


async def tables(db: Database, tenant: str, q: Query) -> tuple[Table, ...]:
    ctx = report_build.Context(thresholds={A: [(30, "#f00"), (120, "#a00")], B: [(60, "#00f")]})
    async with db.pool.acquire() as conn:
        cells = [
            c
            for want in report_build.WANTS[q.report]
            for c in await report_store.cells(conn, tenant, q, want)
        ]
    return report_build.BUILDERS[q.report](q, cells, ctx)


async def _agrees(db: Database, tenant: str, zone: str) -> None:
    """The stored calendar rows are what the facts make (rollup_audit, as `check` does)."""
    for grain in rollups.LOCAL:
        async with db.pool.acquire() as conn, conn.transaction():
            expected = await rollup_audit.from_facts(conn, tenant, grain, zone=zone)
            found = await rollup_audit.stored(conn, tenant, grain)
        assert len(found) > 50 and rollup_audit.differences(expected, found) == [], grain


@pytest.mark.parametrize("zone_first", [True, False])
@pytest.mark.parametrize("zone", [TOKYO, NEW_YORK])
async def test_day_rollups_give_the_reports_of_the_hourly_rollups_and_the_facts(
    db: Database, zone: str, zone_first: bool
) -> None:
    tenant = await _tenant(db, zone, zone_first=zone_first)
    await _agrees(db, tenant, zone)
    for report, granularity, span in [
        (r, g, span) for r in report_build.WANTS for g in WHOLE for span in {CUT, WHOLE[g]}
    ]:
        for basis in ("wall", "business"):
            q = query(report, zone, granularity, basis, zone, span)
            assert q.source == periods.DAY
            tables_used = {t for _, _, t in report_store.calendar_runs(q)}
            if granularity != "day" and span == WHOLE[granularity]:
                assert tables_used == {rollups.TABLES[granularity]}
            elif granularity != "day":  # the cut ends from the days, whole ones not
                assert "rollups_day" in tables_used
            from_days = await tables(db, tenant, q)
            assert from_days == await tables(db, tenant, replace(q, source=periods.HOUR))
            assert from_days == await tables(db, tenant, replace(q, source=periods.FACTS))
            assert from_days[1].rows[-1] != from_days[1].rows[0]  # something counted


async def test_a_report_in_another_zone_reads_the_hourly_rollups(db: Database) -> None:
    tenant = await _tenant(db, TOKYO, zone_first=False)
    q = query("volume", NEW_YORK, "day", "wall", TOKYO)
    assert q.source == periods.HOUR
    assert query("volume", TOKYO, "hour", "wall", TOKYO).source == periods.HOUR
    # New York's 25-hour 1 November from the hourly rows, the facts agreeing
    rows = (await tables(db, tenant, q))[0].rows
    day = next(r for r in rows if r[0] == "2026-11-01")
    assert (day[1], day[2]) == ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00")
    assert (await tables(db, tenant, replace(q, source=periods.FACTS)))[0].rows == rows


async def test_a_late_fact_lands_in_its_day_and_a_redelivered_one_counts_once(
    db: Database,
) -> None:
    tenant = await _tenant(db, TOKYO, zone_first=True)
    q = query("volume", TOKYO, "day", "wall", TOKYO)

    async def received_on(day: str) -> int:
        rows = (await tables(db, tenant, q))[0].rows
        return int(next(r for r in rows if r[0] == day)[3])  # type: ignore[arg-type]

    before_1, before_2 = await received_on("2026-11-01"), await received_on("2026-11-02")
    # 23:59:30 on 1 November in Tokyo is 14:59:30 UTC; 15:00 UTC is already the 2nd
    late = [
        NewFact(tenant_id=tenant, metric="received", key="late-1", inbox_id=A,
                at=datetime(2026, 11, 1, 14, 59, 30, tzinfo=UTC)),
        NewFact(tenant_id=tenant, metric="received", key="late-2", inbox_id=A,
                at=datetime(2026, 11, 1, 15, 0, tzinfo=UTC)),
    ]  # fmt: skip
    for _ in range(2):  # delivered twice
        async with db.transaction() as conn:
            await insert_facts(conn, late)
        await _roll(db)
    assert await received_on("2026-11-01") == before_1 + 1
    assert await received_on("2026-11-02") == before_2 + 1
    await _agrees(db, tenant, TOKYO)


async def test_a_zone_change_rebuilds_the_days(db: Database) -> None:
    tenant = await _tenant(db, TOKYO, zone_first=True)
    async with db.pool.acquire() as conn:
        assert not await day_rollups.learn(conn, tenant, NEW_YORK)
        # until rebuilt: neither zone is ready, reports read the hourly rollups
        assert not await day_rollups.ready_for(conn, tenant, NEW_YORK)
        assert not await day_rollups.ready_for(conn, tenant, TOKYO)
        assert await day_rollups.zone_of(conn, tenant) == ""
        assert await day_rollups.rebuild(conn, tenant, NEW_YORK)
        assert await day_rollups.rebuild(conn, tenant, NEW_YORK) is None  # done already
        assert await day_rollups.zone_of(conn, tenant) == NEW_YORK
        assert await conn.fetchval(
            "SELECT count(*) FROM rollups_day WHERE tenant_id = $1 AND bucket = $2",
            uuid.UUID(tenant),
            date(2026, 10, 26),  # the first fact, 00:07 UTC on the 27th, in New York
        )
    await _agrees(db, tenant, NEW_YORK)


async def test_the_rebuild_command_repairs_a_day_row_and_sql_fold_agrees(db: Database) -> None:
    """A tampered day row repaired by `rebuild` of a few hours in it; the bulk path's SQL
    fold of whole local months (days, months) and of weeks from a Monday makes the rows
    the roller's fold made."""
    tenant = await _tenant(db, TOKYO, zone_first=True)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "UPDATE rollups_day SET count = count + 5 WHERE tenant_id = $1 AND bucket = $2",
            uuid.UUID(tenant),
            date(2026, 11, 1),
        )
        # the whole hours around Tokyo's 1 November: its day rows are made again
        await commands.rebuild(
            conn, tenant, datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 1, 4, tzinfo=UTC)
        )
    await _agrees(db, tenant, TOKYO)
    tz = periods.zone_of(TOKYO)
    async with db.transaction() as conn:
        before = {g: await rollup_audit.stored(conn, tenant, g) for g in rollups.LOCAL}
        for grain in rollups.LOCAL:
            await conn.execute(
                f"DELETE FROM {rollups.TABLES[grain]} WHERE tenant_id = $1", uuid.UUID(tenant)
            )
        months = [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)]
        for lo, hi in pairwise(months):  # as seed_scale.fold_ranges
            await rollups.fold_in_sql(
                conn, tenant, periods.local_midnight(lo, tz), periods.local_midnight(hi, tz),
                fresh=True, grains=(rollups.DAY, rollups.MONTH), zone=TOKYO,
            )  # fmt: skip
        monday = date(2026, 10, 19)
        for k in range(2):
            start = periods.local_midnight(monday + timedelta(days=28 * k), tz)
            await rollups.fold_in_sql(
                conn, tenant, start, start + timedelta(days=28), fresh=True,
                grains=(rollups.WEEK,), zone=TOKYO,
            )  # fmt: skip
        for grain in rollups.LOCAL:
            after = await rollup_audit.stored(conn, tenant, grain)
            assert rollup_audit.differences(before[grain], after) == [], grain
