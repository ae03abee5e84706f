"""The bulk path into the facts (issue 19 §5: the scale generator writes a million-ticket
tenant's facts through it): many facts at once by COPY, the new ones folded into the
rollups in the same transaction — no queue, no roller. A fact already there (same tenant,
metric and key) is skipped, so a chunk written twice counts once.

    async with db.transaction() as conn:
        new = await write_facts(conn, chunk)   # chunks of ~50,000 NewFact

A load of millions writes them with `fold=False` and folds them once at its end
(`rollups.fold_in_sql`), as `make seed-scale` does.

Durations are the caller's: wall seconds and business seconds (services/runtime/
calendars.py `Calendar.business_time_between`; the wall seconds for around the clock)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from . import rollups
from .facts import NewFact
from .facts_store import FACT_COLUMNS, fact_row

_STAGE = "facts_bulk_in"


async def write_facts(
    conn: asyncpg.Connection, facts: Iterable[NewFact], *, fold: bool = True
) -> int:
    """COPY the facts, insert the new ones and fold them into the rollups, in one
    transaction (a savepoint inside the caller's); how many were new. Without `fold` the
    rollups are left to the caller, who folds the whole load at its end in PostgreSQL
    (`rollups.fold_in_sql`: much faster for millions of facts) and meanwhile has facts
    that reports do not count yet."""
    rows = [fact_row(f) for f in facts]
    if not rows:
        return 0
    async with conn.transaction():
        await conn.execute(
            f"""CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
                  tenant_id uuid, metric text, key text, at timestamptz, inbox_id uuid,
                  ticket_id uuid, operator_id uuid, other_operator_id uuid, channel text,
                  category text, priority text, labels text[], wall_s float8,
                  business_s float8) ON COMMIT DELETE ROWS"""
        )
        await conn.copy_records_to_table(_STAGE, records=rows, columns=FACT_COLUMNS)
        cols = ", ".join(FACT_COLUMNS)
        if not fold:
            status = await conn.execute(
                f"""INSERT INTO facts ({cols}) SELECT {cols} FROM {_STAGE}
                    ON CONFLICT (tenant_id, metric, key) DO NOTHING"""
            )
            await conn.execute(f"TRUNCATE {_STAGE}")
            return int(status.split()[-1])
        new = await conn.fetch(
            f"""INSERT INTO facts ({cols}) SELECT {cols} FROM {_STAGE}
                ON CONFLICT (tenant_id, metric, key) DO NOTHING
                RETURNING {rollups.FOLD_COLUMNS}"""
        )
        await conn.execute(f"TRUNCATE {_STAGE}")
        await rollups.fold(conn, [rollups.fold_fact(r) for r in new])
    return len(new)
