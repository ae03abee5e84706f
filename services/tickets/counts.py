"""The tab counts (the list's tabs: per inbox, tickets per status, editing and awaiting
approval). Per status from `ticket_count_deltas`, which a trigger on `tickets` appends to
(migration 017) and `CountCompactor` keeps small by summing each inbox's rows into one; a
read sums whatever rows are there, so it is exact at every moment (a compaction commits
at once, with the same sums). Editing and awaiting approval — a few tickets at any time,
changing with every reply lock — are counted at the read through their partial indexes,
in the same statement, so one snapshot answers for all."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from switchboard.v1 import tickets_pb2

from services.runtime.periodic import PeriodicTask

STATUSES = ("open", "pending", "resolved", "no_action", "trash")
COLUMNS = (*STATUSES, "editing", "awaiting_approval")
_SUMS = ", ".join(f"sum({c})::int AS {c}" for c in STATUSES)
_TICKETS = "FROM tickets WHERE tenant_id = $1 AND merged_into IS NULL AND status <> 'trash'"
# a key of its own among advisory locks: one compactor at a time across replicas
_COMPACT_LOCK = 0x5B_7C_0A_17
GROUPS_PER_STEP = 1000


async def read(
    pool: asyncpg.Pool, tenant_id: str, visible: Sequence[str] | None
) -> list[tickets_pb2.InboxTicketCounts]:
    """Per inbox holding tickets (the caller's, or every inbox with `visible` None)."""
    args: list[Any] = [uuid.UUID(tenant_id)]
    inboxes = ""
    if visible is not None:
        args.append([uuid.UUID(i) for i in visible])
        inboxes = " AND inbox_id = ANY($2::uuid[])"
    rows = await pool.fetch(
        f"""
        WITH s AS (
          SELECT inbox_id, {_SUMS} FROM ticket_count_deltas WHERE tenant_id = $1{inboxes}
          GROUP BY inbox_id),
        e AS (
          SELECT inbox_id, count(*)::int AS n {_TICKETS}{inboxes}
            AND (lock_fence IS NOT NULL OR draft_count > 0) GROUP BY inbox_id),
        a AS (
          SELECT inbox_id, count(*)::int AS n {_TICKETS}{inboxes} AND awaiting_approval
          GROUP BY inbox_id)
        SELECT s.*, coalesce(e.n, 0) AS editing, coalesce(a.n, 0) AS awaiting_approval
        FROM s LEFT JOIN e USING (inbox_id) LEFT JOIN a USING (inbox_id)
        WHERE {" + ".join(STATUSES)} > 0 ORDER BY inbox_id
        """,
        *args,
    )
    return [
        tickets_pb2.InboxTicketCounts(inbox_id=str(r["inbox_id"]), **{c: r[c] for c in COLUMNS})
        for r in rows
    ]


async def compact(pool: asyncpg.Pool, groups: int = GROUPS_PER_STEP) -> int:
    """Sum the delta rows of up to `groups` inboxes holding more than one into one row
    each (an inbox left with no ticket keeps no row); how many inboxes were compacted."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _COMPACT_LOCK):
            return 0
        return int(
            await conn.fetchval(
                f"""
                WITH busy AS (
                  SELECT tenant_id, inbox_id FROM ticket_count_deltas
                  GROUP BY tenant_id, inbox_id HAVING count(*) > 1 LIMIT $1),
                gone AS (
                  DELETE FROM ticket_count_deltas d USING busy b
                  WHERE d.tenant_id = b.tenant_id AND d.inbox_id = b.inbox_id
                  RETURNING d.*),
                summed AS (
                  SELECT tenant_id, inbox_id, {_SUMS} FROM gone GROUP BY tenant_id, inbox_id),
                kept AS (
                  INSERT INTO ticket_count_deltas
                  SELECT * FROM summed WHERE {" OR ".join(f"{c} <> 0" for c in STATUSES)}
                  RETURNING 1)
                SELECT count(*) FROM summed
                """,
                groups,
            )
        )


class CountCompactor(PeriodicTask):
    """Every few seconds, and again at once while inboxes are left to compact."""

    def __init__(self, pool: asyncpg.Pool, every_s: float = 5.0) -> None:
        super().__init__("ticket-count-compactor", every_s)
        self._pool = pool

    async def step(self) -> bool:
        return await compact(self._pool) >= GROUPS_PER_STEP
