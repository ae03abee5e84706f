"""What rebuild and check share (issue 19 §2): the rollups a tenant's facts make, computed
again from the facts table (a server-side cursor, so a large tenant streams), and the
stored rollups read back (sparse histograms made whole), both as {key: Agg} — for the day
calendar grains in the tenant's report_zones zone."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from . import histogram, rollups
from .rollups import Agg, Key

CHUNK = 20000


async def tenants(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT tenant_id FROM facts UNION SELECT DISTINCT tenant_id FROM rollups_hour"
    )
    return sorted(str(r["tenant_id"]) for r in rows)


async def from_facts(
    conn: asyncpg.Connection,
    tenant: str,
    grain: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    folded_only: bool = True,
    zone: str = "",
) -> dict[Key, Agg]:
    """The rollups of the tenant's facts in [start, end) (folded ones only: a fact still
    queued for the roller is not in the rollups yet); for a calendar grain, in `zone`. Call
    inside a transaction."""
    zones = {tenant: zone} if zone else None
    out: dict[Key, Agg] = {}
    query = (
        f"SELECT {rollups.FOLD_COLUMNS} FROM facts f WHERE tenant_id = $1 "
        "AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)"
    )
    if folded_only:
        query += " AND NOT EXISTS (SELECT 1 FROM facts_unrolled u WHERE u.fact_id = f.id)"
    batch: list[rollups.FoldFact] = []
    async for r in conn.cursor(query, uuid.UUID(tenant), start, end, prefetch=CHUNK):
        batch.append(rollups.fold_fact(r))
        if len(batch) >= CHUNK:
            _merge(out, rollups.deltas(batch, grain, zones))
            batch = []
    _merge(out, rollups.deltas(batch, grain, zones))
    return out


def _merge(into: dict[Key, Agg], more: dict[Key, Agg]) -> None:
    for k, a in more.items():
        have = into.get(k)
        if have is None:
            into[k] = a
            continue
        have.count += a.count
        have.sum_wall += a.sum_wall
        have.sum_business += a.sum_business
        if a.hist_wall:
            have.hist_wall = histogram.add(have.hist_wall, a.hist_wall)
            have.hist_business = histogram.add(have.hist_business, a.hist_business)


async def stored(
    conn: asyncpg.Connection,
    tenant: str,
    grain: str,
    start: date | None = None,
    end: date | None = None,
) -> dict[Key, Agg]:
    """The stored rows of the grain in [start, end) (UTC instants; local dates for the
    calendar grains)."""
    out: dict[Key, Agg] = {}
    kind = "date" if grain in rollups.LOCAL else "timestamptz"
    rows = await conn.fetch(
        f"""SELECT metric, dimension, bucket, inbox_id, value, count, sum_wall, sum_business,
                   hist_wall, hist_business FROM {rollups.TABLES[grain]}
            WHERE tenant_id = $1 AND ($2::{kind} IS NULL OR bucket >= $2)
              AND ($3::{kind} IS NULL OR bucket < $3)""",
        uuid.UUID(tenant),
        start,
        end,
    )
    for r in rows:
        key = (tenant, r["metric"], r["dimension"], r["bucket"], str(r["inbox_id"]), r["value"])
        out[key] = Agg(
            r["count"],
            r["sum_wall"],
            r["sum_business"],
            rollups.full(r["hist_wall"], r["sum_wall"]),
            rollups.full(r["hist_business"], r["sum_business"]),
        )
    return out


def differences(expected: dict[Key, Agg], found: dict[Key, Agg]) -> list[str]:
    """One line per rollup row that is not what the facts make."""
    out: list[str] = []
    for key in sorted(set(expected) | set(found)):
        e, f = expected.get(key), found.get(key)
        if e is not None and f is not None and _same(e, f):
            continue
        _tenant, metric, dim, bucket, inbox, value = key
        where = f"{metric} {bucket.isoformat()} inbox {inbox}" + (f" {dim}={value}" if dim else "")
        out.append(f"{where}: facts make {_show(e)}, the rollup has {_show(f)}")
    return out


def _same(a: Agg, b: Agg) -> bool:
    return (
        a.count == b.count
        and abs(a.sum_wall - b.sum_wall) < 1e-6 * max(1.0, abs(a.sum_wall))
        and abs(a.sum_business - b.sum_business) < 1e-6 * max(1.0, abs(a.sum_business))
        and (a.hist_wall or []) == (b.hist_wall or [])
        and (a.hist_business or []) == (b.hist_business or [])
    )


def _show(a: Agg | None) -> str:
    if a is None:
        return "no row"
    return f"count {a.count}, wall {a.sum_wall:g} s, business {a.sum_business:g} s"
