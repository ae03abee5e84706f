"""The reports' reads of reporting's own tables: the rollups (daily in the tenant's zone,
hourly, or 15-minute for zones at :30/:45 offsets) summed per period, metric, inbox and
dimension value — and the same sums computed from the facts without the rollups
(boundaries off the quarter hour, the benchmark's baseline, the test that both agree).

The periods' boundaries go to PostgreSQL as one array; `width_bucket` numbers the period
each row falls in, so a period is whatever the caller's zone made it (23, 24 or 25 hours,
a week, a month); for the calendar rollups the boundaries are the local dates, whole
weeks and months read from their own tables, the cut first and last from the days.

Histograms are sparse (rollups.py): a row of one duration holds NULL and counts in the
bucket of its sum."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import asyncpg

from . import histogram, rollups
from .periods import DAY, FACTS, HOUR, QUARTER, local_day, local_midnight
from .report_model import Cell, Query, Want
from .stats import Durations

DURATION_METRICS = frozenset(
    {"first_reply", "reply", "resolution", "approval_given", "send_back", "send_back_given"}
)
_TABLES = {DAY: "rollups_day", HOUR: "rollups_hour", QUARTER: "rollups_15m"}
_DIMENSION_VALUE = {
    "": "''",
    "operator": "f.operator_id::text",
    "category": "f.category",
    "channel": "f.channel",
    "priority": "f.priority",
    "label": "l.value",
}
_EDGES = [float(e) for e in histogram.EDGES_S]


def _bucket_sums(basis: str) -> str:
    return ", ".join(
        f"sum(hist_{basis}[{i}])::bigint AS b{i}" for i in range(1, histogram.BUCKETS + 1)
    )


def _args(tenant_id: str, q: Query, want: Want) -> tuple[object, ...]:
    """$1…$7 of both reads: tenant, the periods' starts, dimension, metrics, the range,
    the inboxes (NULL: every inbox of the tenant)."""
    inboxes = None if q.inbox_ids is None else list(q.inbox_ids)
    if q.source == DAY:  # local midnights all: the dates
        zone = q.range.zone
        days = [local_day(p.start, zone) for p in q.periods]
        return (tenant_id, days, want.dimension, list(want.metrics),
                local_day(q.range.start, zone), local_day(q.range.end, zone), inboxes)  # fmt: skip
    starts = [p.start for p in q.periods]
    return (tenant_id, starts, want.dimension, list(want.metrics), q.range.start, q.range.end,
            inboxes)  # fmt: skip


def _inbox_column(want: Want, prefix: str) -> str:
    """Grouped per inbox only when the report needs it (each inbox's thresholds): fewer
    rows to sum and to send."""
    return f"{prefix}inbox_id::text" if want.per_inbox else "''::text"


async def cells(conn: asyncpg.Connection, tenant_id: str, q: Query, want: Want) -> list[Cell]:
    """The summed cells of one dimension's metrics over the query's periods."""
    if q.source == FACTS:
        return await from_facts(conn, tenant_id, q, want)
    if q.source == DAY:
        return await _calendar(conn, tenant_id, q, want)
    return await from_rollups(conn, tenant_id, q, want, _TABLES[q.source])


def calendar_runs(q: Query) -> list[tuple[int, int, str]]:
    """Which calendar table answers which periods (I/O-free): whole weeks or months from
    `rollups_week` / `rollups_month`, the first and last cut to the range from
    `rollups_day` — as runs (first period, end, table)."""
    grain = q.range.granularity
    runs: list[tuple[int, int, str]] = []
    for i, p in enumerate(q.periods):
        table = _TABLES[DAY]
        if grain in (rollups.WEEK, rollups.MONTH):
            first = local_day(p.start, q.range.zone)
            following = local_midnight(rollups.next_local(first, grain), q.range.zone)
            if rollups.local_bucket(first, grain) == first and p.end == following:
                table = rollups.TABLES[grain]
        if runs and runs[-1][2] == table:
            runs[-1] = (runs[-1][0], i + 1, table)
        else:
            runs.append((i, i + 1, table))
    return runs


async def _calendar(conn: asyncpg.Connection, tenant_id: str, q: Query, want: Want) -> list[Cell]:
    out: list[Cell] = []
    for first, end, table in calendar_runs(q):
        bounds = q.periods[first:end]
        part = replace(
            q, periods=bounds, range=replace(q.range, start=bounds[0].start, end=bounds[-1].end)
        )
        found = await from_rollups(conn, tenant_id, part, want, table)
        out += [replace(c, period=c.period + first) for c in found] if first else found
    return out


_ROLLUP_WHERE = """
        WHERE tenant_id = $1 AND dimension = $3 AND metric = ANY($4::text[])
          AND bucket >= $5 AND bucket < $6
          AND ($7::uuid[] IS NULL OR inbox_id = ANY($7::uuid[]))"""


async def from_rollups(
    conn: asyncpg.Connection, tenant_id: str, q: Query, want: Want, table: str
) -> list[Cell]:
    """Counts and sums grouped in one statement; the histograms in two more: a row of one
    duration (NULL: most hourly rows) counts in the bucket of its sum, fuller rows sum each
    bucket by its index (`sum(hist[i])`, one aggregate per bucket) — far cheaper than
    adding whole arrays row by row (hist_sum) or unnesting them — assembled here."""
    basis = "business" if q.basis == "business" else "wall"
    args = _args(tenant_id, q, want)
    kind = "date" if q.source == DAY else "timestamptz"
    inbox = _inbox_column(want, "")
    rows = await conn.fetch(
        f"""
        SELECT width_bucket(bucket, $2::{kind}[]) - 1 AS period, metric,
               {inbox} AS inbox_id, value, sum(count)::bigint AS n,
               sum(sum_{basis}) AS total
        FROM {table} {_ROLLUP_WHERE}
        GROUP BY 1, 2, 3, 4
        """,
        *args,
    )
    hists: dict[tuple[int, str, str, str], list[int]] = {}
    timed = sorted(DURATION_METRICS & set(want.metrics if want.timed is None else want.timed))
    if timed:
        hist_args = (*args[:3], timed, *args[4:])
        # a row of one duration (NULL, sparse): its bucket is that of its sum
        for r in await conn.fetch(
            f"""
            SELECT width_bucket(bucket, $2::{kind}[]) - 1 AS period, metric,
                   {inbox} AS inbox_id, value,
                   greatest(width_bucket(sum_{basis}, $8::float8[]), 1) AS i,
                   sum(count)::bigint AS n
            FROM {table} {_ROLLUP_WHERE} AND hist_{basis} IS NULL
            GROUP BY 1, 2, 3, 4, 5
            """,
            *hist_args,
            _EDGES,
        ):
            key = (r["period"], r["metric"], r["inbox_id"], r["value"])
            hists.setdefault(key, histogram.empty())[r["i"] - 1] += r["n"]
        # fuller rows: each bucket summed by its index, one aggregate per bucket (far
        # cheaper than unnesting every array)
        for r in await conn.fetch(
            f"""
            SELECT width_bucket(bucket, $2::{kind}[]) - 1 AS period, metric,
                   {inbox} AS inbox_id, value, {_bucket_sums(basis)}
            FROM {table} {_ROLLUP_WHERE} AND cardinality(hist_{basis}) > 0
            GROUP BY 1, 2, 3, 4
            """,
            *hist_args,
        ):
            key = (r["period"], r["metric"], r["inbox_id"], r["value"])
            into = hists.setdefault(key, histogram.empty())
            for i in range(histogram.BUCKETS):
                into[i] += r[4 + i] or 0
    out = []
    for r in rows:
        key = (r["period"], r["metric"], r["inbox_id"], r["value"])
        total = float(r["total"] or 0.0)
        out.append(Cell(key[0], key[1], key[2], want.dimension, key[3],
                        Durations(r["n"], total, tuple(hists.get(key, ())))))  # fmt: skip
    return out


async def from_facts(conn: asyncpg.Connection, tenant_id: str, q: Query, want: Want) -> list[Cell]:
    """The same cells straight from the facts: counts, sums and the histogram's bucket of
    each duration, grouped; the histograms assembled here."""
    column = "business_s" if q.basis == "business" else "wall_s"
    value = _DIMENSION_VALUE[want.dimension]
    joined = ", unnest(f.labels) AS l(value)" if want.dimension == "label" else ""
    present = (
        "" if want.dimension in ("", "label") else f"AND {value} IS NOT NULL AND {value} <> ''"
    )
    rows = await conn.fetch(
        f"""
        SELECT width_bucket(f.at, $2::timestamptz[]) - 1 AS period, f.metric,
               {_inbox_column(want, "f.")} AS inbox_id, {value} AS value,
               greatest(width_bucket(f.{column}, $8::float8[]) - 1, 0) AS bucket,
               count(*)::bigint AS n, sum(coalesce(f.{column}, 0)) AS total,
               bool_or(f.{column} IS NOT NULL) AS timed
        FROM facts f{joined}
        WHERE f.tenant_id = $1 AND f.metric = ANY($4::text[])
          AND f.at >= $5 AND f.at < $6
          AND ($7::uuid[] IS NULL OR f.inbox_id = ANY($7::uuid[]))
          AND $3::text IS NOT NULL {present}
        GROUP BY 1, 2, 3, 4, 5
        """,
        *_args(tenant_id, q, want),
        _EDGES,
    )
    sums: dict[tuple[int, str, str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    hists: dict[tuple[int, str, str, str], list[int]] = {}
    for r in rows:
        key = (r["period"], r["metric"], r["inbox_id"], r["value"])
        acc = sums[key]
        acc[0] += r["n"]
        acc[1] += float(r["total"] or 0.0)
        if r["timed"]:
            hists.setdefault(key, histogram.empty())[r["bucket"]] += r["n"]
    return [
        Cell(
            k[0],
            k[1],
            k[2],
            want.dimension,
            k[3],
            Durations(int(v[0]), v[1], tuple(hists.get(k, ()))),
        )
        for k, v in sums.items()
    ]
