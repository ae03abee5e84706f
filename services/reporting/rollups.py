"""Folding facts into the rollups (issue 19 §2): per tenant × bucket (UTC hour, 15
minutes, and the local day in the tenant's zone — report_zones) × metric × inbox ×
dimension, a count, wall and business sums and their histograms (histogram.py). `deltas`
is the I/O-free sum of some facts; `apply` adds it to the tables (histograms
element-wise, `hist_add`), keys in one order so that two rollers never wait on each other
in a circle. Every path that folds goes through these
two: the roller (facts_roller.py), the bulk path, the rebuild and the check — except a
bulk load's, which folds its facts once written with `fold_in_sql`: the same sums made
by PostgreSQL, and tested to agree with `deltas`.

Histograms are sparse in the tables: a row of one duration stores NULL (its bucket is that
of its sum, `hist_full` in SQL, `full` here), which most hourly rows are."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from . import histogram

GRAINS = ("hour", "15m")  # in UTC: every fact folds into these
# the calendar in the tenant's zone (report_zones), for tenants that have one: the local
# day, ISO week (its Monday) and month (its first day)
DAY, WEEK, MONTH = "day", "week", "month"
LOCAL = (DAY, WEEK, MONTH)
ALL_GRAINS = (*GRAINS, *LOCAL)
TABLES = {
    "hour": "rollups_hour",
    "15m": "rollups_15m",
    DAY: "rollups_day",
    WEEK: "rollups_week",
    MONTH: "rollups_month",
}
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


# (tenant, metric, dimension, bucket, inbox, value); the bucket a UTC datetime, or a
# local date for the day grain
Key = tuple[str, str, str, date, str, str]


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


def local_bucket(day: date, grain: str) -> date:
    """The local calendar bucket a local day is in: itself, its week's Monday, its
    month's first day."""
    if grain == WEEK:
        return day - timedelta(days=day.weekday())
    if grain == MONTH:
        return day.replace(day=1)
    return day


def next_local(day: date, grain: str) -> date:
    """The first day of the calendar bucket after the one starting on `day`."""
    if grain == WEEK:
        return day + timedelta(days=7)
    if grain == MONTH:
        return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def bucket(at: datetime, grain: str, zone: ZoneInfo | None = None) -> date:
    if grain in LOCAL:
        if zone is None:
            raise ValueError(f"the {grain} grain needs a zone")
        return local_bucket(at.astimezone(zone).date(), grain)
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


def deltas(
    facts: Iterable[FoldFact], grain: str, zones: Mapping[str, str] | None = None
) -> dict[Key, Agg]:
    """The facts summed per key of the grain; for a calendar grain, only the facts of
    tenants in `zones` (tenant → zone), each in its tenant's local day, week or month."""
    out: dict[Key, Agg] = {}
    found: dict[str, ZoneInfo] = {}
    for f in facts:
        zone = None
        if grain in LOCAL:
            name = (zones or {}).get(f.tenant_id)
            if not name:
                continue
            zone = found.get(name) or found.setdefault(name, ZoneInfo(name))
        b = bucket(f.at, grain, zone)
        for dim, value in _values(f):
            key = (f.tenant_id, f.metric, dim, b, f.inbox_id, value)
            agg = out.get(key)
            if agg is None:
                agg = out[key] = Agg()
            agg.add(f.wall_s, f.business_s)
    return out


def _hist_text(a: Agg, h: list[int]) -> str | None:
    """As stored: NULL for a row of one duration (sparse), '{}' for a count-only row."""
    if a.count == 1 and h:
        return None
    return "{" + ",".join(map(str, h)) + "}"


def full(h: list[int] | None, s: float) -> list[int]:
    """A stored histogram made whole: NULL (one duration) is the bucket of its sum."""
    if h is None:
        return histogram.of([s])
    return list(h)


_EDGES = "'{" + ",".join(map(str, histogram.EDGES_S)) + "}'::float8[]"


def _full(t: str, c: str) -> str:
    return f"hist_full({t}.hist_{c}, {t}.sum_{c}, {_EDGES})"


# the conflicting row's histograms added up (both made whole first)
ADD_SET = f"""
            count = r.count + EXCLUDED.count,
            sum_wall = r.sum_wall + EXCLUDED.sum_wall,
            sum_business = r.sum_business + EXCLUDED.sum_business,
            hist_wall = hist_add({_full("r", "wall")}, {_full("EXCLUDED", "wall")}),
            hist_business = hist_add({_full("r", "business")}, {_full("EXCLUDED", "business")})"""


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
        cols[9].append(_hist_text(a, a.hist_wall))
        cols[10].append(_hist_text(a, a.hist_business))
    table = TABLES[grain]
    kind = "date" if grain in LOCAL else "timestamptz"
    await conn.execute(
        f"""INSERT INTO {table} AS r (tenant_id, metric, dimension, bucket, inbox_id, value,
                count, sum_wall, sum_business, hist_wall, hist_business)
            SELECT t, m, d, b, i, v, c, sw, sb, hw::integer[], hb::integer[]
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::{kind}[], $5::uuid[],
                        $6::text[], $7::bigint[], $8::float8[], $9::float8[], $10::text[],
                        $11::text[]) AS x(t, m, d, b, i, v, c, sw, sb, hw, hb)
            ON CONFLICT (tenant_id, metric, dimension, bucket, inbox_id, value) DO UPDATE SET
            {ADD_SET}""",
        *cols,
    )


