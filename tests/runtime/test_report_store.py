"""Reports read from reporting's rollups on a real PostgreSQL (services/reporting/
report_store.py) agree with the same reports computed straight from the facts, in a
whole-hour zone (hourly rollups), a half-hour zone (15-minute rollups), across New York's
25-hour day, for every report, wall and business time; and land hand-computed facts in the
viewer's periods."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reporting import facts_roller, periods, report_build, report_store
from services.reporting.facts import NewFact
from services.reporting.facts_store import insert_facts
from services.reporting.report_model import Query, Table
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from tests.conftest import Infra

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
TENANT = str(uuid.uuid4())
A, B = str(uuid.uuid4()), str(uuid.uuid4())
OPS = [str(uuid.uuid4()) for _ in range(3)]


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_reports_{uuid.uuid4().hex[:8]}"))
    await d.open(
        runtime_migrations() + load_migrations("reporting", "services.reporting.migrations")
    )
    facts: list[NewFact] = []
    start = datetime(2026, 10, 25, 0, 7, tzinfo=UTC)
    for i in range(600):  # every 37 minutes for about 15 days, over New York's fall-back
        at = start + timedelta(minutes=37 * i)
        inbox = (A, B)[i % 2]
        op = OPS[i % 3]
        labels = (("配送",), ("返品", "配送"), ())[i % 3]
        wall = float((i * 97) % 20000)
        common = {"tenant_id": TENANT, "at": at, "inbox_id": inbox, "labels": labels,
                  "category": ("inquiry", "complaint", "")[i % 3]}  # fmt: skip
        facts += [
            NewFact(metric="received", key=f"r{i}", **common),  # type: ignore[arg-type]
            NewFact(metric="arrival", key=f"a{i}", **common),  # type: ignore[arg-type]
            NewFact(metric="sent", key=f"s{i}", operator_id=op, **common),  # type: ignore[arg-type]
            NewFact(metric="first_reply", key=f"f{i}", operator_id=op, wall_s=wall,
                    business_s=wall / 3, **common),  # type: ignore[arg-type]
            NewFact(metric="reply", key=f"p{i}", operator_id=op, wall_s=wall / 2,
                    business_s=0.0, **common),  # type: ignore[arg-type]
        ]  # fmt: skip
        if i % 4 == 0:  # rows of several durations in one bucket, not only single ones
            facts += [
                NewFact(metric="first_reply", key=f"f{i}{n}", operator_id=op,
                        wall_s=wall + 999 * n, business_s=wall / 7 + n, **common)  # type: ignore[arg-type]
                for n in (1, 2)
            ]  # fmt: skip
        if i % 5 == 0:
            facts.append(NewFact(metric="resolution", key=f"z{i}", operator_id=op,
                                 wall_s=wall * 3, business_s=wall, **common))  # type: ignore[arg-type]  # fmt: skip
            facts.append(NewFact(metric="send_back", key=f"b{i}", operator_id=op,
                                 other_operator_id=OPS[0], wall_s=60.0, business_s=60.0,
                                 **common))  # type: ignore[arg-type]  # fmt: skip
    async with d.transaction() as conn:
        await insert_facts(conn, facts)
    while await facts_roller.roll_once(d):
        pass
    yield d
    await d.close()


def query(report: str, zone: str, frm: str, to: str, granularity: str, basis: str) -> Query:
    r = periods.report_range(frm, to, granularity, periods.zone_of(zone), NOW)
    bounds = tuple(periods.periods(r))
    return Query(report, r, bounds, basis, None, periods.source_for(list(bounds)), 2)


async def tables(db: Database, q: Query) -> tuple[Table, ...]:
    ctx = report_build.Context(thresholds={A: [(30, "#f00"), (120, "#a00")], B: [(60, "#00f")]})
    async with db.pool.acquire() as conn:
        cells = [
            c
            for want in report_build.WANTS[q.report]
            for c in await report_store.cells(conn, TENANT, q, want)
        ]
    return report_build.BUILDERS[q.report](q, cells, ctx)


@pytest.mark.parametrize("report", ["volume", "response_times", "operators", "topics"])
@pytest.mark.parametrize(
    ("zone", "granularity", "source"),
    [
        ("America/New_York", "day", periods.HOUR),
        ("Asia/Tokyo", "week", periods.HOUR),
        ("Asia/Kolkata", "day", periods.QUARTER),
        ("Asia/Kathmandu", "hour", periods.QUARTER),
    ],
)
async def test_rollups_and_facts_give_the_same_report(
    db: Database, report: str, zone: str, granularity: str, source: str
) -> None:
    for basis in ("wall", "business"):
        q = query(report, zone, "2026-10-28", "2026-11-05", granularity, basis)
        assert q.source == source
        from_rollups = await tables(db, q)
        from_facts = await tables(db, replace(q, source=periods.FACTS))
        assert from_rollups == from_facts
        assert from_rollups[1].rows[-1] != from_rollups[1].rows[0]  # something was counted


async def test_new_yorks_25_hour_day_counts_its_own_facts(db: Database) -> None:
    """1 November 2026 in New York: 04:00 UTC to 05:00 UTC the next day (25 hours)."""
    q = query("volume", "America/New_York", "2026-11-01", "2026-11-01", "day", "wall")
    ((_, start, end, received, sent),) = (await tables(db, q))[0].rows
    assert (start, end) == ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00")
    base = datetime(2026, 10, 25, 0, 7, tzinfo=UTC)
    lo, hi = datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC)
    expected = sum(1 for i in range(600) if lo <= base + timedelta(minutes=37 * i) < hi)
    assert received == sent == expected == 41  # 25 h × 60 / 37 ≈ 40.5


async def test_one_inbox_and_a_range_without_data(db: Database) -> None:
    q = query("volume", "Asia/Tokyo", "2026-10-28", "2026-11-05", "month", "wall")
    both = (await tables(db, q))[1].rows[-1]
    only_a = (await tables(db, replace(q, inbox_ids=(A,))))[1].rows[-1]
    only_b = (await tables(db, replace(q, inbox_ids=(B,))))[1].rows[-1]
    assert only_a[3] + only_b[3] == both[3] and only_a[3] > 0 and only_b[3] > 0
    empty = query("volume", "Asia/Tokyo", "2025-01-01", "2025-01-31", "week", "wall")
    rows = (await tables(db, empty))[1].rows
    assert len(rows) == 6 and all(r[3:] == (0, 0) for r in rows)  # 5 weeks cut + totals
