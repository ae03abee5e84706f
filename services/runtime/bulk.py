"""COPY for the services' bulk paths (platform tooling such as `make seed-scale`).

asyncpg copies records in PostgreSQL's binary format, which has no encoder for the
pool's jsonb codec (runtime/db.py encodes JSON as text). `copy_records` copies a table's
rows with jsonb columns through a temporary table that holds them as text, then inserts
them with one statement; tables without jsonb columns are copied straight in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg


async def copy_records(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: Sequence[Sequence[object]],
    json_columns: Sequence[str] = (),
) -> None:
    """COPY `records` into `table`; values of `json_columns` are Python values (dumped
    as JSON). In the caller's transaction, if any. `table` and `columns` are the
    caller's own names, never a request's."""
    if not records:
        return
    if not json_columns:
        await conn.copy_records_to_table(table, columns=list(columns), records=records)
        return
    index = [columns.index(c) for c in json_columns]
    rows = [
        tuple(json.dumps(v, ensure_ascii=False) if i in index else v for i, v in enumerate(r))
        for r in records
    ]
    staging = f"bulk_{table}"
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS "
        f"SELECT {', '.join(columns)} FROM {table} WITH NO DATA"
    )
    for c in json_columns:
        await conn.execute(f"ALTER TABLE {staging} ALTER COLUMN {c} TYPE text")
    await conn.copy_records_to_table(staging, columns=list(columns), records=rows)
    values = ", ".join(f"{c}::jsonb" if c in json_columns else c for c in columns)
    await conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {staging}")
    await conn.execute(f"DROP TABLE {staging}")


async def drop_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[str]:
    """Drop the indexes of `tables` that no constraint uses (primary keys, unique and
    foreign keys stay); their definitions, for `create_indexes` once the rows are in: a
    bulk load into tables without them, then one build each (a GIN index above all), is
    several times faster than keeping them up to date row by row."""
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
           WHERE t.relname = ANY($1::text[]) AND t.relnamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
           ORDER BY 1""",
        list(tables),
    )
    for r in rows:
        await conn.execute(f"DROP INDEX {r['name']}")
    return [r["def"] for r in rows]


async def create_indexes(conn: asyncpg.Connection, definitions: Sequence[str]) -> None:
    """Build the indexes `drop_indexes` dropped (or the keys `drop_primary_keys` did)."""
    for d in definitions:
        await conn.execute(d)


async def drop_primary_keys(conn: asyncpg.Connection, tables: Sequence[str]) -> list[str]:
    """Drop the primary keys of `tables` (no foreign key may use them); the statements
    adding them back, for `create_indexes` once a load without conflicts is in."""
    rows = await conn.fetch(
        """SELECT c.conrelid::regclass::text AS tab, c.conname AS name,
                  pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
           WHERE c.contype = 'p' AND t.relname = ANY($1::text[])
             AND t.relnamespace = 'public'::regnamespace
           ORDER BY 1""",
        list(tables),
    )
    for r in rows:
        await conn.execute(f"ALTER TABLE {r['tab']} DROP CONSTRAINT {r['name']}")
    return [f"ALTER TABLE {r['tab']} ADD CONSTRAINT {r['name']} {r['def']}" for r in rows]
