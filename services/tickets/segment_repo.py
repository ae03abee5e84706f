"""Segments' storage (issue 20, OUT-6): saved queries of a tenant, and a saved segment
compiled for counting and resolving. Rules and SQL compilation: `segment_rules`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import tickets_pb2

from services.runtime.errors import NotFound

from . import outreach_repo, segment_rules
from .deps import Deps
from .segment_rules import Condition, Query


def segment_pb(row: asyncpg.Record) -> tickets_pb2.Segment:
    out = tickets_pb2.Segment(id=str(row["id"]), name=row["name"], match=row["match"])
    for c in row["conditions"]:
        out.conditions.add(field=c["field"], op=c["op"], value_json=json.dumps(c["value"]))
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    return out


def query_of(row: asyncpg.Record) -> Query:
    return Query(
        row["match"], tuple(Condition(c["field"], c["op"], c["value"]) for c in row["conditions"])
    )


async def segments(pool: asyncpg.Pool, tenant_id: str) -> list[tickets_pb2.Segment]:
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE tenant_id = $1 ORDER BY created_at, id",
        uuid.UUID(tenant_id),
    )
    return [segment_pb(r) for r in rows]


async def row(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, segment_id: uuid.UUID
) -> asyncpg.Record:
    found = await conn.fetchrow(
        "SELECT * FROM segments WHERE tenant_id = $1 AND id = $2",
        uuid.UUID(tenant_id),
        segment_id,
    )
    if found is None:
        raise NotFound("no such segment", field="segment_id")
    return found


async def create(
    conn: asyncpg.Connection,
    tenant_id: str,
    segment_id: uuid.UUID,
    name: str,
    query: Query,
    now: datetime,
) -> tickets_pb2.Segment:
    created = await conn.fetchrow(
        "INSERT INTO segments (id, tenant_id, name, match, conditions, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
        segment_id,
        uuid.UUID(tenant_id),
        name,
        query.match,
        query.to_json(),
        now,
    )
    return segment_pb(created)


async def update(
    conn: asyncpg.Connection,
    tenant_id: str,
    segment_id: uuid.UUID,
    name: str,
    query: Query,
    now: datetime,
) -> tickets_pb2.Segment:
    changed = await conn.fetchrow(
        "UPDATE segments SET name = $3, match = $4, conditions = $5, updated_at = $6"
        " WHERE tenant_id = $1 AND id = $2 RETURNING *",
        uuid.UUID(tenant_id),
        segment_id,
        name,
        query.match,
        query.to_json(),
        now,
    )
    if changed is None:
        raise NotFound("no such segment", field="segment_id")
    return segment_pb(changed)


async def delete(conn: asyncpg.Connection, tenant_id: str, segment_id: uuid.UUID) -> None:
    gone = await conn.fetchval(
        "DELETE FROM segments WHERE tenant_id = $1 AND id = $2 RETURNING true",
        uuid.UUID(tenant_id),
        segment_id,
    )
    if not gone:
        raise NotFound("no such segment", field="segment_id")


async def compile_query(
    d: Deps, tenant_id: str, query: Query, *, first_arg: int
) -> tuple[str, list[Any]]:
    """The query's SQL condition over contact `c` and its arguments, numbered from
    `$first_arg` on."""
    defs = await outreach_repo.fields(d.db.pool, tenant_id)
    args: list[Any] = [None] * (first_arg - 1)
    where = segment_rules.compile_where(query, args, defs, d.clock.now())
    return where, args[first_arg - 1 :]


async def compiled(
    d: Deps, tenant_id: str, segment_id: uuid.UUID, *, first_arg: int
) -> tuple[str, list[Any]]:
    """A saved segment's SQL condition (NOT_FOUND naming segment_id when missing)."""
    saved = await row(d.db.pool, tenant_id, segment_id)
    return await compile_query(d, tenant_id, query_of(saved), first_arg=first_arg)
