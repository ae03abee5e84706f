"""Campaigns' storage (issue 20, OUT-6): the campaigns, their recipients (the audience
snapshot, one row per address) and the per-domain throttle's counts. Every query an
operator's call makes is scoped by tenant; the sender's work across tenants by time and
touches rows by id, as the dispatcher does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from .campaign_domain import RECIPIENT_STATES, Window

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class Campaign:
    tenant_id: uuid.UUID
    id: uuid.UUID
    name: str
    inbox_id: uuid.UUID
    subject: str
    body: str
    language: str
    list_id: uuid.UUID | None
    segment_id: uuid.UUID | None
    scheduled_at: datetime | None
    window: Window | None
    throttle: int | None
    state: str
    created_by: uuid.UUID | None
    created_by_name: str
    snapshot_done: bool
    tenant_zone: str
    errors: list[str]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def campaign_of(r: asyncpg.Record) -> Campaign:
    window = (
        Window(r["window_start"], r["window_end"], tuple(r["window_days"]))
        if r["window_start"] is not None
        else None
    )
    errors = r["errors"]
    return Campaign(
        r["tenant_id"],
        r["id"],
        r["name"],
        r["inbox_id"],
        r["subject"],
        r["body"],
        r["language"],
        r["list_id"],
        r["segment_id"],
        r["scheduled_at"],
        window,
        r["throttle"],
        r["state"],
        r["created_by"],
        r["created_by_name"],
        r["snapshot_done"],
        r["tenant_zone"],
        list(json.loads(errors) if isinstance(errors, str) else errors),
        r["created_at"],
        r["updated_at"],
        r["started_at"],
        r["finished_at"],
    )


def columns_of(c: Campaign) -> dict[str, Any]:
    """The writable columns of a campaign, as `insert` and `update` take them."""
    w = c.window
    return {
        "name": c.name,
        "inbox_id": c.inbox_id,
        "subject": c.subject,
        "body": c.body,
        "language": c.language,
        "list_id": c.list_id,
        "segment_id": c.segment_id,
        "scheduled_at": c.scheduled_at,
        "window_start": w.start if w else None,
        "window_end": w.end if w else None,
        "window_days": list(w.days) if w else [1, 2, 3, 4, 5, 6, 7],
        "throttle": c.throttle,
        "state": c.state,
    }


@dataclass(frozen=True, slots=True)
class Member:
    """One audience member as the snapshot writes it."""

    id: uuid.UUID
    contact_id: uuid.UUID
    address: str
    domain: str
    name: str
    time_zone: str
    language: str
    custom: dict[str, str]
    state: str
    not_before: datetime


class CampaignRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- campaigns -----------------------------------------------------------------------

    async def insert(self, conn: Conn, c: Campaign) -> Campaign:
        cols = columns_of(c)
        names = ["tenant_id", "id", *cols, "created_by", "created_by_name", "created_at"]
        values = [c.tenant_id, c.id, *cols.values(), c.created_by, c.created_by_name, c.created_at]
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        r = await conn.fetchrow(
            f"INSERT INTO campaigns ({', '.join(names)}, updated_at) VALUES ({marks}, "
            f"${names.index('created_at') + 1}) RETURNING *",
            *values,
        )
        return campaign_of(r)

    async def get(
        self, conn: Conn, tenant: str, campaign_id: uuid.UUID, *, lock: bool = False
    ) -> Campaign | None:
        r = await conn.fetchrow(
            "SELECT * FROM campaigns WHERE tenant_id = $1 AND id = $2"
            + (" FOR UPDATE" if lock else ""),
            uuid.UUID(tenant),
            campaign_id,
        )
        return None if r is None else campaign_of(r)

    async def by_id(self, conn: Conn, campaign_id: uuid.UUID) -> Campaign | None:
        r = await conn.fetchrow("SELECT * FROM campaigns WHERE id = $1", campaign_id)
        return None if r is None else campaign_of(r)

    async def list_campaigns(self, tenant: str, state: str) -> list[Campaign]:
        rows = await self.pool.fetch(
            "SELECT * FROM campaigns WHERE tenant_id = $1 AND ($2 = '' OR state = $2) "
            "ORDER BY created_at DESC, id DESC LIMIT 500",
            uuid.UUID(tenant),
            state,
        )
        return [campaign_of(r) for r in rows]

    async def update(
        self, conn: Conn, campaign_id: uuid.UUID, values: dict[str, Any], now: datetime
    ) -> Campaign:
        cols = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=3))
        r = await conn.fetchrow(
            f"UPDATE campaigns SET updated_at = $2{', ' if cols else ''}{cols} WHERE id = $1 "
            "RETURNING *",
            campaign_id,
            now,
            *values.values(),
        )
        return campaign_of(r)

    async def delete(self, conn: Conn, campaign_id: uuid.UUID) -> None:
        await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)

    async def totals(self, conn: Conn, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
        """Recipients per state of each campaign: one GROUP BY over the (campaign, state)
        index."""
        rows = await conn.fetch(
            "SELECT campaign_id, state, count(*) AS n FROM campaign_recipients "
            "WHERE campaign_id = ANY($1::uuid[]) GROUP BY campaign_id, state",
            list(ids),
        )
        out: dict[uuid.UUID, dict[str, int]] = {i: {} for i in ids}
        for r in rows:
            out[r["campaign_id"]][r["state"]] = int(r["n"])
        return out

    async def due(self, conn: Conn, now: datetime) -> Campaign | None:
        """A scheduled campaign whose time came, locked for the caller's transaction."""
        r = await conn.fetchrow(
            "SELECT * FROM campaigns WHERE state = 'scheduled' AND scheduled_at <= $1 "
            "ORDER BY scheduled_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            now,
        )
        return None if r is None else campaign_of(r)

    async def claim_snapshot(self, worker: str, now: datetime, until: datetime) -> Campaign | None:
        """A started campaign whose audience is not all in yet and that no live replica
        is taking: its snapshot lease, for this worker."""
        r = await self.pool.fetchrow(
            "UPDATE campaigns c SET snapshot_owner = $1, snapshot_until = $2 FROM (SELECT id "
            "FROM campaigns WHERE state IN ('running', 'paused') AND NOT snapshot_done AND "
            "(snapshot_until IS NULL OR snapshot_until < $3) ORDER BY started_at LIMIT 1 "
            "FOR UPDATE SKIP LOCKED) todo WHERE c.id = todo.id RETURNING c.*",
            worker,
            until,
            now,
        )
        return None if r is None else campaign_of(r)

    async def renew_snapshot(
        self, conn: Conn, campaign_id: uuid.UUID, worker: str, until: datetime
    ) -> bool:
        """Still this worker's snapshot (and the campaign not cancelled)?"""
        got = await conn.fetchval(
            "UPDATE campaigns SET snapshot_until = $3 WHERE id = $1 AND snapshot_owner = $2 "
            "AND state IN ('running', 'paused') AND NOT snapshot_done RETURNING 1",
            campaign_id,
            worker,
            until,
        )
        return got is not None

    async def end_snapshot(
        self, conn: Conn, campaign_id: uuid.UUID, worker: str, error: str | None
    ) -> None:
        await conn.execute(
            "UPDATE campaigns SET snapshot_done = true, snapshot_owner = NULL, "
            "snapshot_until = NULL, errors = CASE WHEN $3::text IS NULL THEN errors ELSE "
            "errors || jsonb_build_array($3::text) END WHERE id = $1 AND snapshot_owner = $2",
            campaign_id,
            worker,
            error,
        )

    async def complete_if_done(
        self, conn: Conn, ids: Sequence[uuid.UUID], now: datetime
    ) -> list[Campaign]:
        """Running campaigns with every member in and nothing pending or queued: completed."""
        rows = await conn.fetch(
            "UPDATE campaigns c SET state = 'completed', finished_at = $2, updated_at = $2 "
            "WHERE c.id = ANY($1::uuid[]) AND c.state = 'running' AND c.snapshot_done AND "
            "NOT EXISTS (SELECT 1 FROM campaign_recipients r WHERE r.campaign_id = c.id AND "
            "r.state IN ('pending', 'queued')) RETURNING c.*",
            list(ids),
            now,
        )
        return [campaign_of(r) for r in rows]

    # -- recipients ----------------------------------------------------------------------

    async def add_members(
        self,
        conn: Conn,
        tenant: uuid.UUID,
        campaign_id: uuid.UUID,
        rows: Sequence[Member],
        now: datetime,
    ) -> int:
        """Insert the members not there yet (an address once); how many were new."""
        got = await conn.fetch(
            "INSERT INTO campaign_recipients (tenant_id, id, campaign_id, contact_id, address, "
            "domain, name, time_zone, language, custom, state, not_before, updated_at) "
            "SELECT $1, t.id, $2, t.contact_id, t.address, t.domain, t.name, t.tz, t.lang, "
            "t.custom::jsonb, t.state, t.not_before, $3 FROM unnest($4::uuid[], $5::uuid[], "
            "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], "
            "$12::text[], $13::timestamptz[]) AS t(id, contact_id, address, domain, name, tz, "
            "lang, custom, state, not_before) ON CONFLICT (campaign_id, address) DO NOTHING "
            "RETURNING 1",
            tenant,
            campaign_id,
            now,
            [m.id for m in rows],
            [m.contact_id for m in rows],
            [m.address for m in rows],
            [m.domain for m in rows],
            [m.name for m in rows],
            [m.time_zone for m in rows],
            [m.language for m in rows],
            [json.dumps(m.custom) for m in rows],
            [m.state for m in rows],
            [m.not_before for m in rows],
        )
        return len(got)

    async def claim(
        self, conn: Conn, now: datetime, period: datetime, limit: int
    ) -> list[asyncpg.Record]:
        """Due pending recipients of running campaigns, locked for the caller's
        transaction (another replica skips them; the campaign row is share-locked, so a
        pause waits for this batch and then stops the next). Domains whose throttle is
        spent for this period are left out."""
        return list(
            await conn.fetch(
                "SELECT r.* FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id "
                "WHERE r.state = 'pending' AND r.not_before <= $1 AND c.state = 'running' "
                "AND (c.throttle IS NULL OR NOT EXISTS (SELECT 1 FROM campaign_throttle t "
                "WHERE t.campaign_id = r.campaign_id AND t.domain = r.domain AND t.period = $2 "
                "AND t.used >= c.throttle)) ORDER BY r.not_before LIMIT $3 "
                "FOR UPDATE OF r SKIP LOCKED FOR SHARE OF c SKIP LOCKED",
                now,
                period,
                limit,
            )
        )

    async def reserve(
        self, conn: Conn, campaign_id: uuid.UUID, domain: str, period: datetime
    ) -> int:
        """The domain's count in this period, its row locked until the caller commits."""
        used: int = await conn.fetchval(
            "INSERT INTO campaign_throttle (campaign_id, domain, period, used) VALUES "
            "($1, $2, $3, 0) ON CONFLICT (campaign_id, domain, period) DO UPDATE SET used = "
            "campaign_throttle.used RETURNING used",
            campaign_id,
            domain,
            period,
        )
        return used

    async def use(
        self, conn: Conn, campaign_id: uuid.UUID, domain: str, period: datetime, count: int
    ) -> None:
        await conn.execute(
            "UPDATE campaign_throttle SET used = used + $4 WHERE campaign_id = $1 AND "
            "domain = $2 AND period = $3",
            campaign_id,
            domain,
            period,
            count,
        )

    async def postpone(
        self, conn: Conn, ids: Sequence[uuid.UUID], until: Sequence[datetime], now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE campaign_recipients r SET not_before = t.at, updated_at = $3 FROM "
            "unnest($1::uuid[], $2::timestamptz[]) AS t(id, at) WHERE r.id = t.id",
            list(ids),
            list(until),
            now,
        )

    async def set_states(
        self,
        conn: Conn,
        ids: Sequence[uuid.UUID],
        state: str,
        now: datetime,
        errors: Sequence[str] | None = None,
    ) -> None:
        await conn.execute(
            "UPDATE campaign_recipients r SET state = $2, error = t.error, updated_at = $3 "
            "FROM unnest($1::uuid[], $4::text[]) AS t(id, error) WHERE r.id = t.id",
            list(ids),
            state,
            now,
            list(errors) if errors is not None else [""] * len(ids),
        )

    async def mark_queued(
        self,
        conn: Conn,
        ids: Sequence[uuid.UUID],
        send_ids: Sequence[uuid.UUID],
        message_ids: Sequence[str],
        now: datetime,
    ) -> None:
        await conn.execute(
            "UPDATE campaign_recipients r SET state = 'queued', send_id = t.send_id, "
            "message_id = t.message_id, queued_at = $4, updated_at = $4 FROM unnest($1::uuid[], "
            "$2::uuid[], $3::text[]) AS t(id, send_id, message_id) WHERE r.id = t.id",
            list(ids),
            list(send_ids),
            list(message_ids),
            now,
        )

    async def cancel_pending(self, conn: Conn, campaign_id: uuid.UUID, now: datetime) -> None:
        """The recipients not yet queued cancelled; the queued ones whose mails still wait
        in the outbox (no sender has taken them: a taken one is sent) have those mails
        cancelled — the finisher then marks them `cancelled` too."""
        await conn.execute(
            "UPDATE campaign_recipients SET state = 'cancelled', updated_at = $2 "
            "WHERE campaign_id = $1 AND state = 'pending'",
            campaign_id,
            now,
        )
        await conn.execute(
            "UPDATE sends SET state = 'cancelled', last_message = 'the campaign was "
            "cancelled', updated_at = $2 WHERE kind = 'campaign' AND state IN ('scheduled', "
            "'retrying') AND id IN (SELECT send_id FROM campaign_recipients WHERE "
            "campaign_id = $1 AND state = 'queued' AND send_id IS NOT NULL)",
            campaign_id,
            now,
        )

    async def after_sends(
        self,
        conn: Conn,
        send_ids: Sequence[uuid.UUID],
        states: Sequence[str],
        errors: Sequence[str],
        now: datetime,
    ) -> list[uuid.UUID]:
        """The sends' outcomes on their recipients (sent or failed; a later reply, bounce
        or unsubscribe is not undone); the campaigns touched."""
        rows = await conn.fetch(
            "UPDATE campaign_recipients r SET state = t.state, error = t.error, sent_at = "
            "CASE WHEN t.state = 'sent' THEN coalesce(r.sent_at, $5) ELSE r.sent_at END, "
            "updated_at = $5 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(send_id, "
            "state, error) WHERE r.send_id = t.send_id AND r.state = ANY($4::text[]) "
            "RETURNING r.campaign_id",
            list(send_ids),
            list(states),
            list(errors),
            ["queued", "sent", "failed"],
            now,
        )
        return sorted({r["campaign_id"] for r in rows})

    async def mark_by_message(
        self,
        conn: Conn,
        tenant: str,
        message_ids: Sequence[str],
        state: str,
        from_states: Sequence[str],
        now: datetime,
        error: str = "",
    ) -> list[asyncpg.Record]:
        rows = await conn.fetch(
            "UPDATE campaign_recipients SET state = $3, error = $6, updated_at = $5 WHERE "
            "tenant_id = $1 AND message_id = ANY($2::text[]) AND state = ANY($4::text[]) "
            "RETURNING *",
            uuid.UUID(tenant),
            list(message_ids),
            state,
            list(from_states),
            now,
            error,
        )
        return list(rows)

    async def unsubscribed(
        self, conn: Conn, tenant: str, campaign_id: uuid.UUID, address: str, now: datetime
    ) -> bool:
        got = await conn.fetchval(
            "UPDATE campaign_recipients SET state = 'unsubscribed', updated_at = $4 WHERE "
            "tenant_id = $1 AND campaign_id = $2 AND address = $3 AND state IN ('pending', "
            "'queued', 'sent', 'failed', 'replied') RETURNING 1",
            uuid.UUID(tenant),
            campaign_id,
            address.lower(),
            now,
        )
        return got is not None

    async def recipients(
        self, tenant: str, campaign_id: uuid.UUID, state: str, after: uuid.UUID | None, limit: int
    ) -> list[asyncpg.Record]:
        if state and state not in RECIPIENT_STATES:
            return []
        return list(
            await self.pool.fetch(
                "SELECT * FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 "
                "AND ($3 = '' OR state = $3) AND ($4::uuid IS NULL OR id > $4) ORDER BY id "
                "LIMIT $5",
                uuid.UUID(tenant),
                campaign_id,
                state,
                after,
                limit,
            )
        )
