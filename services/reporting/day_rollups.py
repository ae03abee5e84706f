"""The calendar rollups' zone (issue 19): `rollups_day`, `rollups_week` and
`rollups_month` hold each tenant's facts summed per local day, ISO week and month of one
zone, `report_zones.zone` — the tenant's time zone (accounts' TenantSettings.time_zone),
learned when a report runs (`DayZones.ready_zone`).

A tenant's first report, or one after its zone changed, records the zone as not `ready`
and starts a rebuild in the background (`rebuild`: the tenant's calendar rows deleted and
folded again from its facts in one transaction, its report_zones row locked FOR UPDATE so
the roller's folds — which lock it FOR SHARE, rollups.day_zones — never interleave);
until it is ready the reports read the hourly rollups. A restart mid-rebuild loses
nothing: the next report finds the zone not ready and starts it again; two replicas may
both start one, the second finds it done."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg

from services.runtime import log

from . import rollups

WORK_MEM = "256MB"  # a rebuild's sorts and hashes: a large tenant's days in memory


async def ready_for(conn: asyncpg.Connection, tenant: str, zone: str) -> bool:
    """Whether the tenant's day rows are complete in `zone`."""
    row = await conn.fetchrow(
        "SELECT zone, ready FROM report_zones WHERE tenant_id = $1", uuid.UUID(tenant)
    )
    return row is not None and row["zone"] == zone and bool(row["ready"])


async def zone_of(conn: asyncpg.Connection, tenant: str) -> str:
    """The zone the tenant's day rows are ready in, "" when none is."""
    row = await conn.fetchrow(
        "SELECT zone FROM report_zones WHERE tenant_id = $1 AND ready", uuid.UUID(tenant)
    )
    return str(row["zone"]) if row else ""


async def learn(conn: asyncpg.Connection, tenant: str, zone: str) -> bool:
    """Record the tenant's zone; whether its day rows are ready in it (False: a rebuild
    is due)."""
    row = await conn.fetchrow(
        "SELECT zone, ready FROM report_zones WHERE tenant_id = $1", uuid.UUID(tenant)
    )
    if row is not None and row["zone"] == zone:
        return bool(row["ready"])
    await conn.execute(
        """INSERT INTO report_zones (tenant_id, zone) VALUES ($1, $2)
           ON CONFLICT (tenant_id) DO UPDATE SET zone = EXCLUDED.zone, ready = false,
               changed_at = now()
           WHERE report_zones.zone <> EXCLUDED.zone""",
        uuid.UUID(tenant),
        zone,
    )
    return False


async def mark_ready(conn: asyncpg.Connection, tenant: str, zone: str) -> None:
    """The tenant's day rows are complete in `zone` (a bulk load that folded them)."""
    await conn.execute(
        """INSERT INTO report_zones (tenant_id, zone, ready) VALUES ($1, $2, true)
           ON CONFLICT (tenant_id) DO UPDATE SET zone = EXCLUDED.zone, ready = true,
               changed_at = now()""",
        uuid.UUID(tenant),
        zone,
    )


async def rebuild(conn: asyncpg.Connection, tenant: str, zone: str) -> int | None:
    """The tenant's calendar rows made again from its folded facts in `zone`, in one
    transaction; how many rows, or None when there was nothing to do (the zone changed
    again meanwhile, or another rebuild finished it)."""
    tid = uuid.UUID(tenant)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        row = await conn.fetchrow(
            "SELECT zone, ready FROM report_zones WHERE tenant_id = $1 FOR UPDATE", tid
        )
        if row is None or row["zone"] != zone or row["ready"]:
            return None
        lo, hi = await conn.fetchrow("SELECT min(at), max(at) FROM facts WHERE tenant_id = $1", tid)
        written = 0
        for grain in rollups.LOCAL:
            await conn.execute(f"DELETE FROM {rollups.TABLES[grain]} WHERE tenant_id = $1", tid)
            if lo is None:
                continue
            status = await conn.execute(
                rollups.fold_sql(grain, add=False, folded_only=True),
                tid,
                lo,
                hi + timedelta(microseconds=1),
                zone,
            )
            written += int(status.split()[-1])
        await conn.execute("UPDATE report_zones SET ready = true WHERE tenant_id = $1", tid)
    return written


class DayZones:
    """The reports' view of the day rollups: which zone is ready per tenant, and the
    rebuilds this process runs."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._running: dict[str, asyncio.Task[None]] = {}

    async def ready_zone(self, tenant: str, zone: str) -> str:
        """`zone` when the tenant's day rows are ready in it, else "" (a rebuild started)."""
        if not zone:
            return ""
        async with self._pool.acquire() as conn:
            if await learn(conn, tenant, zone):
                return zone
        if tenant not in self._running:
            self._running[tenant] = asyncio.create_task(self._rebuild(tenant, zone))
        return ""

    async def _rebuild(self, tenant: str, zone: str) -> None:
        try:
            async with self._pool.acquire() as conn:
                rows = await rebuild(conn, tenant, zone)
            log.get(__name__).info("day rollups rebuilt", tenant_id=tenant, zone=zone, rows=rows)
        except Exception:  # the next report starts it again
            log.get(__name__).exception("day rollups rebuild failed", tenant_id=tenant)
        finally:
            self._running.pop(tenant, None)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
