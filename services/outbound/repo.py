"""Outbound's SQL: the outbox of mail to send and its leases, the attempts, routes, DKIM
keys, automatic-reply settings and log. Every query is scoped by tenant except the
dispatcher's, which works across tenants by design (it claims due items by time) and
touches each row only by its id and lease."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime import metrics as m
from services.runtime.events import SEND_CHANGED
from services.runtime.paging import Cursor

from .records import (
    Attempt,
    AutoReplySettings,
    DkimKey,
    Route,
    Send,
    attempt_of,
    auto_reply_of,
    dkim_key_of,
    route_of,
    send_of,
)

_SEND_CHANGED = SEND_CHANGED.subject


@dataclass(frozen=True)
class NewSend:
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    draft_id: uuid.UUID | None
    draft_revision: int
    ticket_id: uuid.UUID | None
    inbox_id: uuid.UUID
    operator_id: uuid.UUID | None
    operator_name: str
    operator_md: Sequence[tuple[str, str]]
    fence: int
    lock_held: bool
    status_after: int
    message_id: str
    subject: str
    envelope_from: str
    recipients: Sequence[str]
    raw: bytes
    dkim_signed: bool
    send_at: datetime
    max_attempts: int
    route_name: str
    without_survey: bool = False  # "resolve without survey" (issue 20)


@dataclass(frozen=True)
class Recorded:
    """One attempt's result, as `record` writes it."""

    send_id: uuid.UUID
    state: str
    attempt: int
    outcome: str
    code: int
    message: str
    rejected: Sequence[str]
    next_attempt_at: datetime | None
    env: events_pb2.EventEnvelope


def _env_args(env: events_pb2.EventEnvelope) -> tuple[uuid.UUID, bytes]:
    return uuid.UUID(env.event_id), env.SerializeToString()


