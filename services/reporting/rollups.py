"""Folding facts into the rollups (issue 19 §2): per tenant × bucket (UTC hour and 15
minutes) × metric × inbox × dimension, a count, wall and business sums and their
histograms (histogram.py). `deltas` is the I/O-free sum of some facts; `apply` adds it
to the tables (histograms element-wise, `hist_add`), keys in one order so that two
rollers never wait on each other in a circle. Every path that folds goes through these
two: the roller (facts_roller.py), the bulk path, the rebuild and the check — except a
bulk load's, which folds its facts once written with `fold_in_sql`: the same sums made
by PostgreSQL, and tested to agree with `deltas`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from . import histogram

GRAINS = ("hour", "15m")
TABLES = {"hour": "rollups_hour", "15m": "rollups_15m"}
DIMENSIONS = ("", "operator", "label", "category", "channel", "priority")


@dataclass(frozen=True, slots=True)
class FoldFact:
    """What the rollups need of a fact."""

    tenant_id: str
    metric: str
    at: datetime
    inbox_id: str
    operator_id: str | None
    channel: str
    category: str
    priority: str
    labels: tuple[str, ...]
    wall_s: float | None
    business_s: float | None


# (tenant, metric, dimension, bucket, inbox, value)
Key = tuple[str, str, str, datetime, str, str]


@dataclass(slots=True)
class Agg:
    count: int = 0
    sum_wall: float = 0.0
    sum_business: float = 0.0
    hist_wall: list[int] = field(default_factory=list)
    hist_business: list[int] = field(default_factory=list)

    def add(self, wall: float | None, business: float | None) -> None:
        self.count += 1
        if wall is None:
            return
        b = wall if business is None else business
        self.sum_wall += wall
        self.sum_business += b
        if not self.hist_wall:
            self.hist_wall, self.hist_business = histogram.empty(), histogram.empty()
        self.hist_wall[histogram.bucket_of(wall)] += 1
        self.hist_business[histogram.bucket_of(b)] += 1


def bucket(at: datetime, grain: str) -> datetime:
    at = at.astimezone(UTC)
    hour = at.replace(minute=0, second=0, microsecond=0)
    if grain == "hour":
        return hour
    return hour + timedelta(minutes=at.minute // 15 * 15)


def _values(f: FoldFact) -> Iterable[tuple[str, str]]:
    yield "", ""
    if f.operator_id:
        yield "operator", f.operator_id
    for label in dict.fromkeys(f.labels):
        if label:
            yield "label", label
    if f.category:
        yield "category", f.category
    if f.channel:
        yield "channel", f.channel
    if f.priority:
        yield "priority", f.priority


def deltas(facts: Iterable[FoldFact], grain: str) -> dict[Key, Agg]:
    out: dict[Key, Agg] = {}
    for f in facts:
        b = bucket(f.at, grain)
        for dim, value in _values(f):
            key = (f.tenant_id, f.metric, dim, b, f.inbox_id, value)
            agg = out.get(key)
            if agg is None:
                agg = out[key] = Agg()
            agg.add(f.wall_s, f.business_s)
    return out


def _hist_text(h: list[int]) -> str:
    return "{" + ",".join(map(str, h)) + "}"


async def apply(conn: asyncpg.Connection, grain: str, found: dict[Key, Agg]) -> None:
    """Add the deltas to the grain's table (in the caller's transaction)."""
    if not found:
        return
    keys = sorted(found)
    cols: list[list[object]] = [[] for _ in range(11)]
    for k in keys:
        a = found[k]
        row = (*k, a.count, a.sum_wall, a.sum_business)
        for i, v in enumerate(row):
            cols[i].append(v)
        cols[9].append(_hist_text(a.hist_wall))
        cols[10].append(_hist_text(a.hist_business))
    table = TABLES[grain]
    await conn.execute(
        f"""INSERT INTO {table} AS r (tenant_id, metric, dimension, bucket, inbox_id, value,
                count, sum_wall, sum_business, hist_wall, hist_business)
            SELECT t, m, d, b, i, v, c, sw, sb, hw::integer[], hb::integer[]
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[],
                        $6::text[], $7::bigint[], $8::float8[], $9::float8[], $10::text[],
                        $11::text[]) AS x(t, m, d, b, i, v, c, sw, sb, hw, hb)
            ON CONFLICT (tenant_id, metric, dimension, bucket, inbox_id, value) DO UPDATE SET
                count = r.count + EXCLUDED.count,
                sum_wall = r.sum_wall + EXCLUDED.sum_wall,
                sum_business = r.sum_business + EXCLUDED.sum_business,
                hist_wall = hist_add(r.hist_wall, EXCLUDED.hist_wall),
                hist_business = hist_add(r.hist_business, EXCLUDED.hist_business)""",
        *cols,
    )


async def fold(conn: asyncpg.Connection, facts: list[FoldFact]) -> None:
    """Fold facts into both grains (in the caller's transaction)."""
    for grain in GRAINS:
        await apply(conn, grain, deltas(facts, grain))


FOLD_COLUMNS = (
    "tenant_id, metric, at, inbox_id, operator_id, channel, category, priority, labels, "
    "wall_s, business_s"
)


def fold_fact(r: asyncpg.Record) -> FoldFact:
    """A facts row (FOLD_COLUMNS) as the fold needs it."""
    return FoldFact(
        tenant_id=str(r["tenant_id"]),
        metric=r["metric"],
        at=r["at"],
        inbox_id=str(r["inbox_id"]),
        operator_id=str(r["operator_id"]) if r["operator_id"] else None,
        channel=r["channel"],
        category=r["category"],
        priority=r["priority"],
        labels=tuple(r["labels"]),
        wall_s=r["wall_s"],
        business_s=r["business_s"],
    )


# The same fold in one SQL statement per grain (the bulk path's: `fold_in_sql`), for
# facts already in the table: each fact's dimension values as `_values`, its buckets as
# `bucket` (whole UTC hours and quarters from the epoch), its histogram buckets as
# histogram.bucket_of (width_bucket on the same edges; 0 and below in the first).
_EDGES = "'{" + ",".join(map(str, histogram.EDGES_S)) + "}'::float8[]"
_WIDTH = {"hour": "1 hour", "15m": "15 minutes"}


def _hist_sql(column: str) -> str:
    """A group's histogram of bucket numbers `column` (NULL: a count-only fact): most
    groups hold one fact, or facts of one bucket, whose histogram is made directly."""
    n = histogram.BUCKETS
    return f"""CASE WHEN count({column}) = 0 THEN '{{}}'::integer[]
        WHEN min({column}) = max({column}) THEN array_fill(0, ARRAY[min({column})])
            || count({column})::integer || array_fill(0, ARRAY[{n - 1} - min({column})])
        ELSE (SELECT array_agg((SELECT count(*) FROM unnest(array_agg({column})) AS x
                                WHERE x = i)::integer ORDER BY i)
              FROM generate_series(0, {n - 1}) AS i) END"""


def fold_sql(grain: str, *, add: bool = True) -> str:
    """The statement adding the facts of tenant $1 with `at` in [$2, $3) to the grain's
    rollups (conflicting rows add up, as `apply`'s; without `add`, for buckets that hold
    no row yet, a plain INSERT that needs no unique index)."""
    insert = f"""
        INSERT INTO {TABLES[grain]} AS r (tenant_id, metric, dimension, bucket, inbox_id,
            value, count, sum_wall, sum_business, hist_wall, hist_business)
        SELECT f.tenant_id, f.metric, d.dimension,
               date_bin('{_WIDTH[grain]}', f.at, TIMESTAMPTZ '1970-01-01 00:00:00+00'),
               f.inbox_id, d.value, count(*), coalesce(sum(wall_s), 0),
               coalesce(sum(coalesce(business_s, wall_s)) FILTER (WHERE wall_s IS NOT NULL), 0),
               {_hist_sql("hw")}, {_hist_sql("hb")}
        FROM (SELECT *, CASE WHEN wall_s IS NOT NULL THEN
                       greatest(width_bucket(wall_s, {_EDGES}) - 1, 0) END AS hw,
                     CASE WHEN wall_s IS NOT NULL THEN greatest(width_bucket(
                       coalesce(business_s, wall_s), {_EDGES}) - 1, 0) END AS hb
              FROM facts WHERE tenant_id = $1 AND at >= $2 AND at < $3) f
        CROSS JOIN LATERAL (
            SELECT '' AS dimension, '' AS value
            UNION ALL SELECT 'operator', f.operator_id::text WHERE f.operator_id IS NOT NULL
            UNION ALL SELECT DISTINCT 'label', l FROM unnest(f.labels) AS l WHERE l <> ''
            UNION ALL SELECT 'category', f.category WHERE f.category <> ''
            UNION ALL SELECT 'channel', f.channel WHERE f.channel <> ''
            UNION ALL SELECT 'priority', f.priority WHERE f.priority <> ''
        ) d
        GROUP BY 1, 2, 3, 4, 5, 6"""
    if not add:
        return insert
    return f"""{insert}
        ON CONFLICT (tenant_id, metric, dimension, bucket, inbox_id, value) DO UPDATE SET
            count = r.count + EXCLUDED.count,
            sum_wall = r.sum_wall + EXCLUDED.sum_wall,
            sum_business = r.sum_business + EXCLUDED.sum_business,
            hist_wall = hist_add(r.hist_wall, EXCLUDED.hist_wall),
            hist_business = hist_add(r.hist_business, EXCLUDED.hist_business)"""


async def fold_in_sql(
    conn: asyncpg.Connection,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    fresh: bool = False,
) -> None:
    """Fold the tenant's facts with `at` in [start, end) into both grains, in PostgreSQL
    (the bulk path's, once its facts are written; the same rows as `fold` makes of them).
    The range should be whole hours, or the facts of a bucket folded in two calls.
    `fresh`: the tenant has no rollup rows in the range yet (rows are inserted, not added
    to: the tables' primary keys may be dropped meanwhile and built once after)."""
    for grain in GRAINS:
        await conn.execute(fold_sql(grain, add=not fresh), uuid.UUID(tenant_id), start, end)
