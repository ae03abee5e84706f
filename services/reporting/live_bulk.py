"""The bulk path into the live rows (issue 19 §5: the scale generator writes a
million-ticket tenant's live rows through it): what the live consumer (live_events.py)
would hold after each ticket's events, written by COPY — no events, no queue. A row
already there is replaced whole, and the ticket's unanswered customer messages with it,
so a chunk written twice (or a data set's rows written again) leaves the same rows.

    async with db.transaction() as conn:
        await write_live(conn, rows, messages)   # chunks of a few thousand tickets

The SLA columns (routing's sla.changed / sla.warning, the summary's due time) are left
empty: a bulk load has no running clocks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class LiveRow:
    tenant_id: uuid.UUID
    ticket_id: uuid.UUID
    inbox_id: uuid.UUID
    status: str
    assignee_id: uuid.UUID | None
    version: datetime  # the ticket's updated_at
    answered_at: datetime | None
    waiting_since: datetime | None


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """A customer message of the ticket not yet answered (after its answered_at)."""

    tenant_id: uuid.UUID
    ticket_id: uuid.UUID
    at: datetime
    message_id: str


_ROW_COLUMNS = [
    "tenant_id",
    "ticket_id",
    "inbox_id",
    "status",
    "assignee_id",
    "version",
    "answered_at",
    "waiting_since",
]
_MESSAGE_COLUMNS = ["tenant_id", "ticket_id", "at", "message_id"]
_STAGE = "live_bulk_in"


async def write_live(
    conn: asyncpg.Connection, rows: Sequence[LiveRow], messages: Sequence[LiveMessage]
) -> int:
    """COPY the rows in, replacing each ticket's row and customer messages (in a
    savepoint inside the caller's transaction); how many rows."""
    if not rows:
        return 0
    async with conn.transaction():
        await conn.execute(
            f"""CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
                  tenant_id uuid, ticket_id uuid, inbox_id uuid, status text,
                  assignee_id uuid, version timestamptz, answered_at timestamptz,
                  waiting_since timestamptz) ON COMMIT DELETE ROWS"""
        )
        await conn.copy_records_to_table(
            _STAGE, records=[astuple(r) for r in rows], columns=_ROW_COLUMNS
        )
        await conn.execute(
            f"""DELETE FROM live_customer_messages m USING {_STAGE} s
                WHERE m.tenant_id = s.tenant_id AND m.ticket_id = s.ticket_id"""
        )
        await conn.execute(
            f"""DELETE FROM live_tickets t USING {_STAGE} s
                WHERE t.tenant_id = s.tenant_id AND t.ticket_id = s.ticket_id"""
        )
        cols = ", ".join(_ROW_COLUMNS)
        await conn.execute(f"INSERT INTO live_tickets ({cols}) SELECT {cols} FROM {_STAGE}")
        await conn.execute(f"TRUNCATE {_STAGE}")
        if messages:
            await conn.copy_records_to_table(
                "live_customer_messages",
                records=[astuple(m) for m in messages],
                columns=_MESSAGE_COLUMNS,
            )
    return len(rows)


async def clear_tenant(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    """Every live row of a tenant gone (before its rows are written again)."""
    await conn.execute("DELETE FROM live_customer_messages WHERE tenant_id = $1", tenant_id)
    await conn.execute("DELETE FROM live_tickets WHERE tenant_id = $1", tenant_id)