async def day_zones(conn: asyncpg.Connection, tenants: Iterable[str]) -> dict[str, str]:
    """The zones of the tenants' day rollups, their rows locked FOR SHARE: a rebuild of a
    tenant's day rows (day_rollups.py, FOR UPDATE) waits for the folds in progress, and a
    fold waits for the rebuild, then folds into the new zone's days."""
    ids = sorted({uuid.UUID(t) for t in tenants})
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT tenant_id, zone FROM report_zones WHERE tenant_id = ANY($1::uuid[]) "
        "ORDER BY tenant_id FOR SHARE",
        ids,
    )
    return {str(r["tenant_id"]): r["zone"] for r in rows}


async def fold(conn: asyncpg.Connection, facts: list[FoldFact]) -> None:
    """Fold facts into every grain (in the caller's transaction): the UTC ones, and the
    local calendar ones of the tenants that have a zone."""
    if not facts:
        return
    for grain in GRAINS:
        await apply(conn, grain, deltas(facts, grain))
    zones = await day_zones(conn, (f.tenant_id for f in facts))
    if zones:
        for grain in LOCAL:
            await apply(conn, grain, deltas(facts, grain, zones))


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
# `bucket` (whole UTC hours and quarters from the epoch; the local date in zone $4 for the
# day grain), its histogram buckets as histogram.bucket_of (width_bucket on the same
# edges; 0 and below in the first).
_WIDTH = {"hour": "1 hour", "15m": "15 minutes"}


def _hist_sql(column: str) -> str:
    """A group's histogram of bucket numbers `column` (NULL: a count-only fact): a group of
    one duration stores none (sparse, `hist_full`); a group of facts of one bucket is made
    directly."""
    n = histogram.BUCKETS
    return f"""CASE WHEN count({column}) = 0 THEN '{{}}'::integer[]
        WHEN count(*) = 1 THEN NULL
        WHEN min({column}) = max({column}) THEN array_fill(0, ARRAY[min({column})])
            || count({column})::integer || array_fill(0, ARRAY[{n - 1} - min({column})])
        ELSE (SELECT array_agg((SELECT count(*) FROM unnest(array_agg({column})) AS x
                                WHERE x = i)::integer ORDER BY i)
              FROM generate_series(0, {n - 1}) AS i) END"""


def fold_sql(grain: str, *, add: bool = True, folded_only: bool = False) -> str:
    """The statement adding the facts of tenant $1 with `at` in [$2, $3) to the grain's
    rollups (a calendar grain: in the local days, weeks, months of zone $4; conflicting
    rows add up, as `apply`'s; without `add`, for buckets that hold no row yet, a plain
    INSERT that needs no unique index). `folded_only`: leave out the facts still queued
    for the roller."""
    if grain == DAY:
        at = "(f.at AT TIME ZONE $4::text)::date"
    elif grain in LOCAL:
        at = f"date_trunc('{grain}', f.at AT TIME ZONE $4::text)::date"
    else:
        at = f"date_bin('{_WIDTH[grain]}', f.at, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
    queued = (
        "AND NOT EXISTS (SELECT 1 FROM facts_unrolled u WHERE u.fact_id = facts.id)"
        if folded_only
        else ""
    )
    insert = f"""
        INSERT INTO {TABLES[grain]} AS r (tenant_id, metric, dimension, bucket, inbox_id,
            value, count, sum_wall, sum_business, hist_wall, hist_business)
        SELECT f.tenant_id, f.metric, d.dimension, {at},
               f.inbox_id, d.value, count(*), coalesce(sum(wall_s), 0),
               coalesce(sum(coalesce(business_s, wall_s)) FILTER (WHERE wall_s IS NOT NULL), 0),
               {_hist_sql("hw")}, {_hist_sql("hb")}
        FROM (SELECT *, CASE WHEN wall_s IS NOT NULL THEN
                       greatest(width_bucket(wall_s, {_EDGES}) - 1, 0) END AS hw,
                     CASE WHEN wall_s IS NOT NULL THEN greatest(width_bucket(
                       coalesce(business_s, wall_s), {_EDGES}) - 1, 0) END AS hb
              FROM facts WHERE tenant_id = $1 AND at >= $2 AND at < $3 {queued}) f
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
        {ADD_SET}"""


async def fold_in_sql(
    conn: asyncpg.Connection,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    fresh: bool = False,
    grains: tuple[str, ...] = GRAINS,
    zone: str = "",
) -> None:
    """Fold the tenant's facts with `at` in [start, end) into `grains`, in PostgreSQL (the
    bulk path's, once its facts are written; the same rows as `fold` makes of them); the
    calendar grains (in `zone`) only when asked for and given a zone. The range should be
    whole buckets of each grain (hours; local days, weeks, months), or the facts
    of a bucket are folded in two calls. `fresh`: the tenant has no rollup rows in the
    range yet (rows are inserted, not added to: the tables' primary keys may be dropped
    meanwhile and built once after)."""
    for grain in grains:
        args: list[object] = [uuid.UUID(tenant_id), start, end]
        if grain in LOCAL:
            if not zone:
                continue
            args.append(zone)
        await conn.execute(fold_sql(grain, add=not fresh), *args)