class OutboundRepo:
    def __init__(self, pool: asyncpg.Pool, metrics: m.Metrics | None = None) -> None:
        self.pool = pool
        # every change of a send's state is written here: counted here, by the new state
        self._entered = m.Children((metrics or m.Metrics("outbound")).counter(m.OUTBOUND_SENDS))

    def _moved(self, state: str, count: int = 1) -> None:
        if count:
            self._entered(state).inc(count)

    # -- the outbox ------------------------------------------------------------------

    async def insert_send(
        self,
        conn: asyncpg.Connection,
        s: NewSend,
        now: datetime,
        env: events_pb2.EventEnvelope | None,
    ) -> Send:
        row = await conn.fetchrow(
            "INSERT INTO sends (tenant_id, id, kind, draft_id, draft_revision, ticket_id, "
            "inbox_id, operator_id, operator_name, operator_md, fence, lock_held, "
            "status_after, state, message_id, subject, envelope_from, recipients, raw, "
            "dkim_signed, send_at, next_attempt_at, max_attempts, route_name, created_at, "
            "updated_at, without_survey) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::jsonb,$11,$12,"
            "$13,'scheduled',$14,$15,$16,$17,$18,$19,$20,$20,$21,$22,$23,$23,$24) RETURNING *",
            s.tenant_id,
            s.id,
            s.kind,
            s.draft_id,
            s.draft_revision,
            s.ticket_id,
            s.inbox_id,
            s.operator_id,
            s.operator_name,
            json.dumps([list(p) for p in s.operator_md]),
            s.fence,
            s.lock_held,
            s.status_after,
            s.message_id,
            s.subject,
            s.envelope_from,
            list(s.recipients),
            s.raw,
            s.dkim_signed,
            s.send_at,
            s.max_attempts,
            s.route_name,
            now,
            s.without_survey,
        )
        if env is not None:
            await self.add_event(conn, env)
        self._moved("scheduled")
        return send_of(row)

    async def add_event(self, conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> None:
        event_id, payload = _env_args(env)
        await conn.execute(
            "INSERT INTO outbox (event_id, tenant_id, subject, payload) VALUES ($1,$2,$3,$4)",
            event_id,
            uuid.UUID(env.tenant_id),
            _SEND_CHANGED,
            payload,
        )

    async def claim(
        self, worker: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Send]:
        """Due items, oldest first, for this worker: each row goes to one worker only
        (FOR UPDATE SKIP LOCKED), under a lease; the attempt is counted now."""
        rows = await self.pool.fetch(
            "UPDATE sends s SET state = 'sending', phase = 'connecting', lease_owner = $1, "
            "lease_until = $2, attempts = s.attempts + 1, updated_at = $3 "
            "FROM (SELECT id FROM sends WHERE state IN ('scheduled', 'retrying') "
            "AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4 "
            "FOR UPDATE SKIP LOCKED) due WHERE s.id = due.id RETURNING s.*",
            worker,
            lease_until,
            now,
            limit,
        )
        self._moved("sending", len(rows))
        return [send_of(r) for r in rows]

    async def due_backlog(self, now: datetime) -> tuple[int, float]:
        """How many sends are due and not taken, and how long the oldest has waited past
        its time (seconds), in one query on the index of waiting sends."""
        row = await self.pool.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM $1 - min(next_attempt_at)), 0)"
            "::float8 AS age FROM sends "
            "WHERE state IN ('scheduled', 'retrying') AND next_attempt_at <= $1",
            now,
        )
        assert row is not None
        return int(row["n"]), max(float(row["age"]), 0.0)

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self.pool.fetchval(
            "SELECT min(next_attempt_at) FROM sends WHERE state IN ('scheduled', 'retrying')"
        )
        return value

    async def enter_data(
        self, ids: Sequence[uuid.UUID], worker: str, lease_until: datetime
    ) -> set[uuid.UUID]:
        """The moment before each message is written: the items this worker still owns
        (for them, a lost lease now means "unknown", not "send again")."""
        rows = await self.pool.fetch(
            "UPDATE sends SET phase = 'data', lease_until = $3 "
            "WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND state = 'sending' RETURNING id",
            list(ids),
            worker,
            lease_until,
        )
        return {r["id"] for r in rows}

    async def renew(self, ids: Sequence[uuid.UUID], worker: str, lease_until: datetime) -> None:
        if ids:
            await self.pool.execute(
                "UPDATE sends SET lease_until = $3 WHERE id = ANY($1::uuid[]) "
                "AND lease_owner = $2 AND state = 'sending'",
                list(ids),
                worker,
                lease_until,
            )

    async def record(
        self, results: Sequence[Recorded], worker: str, now: datetime
    ) -> set[uuid.UUID]:
        """Attempts' results, their history rows and their events, in one statement —
        each only while this worker holds its item (also after a sweep called it
        unknown). Returns the items recorded."""
        rows = await self.pool.fetch(
            "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], "
            "$4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::uuid[], "
            "$10::bytea[]) AS t(id, state, next_at, code, message, rejected, attempt, "
            "outcome, event_id, payload)), "
            "u AS (UPDATE sends s SET state = i.state, phase = 'queued', lease_owner = NULL, "
            "lease_until = NULL, next_attempt_at = coalesce(i.next_at, s.next_attempt_at), "
            "last_code = nullif(i.code, 0), last_message = i.message, "
            "rejected = ARRAY(SELECT jsonb_array_elements_text(i.rejected::jsonb)), "
            "sent_at = CASE WHEN i.state = 'sent' THEN $12 ELSE s.sent_at END, "
            "finished_at = CASE WHEN i.state IN ('sent', 'failed', 'unknown') THEN NULL "
            "ELSE s.finished_at END, updated_at = $12 FROM i "
            "WHERE s.id = i.id AND s.lease_owner = $11 AND s.state IN ('sending', 'unknown') "
            "RETURNING s.id, s.tenant_id), "
            "a AS (INSERT INTO send_attempts (send_id, attempt, at, outcome, code, message, "
            "worker) SELECT i.id, i.attempt, $12, i.outcome, nullif(i.code, 0), i.message, $11 "
            "FROM i JOIN u ON u.id = i.id ON CONFLICT (send_id, attempt) DO UPDATE SET "
            "outcome = excluded.outcome, code = excluded.code, message = excluded.message, "
            "at = excluded.at), "
            "o AS (INSERT INTO outbox (event_id, tenant_id, subject, payload) "
            "SELECT i.event_id, u.tenant_id, $13, i.payload FROM i JOIN u ON u.id = i.id) "
            "SELECT id FROM u",
            [r.send_id for r in results],
            [r.state for r in results],
            [r.next_attempt_at for r in results],
            [r.code for r in results],
            [r.message for r in results],
            [json.dumps(list(r.rejected)) for r in results],
            [r.attempt for r in results],
            [r.outcome for r in results],
            [uuid.UUID(r.env.event_id) for r in results],
            [r.env.SerializeToString() for r in results],
            worker,
            now,
            _SEND_CHANGED,
        )
        recorded = {r["id"] for r in rows}
        for r in results:
            if r.send_id in recorded:
                self._moved(r.state)
        return recorded

    async def expired_leases(self, now: datetime, limit: int = 100) -> list[Send]:
        rows = await self.pool.fetch(
            "SELECT * FROM sends WHERE state = 'sending' AND lease_until < $1 "
            "ORDER BY lease_until LIMIT $2",
            now,
            limit,
        )
        return [send_of(r) for r in rows]

    async def expire_lease(
        self,
        row: Send,
        *,
        state: str,
        message: str,
        now: datetime,
        env: events_pb2.EventEnvelope,
    ) -> bool:
        """A worker's lease ran out (it died or stalled): before the message, the item is
        due again; in the message, it is unknown. Conditional on the lease read."""
        event_id, payload = _env_args(env)
        outcome = "unknown" if state == "unknown" else "temporary"
        done = await self.pool.fetchval(
            "WITH u AS (UPDATE sends SET state = $4, phase = 'queued', "
            "lease_owner = CASE WHEN $4 = 'unknown' THEN lease_owner END, "
            "lease_until = NULL, next_attempt_at = $5, last_code = NULL, last_message = $6, "
            "finished_at = NULL, updated_at = $5 "
            "WHERE id = $1 AND state = 'sending' AND lease_owner = $2 AND lease_until = $3 "
            "RETURNING id, tenant_id, attempts), "
            "a AS (INSERT INTO send_attempts (send_id, attempt, at, outcome, message, worker) "
            "SELECT id, attempts, $5, $7, $6, $2 FROM u ON CONFLICT DO NOTHING), "
            "o AS (INSERT INTO outbox (event_id, tenant_id, subject, payload) "
            "SELECT $8, tenant_id, $9, $10 FROM u) "
            "SELECT count(*) FROM u",
            row.id,
            row.lease_owner,
            row.lease_until,
            state,
            now,
            message,
            outcome,
            event_id,
            _SEND_CHANGED,
            payload,
        )
        if done:
            self._moved(state)
        return bool(done)

    # -- after sending ----------------------------------------------------------------

    async def claim_unfinished(
        self, worker: str, now: datetime, hold: timedelta, limit: int
    ) -> list[Send]:
        rows = await self.pool.fetch(
            "UPDATE sends s SET lease_owner = $1, lease_until = $2 "
            "FROM (SELECT id FROM sends WHERE ((finished_at IS NULL AND state IN "
            "('sent', 'failed', 'unknown')) OR (lock_held AND state = 'retrying')) "
            "AND kind <> 'campaign' "
            "AND (lease_until IS NULL OR lease_until < $3) ORDER BY updated_at LIMIT $4 "
            "FOR UPDATE SKIP LOCKED) todo WHERE s.id = todo.id RETURNING s.*",
            worker,
            now + hold,
            now,
            limit,
        )
        return [send_of(r) for r in rows]

    async def finished(
        self, row: Send, worker: str, now: datetime, error: str, lock_released: bool
    ) -> None:
        """The steps after a state are done (for that state: a change since resets it)."""
        await self.pool.execute(
            "UPDATE sends SET finished_at = CASE WHEN state IN ('sent', 'failed', 'unknown') "
            "THEN $4::timestamptz END, finish_error = $5, lock_held = lock_held AND NOT $6, "
            "lease_owner = NULL, lease_until = NULL "
            "WHERE id = $1 AND state = $2 AND lease_owner = $3",
            row.id,
            row.state,
            worker,
            now,
            error[:1000],
            lock_released,
        )

    async def postpone_finish(self, row: Send, worker: str, until: datetime) -> None:
        await self.pool.execute(
            "UPDATE sends SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
            row.id,
            worker,
            until,
        )

    # -- reading and operator changes -----------------------------------------------

    async def get(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        tenant: str,
        send_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> Send | None:
        row = await conn.fetchrow(
            "SELECT * FROM sends WHERE tenant_id = $1 AND id = $2"
            + (" FOR UPDATE" if lock else ""),
            uuid.UUID(tenant),
            send_id,
        )
        return None if row is None else send_of(row)

    async def attempts(self, send_id: uuid.UUID) -> list[Attempt]:
        rows = await self.pool.fetch(
            "SELECT * FROM send_attempts WHERE send_id = $1 ORDER BY attempt", send_id
        )
        return [attempt_of(r) for r in rows]

    async def list_sends(
        self,
        tenant: str,
        *,
        ticket_id: uuid.UUID | None,
        inbox_ids: list[uuid.UUID] | None,
        states: list[str] | None,
        limit: int,
        cursor: Cursor | None,
    ) -> list[Send]:
        rows = await self.pool.fetch(
            "SELECT * FROM sends WHERE tenant_id = $1 "
            "AND ($2::uuid IS NULL OR ticket_id = $2) "
            "AND ($3::uuid[] IS NULL OR inbox_id = ANY($3)) "
            "AND ($4::text[] IS NULL OR state = ANY($4)) "
            "AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6)) "
            "ORDER BY created_at DESC, id DESC LIMIT $7",
            uuid.UUID(tenant),
            ticket_id,
            inbox_ids,
            states,
            cursor.received_at if cursor else None,
            cursor.id if cursor else None,
            limit + 1,
        )
        return [send_of(r) for r in rows]

    async def set_state(
        self,
        conn: asyncpg.Connection,
        row: Send,
        *,
        state: str,
        now: datetime,
        env: events_pb2.EventEnvelope,
        send_at: datetime | None = None,
        due_at: datetime | None = None,
        bounce: str | None = None,
        attempts_left: bool = False,
    ) -> Send:
        """An operator's (or a bounce's) change of a row read FOR UPDATE in `conn`."""
        updated = await conn.fetchrow(
            "UPDATE sends SET state = $3, updated_at = $4, "
            "send_at = coalesce($5, send_at), next_attempt_at = coalesce($8, $5, next_attempt_at), "
            "bounce = coalesce($6, bounce), lease_owner = NULL, lease_until = NULL, "
            "max_attempts = CASE WHEN $7 THEN greatest(max_attempts, attempts + 1) "
            "ELSE max_attempts END, "
            "sent_at = CASE WHEN $3 = 'sent' THEN coalesce(sent_at, $4) ELSE sent_at END, "
            "finished_at = CASE WHEN $3 IN ('sent', 'failed') THEN NULL ELSE finished_at END "
            "WHERE tenant_id = $1 AND id = $2 RETURNING *",
            row.tenant_id,
            row.id,
            state,
            now,
            send_at,
            bounce,
            attempts_left,
            due_at,
        )
        await self.add_event(conn, env)
        self._moved(state)
        return send_of(updated)

    async def set_outcome(
        self,
        conn: asyncpg.Connection,
        row: Send,
        *,
        state: str,
        bounce: str,
        now: datetime,
        env: events_pb2.EventEnvelope,
    ) -> None:
        """A sent mail's outcome learnt afterwards (a channel's delivery dead, or delivered
        after all): its state and note only — the steps after sending stay done."""
        await conn.execute(
            "UPDATE sends SET state = $3, bounce = $4, updated_at = $5 "
            "WHERE tenant_id = $1 AND id = $2",
            row.tenant_id,
            row.id,
            state,
            bounce,
            now,
        )
        await self.add_event(conn, env)
        self._moved(state)

    async def live_send(self, tenant: str, draft_id: uuid.UUID, revision: int) -> Send | None:
        """The send of this revision of a draft that was not cancelled, if any."""
        row = await self.pool.fetchrow(
            "SELECT * FROM sends WHERE tenant_id = $1 AND draft_id = $2 AND draft_revision = $3 "
            "AND state <> 'cancelled'",
            uuid.UUID(tenant),
            draft_id,
            revision,
        )
        return None if row is None else send_of(row)

    async def by_message_id(
        self, conn: asyncpg.Connection, tenant: str, message_id: str
    ) -> Send | None:
        row = await conn.fetchrow(
            "SELECT * FROM sends WHERE tenant_id = $1 AND message_id = $2 "
            "ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
            uuid.UUID(tenant),
            message_id,
        )

        # -- routes, keys, auto-reply settings --------------------------------------------
        return None if row is None else send_of(row)

    async def routes(self, tenant: str) -> list[Route]:
        rows = await self.pool.fetch(
            "SELECT * FROM smtp_routes WHERE tenant_id = $1 ORDER BY scope, name",
            uuid.UUID(tenant),
        )
        return [route_of(r) for r in rows]

    async def dkim_key(self, tenant: str, domain: str) -> DkimKey | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM dkim_keys WHERE tenant_id = $1 AND domain = $2",
            uuid.UUID(tenant),
            domain,
        )
        return None if row is None else dkim_key_of(row)

    async def dkim_keys(self, tenant: str) -> list[DkimKey]:
        rows = await self.pool.fetch(
            "SELECT * FROM dkim_keys WHERE tenant_id = $1 ORDER BY domain", uuid.UUID(tenant)
        )
        return [dkim_key_of(r) for r in rows]

    async def auto_reply(self, tenant: str, inbox_id: uuid.UUID) -> AutoReplySettings | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM auto_reply_settings WHERE tenant_id = $1 AND inbox_id = $2",
            uuid.UUID(tenant),
            inbox_id,
        )
        return None if row is None else auto_reply_of(row)

    async def last_auto_reply(
        self, tenant: str, inbox_id: uuid.UUID, address: str
    ) -> datetime | None:
        value: datetime | None = await self.pool.fetchval(
            "SELECT sent_at FROM auto_reply_log WHERE tenant_id = $1 AND inbox_id = $2 "
            "AND address = $3",
            uuid.UUID(tenant),
            inbox_id,
            address.lower(),
        )
        return value

    async def note_auto_reply(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        inbox_id: uuid.UUID,
        address: str,
        now: datetime,
        period: timedelta,
    ) -> bool:
        """Claims the sender's slot for the period; False when another reply took it."""
        got = await conn.fetchval(
            "INSERT INTO auto_reply_log (tenant_id, inbox_id, address, sent_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, inbox_id, address) DO UPDATE "
            "SET sent_at = excluded.sent_at WHERE auto_reply_log.sent_at <= $5 RETURNING 1",
            uuid.UUID(tenant),
            inbox_id,
            address.lower(),
            now,
            now - period,
        )
        return got is not None


def operator_md(row: Send) -> list[tuple[str, str]]:
    raw = row.operator_md
    pairs = json.loads(raw) if isinstance(raw, str) else raw
    return [(str(k), str(v)) for k, v in pairs or []]
