"""What the rebuild and check commands share: the database from reporting's own settings
(SB_DATABASE_URL, SB_DATABASE_NAME), an ISO instant argument, and the rollup rebuild."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime

import asyncpg

from services.runtime import settings as rt_settings
from services.runtime.db import with_database

from . import periods, rollup_audit, rollups
from .app import ReportingSettings


async def connect() -> asyncpg.Connection:
    s = rt_settings.load(ReportingSettings)
    conn: asyncpg.Connection = await asyncpg.connect(
        with_database(s.database_url, s.database_name or "sb_reporting")
    )
    return conn


def instant(text: str) -> datetime:
    """An ISO 8601 instant on a whole hour (UTC when no offset is given)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at.minute or at.second or at.microsecond:
        raise argparse.ArgumentTypeError(f"{text!r} is not on a whole hour")
    return at.astimezone(UTC)


def tenant_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a tenant id (a UUID)") from None


async def rebuild(
    conn: asyncpg.Connection, tenant: str, start: datetime | None, end: datetime | None
) -> int:
    """The tenant's rollups in [start, end) (whole hours) deleted and folded again from its
        facts, in one transaction; the facts the roller had not folded yet are folded here
        (taken from its queue). The calendar rows of every local day, week and month the range
    touches too, when
        the tenant has a zone (report_zones; one being rebuilt is made ready by a rebuild of
    the whole tenant). Returns
        how many rollup rows were written."""
    written = 0
    async with conn.transaction():
        # the roller's folds wait (rollups.day_zones locks the row FOR SHARE)
        zone = await conn.fetchval(
            "SELECT zone FROM report_zones WHERE tenant_id = $1 FOR UPDATE", uuid.UUID(tenant)
        )
        await conn.execute(
            """DELETE FROM facts_unrolled u USING facts f
               WHERE u.fact_id = f.id AND f.tenant_id = $1
                 AND ($2::timestamptz IS NULL OR f.at >= $2)
                 AND ($3::timestamptz IS NULL OR f.at < $3)""",
            uuid.UUID(tenant),
            start,
            end,
        )
        for grain in rollups.GRAINS:
            await conn.execute(
                f"""DELETE FROM {rollups.TABLES[grain]} WHERE tenant_id = $1
                      AND ($2::timestamptz IS NULL OR bucket >= $2)
                      AND ($3::timestamptz IS NULL OR bucket < $3)""",
                uuid.UUID(tenant),
                start,
                end,
            )
            found = await rollup_audit.from_facts(conn, tenant, grain, start, end)
            await rollups.apply(conn, grain, found)
            written += len(found)
        if zone:
            written += await _rebuild_days(conn, tenant, zone, start, end)
    return written


async def _rebuild_days(
    conn: asyncpg.Connection,
    tenant: str,
    zone: str,
    start: datetime | None,
    end: datetime | None,
) -> int:
    """The calendar rows (day, week, month) of every local bucket [start, end) touches,
    folded again (in the caller's transaction, after the queue's facts of the range were
    taken)."""
    tz = periods.zone_of(zone)
    written = 0
    for grain in rollups.LOCAL:
        first = None
        if start is not None:
            first = rollups.local_bucket(periods.local_day(start, tz), grain)
        last = None  # the bucket after the one `end` falls in, unless `end` starts one
        if end is not None:
            last = rollups.local_bucket(periods.local_day(end, tz), grain)
            if end != periods.local_midnight(last, tz):
                last = rollups.next_local(last, grain)
        await conn.execute(
            f"""DELETE FROM {rollups.TABLES[grain]} WHERE tenant_id = $1
                 AND ($2::date IS NULL OR bucket >= $2) AND ($3::date IS NULL OR bucket < $3)""",
            uuid.UUID(tenant),
            first,
            last,
        )
        found = await rollup_audit.from_facts(
            conn,
            tenant,
            grain,
            None if first is None else periods.local_midnight(first, tz),
            None if last is None else periods.local_midnight(last, tz),
            zone=zone,
        )
        await rollups.apply(conn, grain, found)
        written += len(found)
    if start is None and end is None:  # every bucket made again: ready, if it was not
        await conn.execute(
            "UPDATE report_zones SET ready = true WHERE tenant_id = $1", uuid.UUID(tenant)
        )
    return written
