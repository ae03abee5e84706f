"""approval's storage (its own database). Every query names the tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import asyncpg

from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound

from .policy import Policy
from .records import (
    Decision,
    Flag,
    Request,
    StoredPolicy,
    decision_of,
    flag_of,
    policy_body,
    policy_of,
    request_of,
    stages_data,
)

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _u(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


class ApprovalRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- policies ------------------------------------------------------------------------

    async def policies(self, conn: Conn, tenant: str) -> list[StoredPolicy]:
        rows = await conn.fetch(
            "SELECT * FROM approval_policies WHERE tenant_id = $1 "
            "ORDER BY inbox_id NULLS FIRST, lower(name)",
            uuid.UUID(tenant),
        )
        return [policy_of(r) for r in rows]

    async def policy(self, conn: Conn, tenant: str, policy_id: uuid.UUID) -> StoredPolicy:
        row = await conn.fetchrow(
            "SELECT * FROM approval_policies WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant),
            policy_id,
        )
        if row is None:
            raise NotFound("no such approval policy", field="policy_id")
        return policy_of(row)

    async def insert_policy(
        self, conn: Conn, tenant: str, p: Policy, by: str, now: datetime
    ) -> StoredPolicy:
        try:
            row = await conn.fetchrow(
                "INSERT INTO approval_policies (tenant_id, id, inbox_id, name, body, version, "
                "updated_by, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,1,$6,$7,$7) "
                "RETURNING *",
                uuid.UUID(tenant),
                uuid.UUID(p.id),
                _u(p.inbox_id),
                p.name,
                policy_body(p),
                _u(by),
                now,
            )
        except asyncpg.UniqueViolationError:
            scope = "this inbox" if p.inbox_id else "the tenant"
            raise AlreadyExists(
                f"{scope} already has an approval policy: change that one", field="inbox_id"
            ) from None
        assert row is not None
        return policy_of(row)

    async def update_policy(
        self, conn: Conn, tenant: str, p: Policy, by: str, now: datetime
    ) -> StoredPolicy:
        row = await conn.fetchrow(
            "UPDATE approval_policies SET name = $4, body = $5, version = version + 1, "
            "updated_by = $6, updated_at = $7 "
            "WHERE tenant_id = $1 AND id = $2 AND version = $3 RETURNING *",
            uuid.UUID(tenant),
            uuid.UUID(p.id),
            p.version,
            p.name,
            policy_body(p),
            _u(by),
            now,
        )
        if row is None:
            current = await self.policy(conn, tenant, uuid.UUID(p.id))  # NotFound if gone
            raise FailedPrecondition(
                f"the policy was changed meanwhile (version {current.policy.version}, "
                f"not {p.version}): reload it",
                field="version",
            )
        return policy_of(row)

    async def delete_policy(self, conn: Conn, tenant: str, policy_id: uuid.UUID) -> None:
        done = await conn.execute(
            "DELETE FROM approval_policies WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant),
            policy_id,
        )
        if done == "DELETE 0":
            raise NotFound("no such approval policy", field="policy_id")

    # -- operator flags ------------------------------------------------------------------

    async def flags(self, conn: Conn, tenant: str) -> list[Flag]:
        rows = await conn.fetch(
            "SELECT * FROM operator_flags WHERE tenant_id = $1 ORDER BY until DESC",
            uuid.UUID(tenant),
        )
        return [flag_of(r) for r in rows]

    async def flag(self, conn: Conn, tenant: str, operator_id: str) -> Flag | None:
        row = await conn.fetchrow(
            "SELECT * FROM operator_flags WHERE tenant_id = $1 AND operator_id = $2",
            uuid.UUID(tenant),
            uuid.UUID(operator_id),
        )
        return flag_of(row) if row else None

    async def set_flag(
        self, conn: Conn, tenant: str, flag: Flag | None, operator_id: str, now: datetime
    ) -> None:
        """Sets the flag, or (None) removes it."""
        if flag is None:
            await conn.execute(
                "DELETE FROM operator_flags WHERE tenant_id = $1 AND operator_id = $2",
                uuid.UUID(tenant),
                uuid.UUID(operator_id),
            )
            return
        await conn.execute(
            "INSERT INTO operator_flags (tenant_id, operator_id, until, set_by, set_by_name, "
            "updated_at) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (tenant_id, operator_id) DO "
            "UPDATE SET until = $3, set_by = $4, set_by_name = $5, updated_at = $6",
            uuid.UUID(tenant),
            uuid.UUID(flag.operator_id),
            flag.until,
            uuid.UUID(flag.set_by),
            flag.set_by_name,
            now,
        )

    # -- requests ------------------------------------------------------------------------

    async def insert_request(self, conn: Conn, tenant: str, r: Request) -> Request:
        try:
            row = await conn.fetchrow(
                "INSERT INTO requests (tenant_id, id, draft_id, revision, content_hash, "
                "ticket_id, inbox_id, author_id, author_name, subject, policy_id, stages, "
                "allow_self_approval, state, stage, note, send_at, status_after, requested_at, "
                "stage_started_at, submitted_revision, without_survey) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,0,$15,$16,$17,$18,$18,"
                "$4,$19) RETURNING *",
                uuid.UUID(tenant),
                uuid.UUID(r.id),
                uuid.UUID(r.draft_id),
                r.revision,
                r.content_hash,
                _u(r.ticket_id),
                uuid.UUID(r.inbox_id),
                uuid.UUID(r.author_id),
                r.author_name,
                r.subject,
                _u(r.policy_id),
                stages_data(r.stages),
                r.allow_self_approval,
                r.state.value,
                r.note,
                r.send_at,
                r.status_after,
                r.requested_at,
                r.without_survey,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                "this draft already awaits approval (or is approved): cancel that request first",
                field="draft_id",
            ) from None
        assert row is not None
        return request_of(row)

    async def request(
        self, conn: Conn, tenant: str, request_id: uuid.UUID, *, lock: bool = False
    ) -> Request | None:
        row = await conn.fetchrow(
            "SELECT * FROM requests WHERE tenant_id = $1 AND id = $2"
            + (" FOR UPDATE" if lock else ""),
            uuid.UUID(tenant),
            request_id,
        )
        return request_of(row) if row else None

    async def last_request(self, conn: Conn, tenant: str, draft_id: str) -> Request | None:
        row = await conn.fetchrow(
            "SELECT * FROM requests WHERE tenant_id = $1 AND draft_id = $2 "
            "ORDER BY requested_at DESC, id DESC LIMIT 1",
            uuid.UUID(tenant),
            uuid.UUID(draft_id),
        )
        return request_of(row) if row else None

    async def history(self, conn: Conn, tenant: str, draft_id: str) -> list[Request]:
        rows = await conn.fetch(
            "SELECT * FROM requests WHERE tenant_id = $1 AND draft_id = $2 "
            "ORDER BY requested_at, id",
            uuid.UUID(tenant),
            uuid.UUID(draft_id),
        )
        return [request_of(r) for r in rows]

    async def pending(
        self, conn: Conn, tenant: str, inboxes: list[str] | None, limit: int
    ) -> list[Request]:
        """Pending requests in these inboxes (None: every inbox), oldest first."""
        rows = await conn.fetch(
            "SELECT * FROM requests WHERE tenant_id = $1 AND state = 'pending' "
            "AND ($2::uuid[] IS NULL OR inbox_id = ANY($2::uuid[])) "
            "ORDER BY requested_at, id LIMIT $3",
            uuid.UUID(tenant),
            None if inboxes is None else [uuid.UUID(i) for i in inboxes],
            limit,
        )
        return [request_of(r) for r in rows]

    async def decisions_by_request(
        self, conn: Conn, tenant: str, request_ids: list[str]
    ) -> dict[str, list[Decision]]:
        out: dict[str, list[Decision]] = {i: [] for i in request_ids}
        rows = await conn.fetch(
            "SELECT * FROM decisions WHERE tenant_id = $1 AND request_id = ANY($2::uuid[]) "
            "ORDER BY decided_at, stage",
            uuid.UUID(tenant),
            [uuid.UUID(i) for i in request_ids],
        )
        for r in rows:
            out[str(r["request_id"])].append(decision_of(r))
        return out

    async def insert_decision(self, conn: Conn, tenant: str, request_id: str, d: Decision) -> None:
        await conn.execute(
            "INSERT INTO decisions (tenant_id, request_id, stage, approver_id, approver_name, "
            "verdict, comment, revision, decided_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            uuid.UUID(tenant),
            uuid.UUID(request_id),
            d.stage,
            uuid.UUID(d.approver_id),
            d.approver_name,
            d.verdict.value,
            d.comment,
            d.revision,
            d.decided_at,
        )

    async def update_request(self, conn: Conn, tenant: str, r: Request) -> Request:
        """Writes the request's mutable columns (state, stage, bound revision, the end)."""
        row = await conn.fetchrow(
            "UPDATE requests SET state = $3, stage = $4, revision = $5, content_hash = $6, "
            "stage_started_at = $7, finished_at = $8, finished_by = $9, finished_by_name = $10 "
            "WHERE tenant_id = $1 AND id = $2 RETURNING *",
            uuid.UUID(tenant),
            uuid.UUID(r.id),
            r.state.value,
            r.stage,
            r.revision,
            r.content_hash,
            r.stage_started_at,
            r.finished_at,
            _u(r.finished_by),
            r.finished_by_name,
        )
        assert row is not None
        return request_of(row)

    # -- the hand-over and reminders (a system's work: consumers and the sweeper) ------

    async def approved_of_draft(self, conn: Conn, tenant: str, draft_id: str) -> Request | None:
        """The draft's approved request (at most one: the live index), locked."""
        row = await conn.fetchrow(
            "SELECT * FROM requests WHERE tenant_id = $1 AND draft_id = $2 "
            "AND state = 'approved' FOR UPDATE",
            uuid.UUID(tenant),
            uuid.UUID(draft_id),
        )
        return request_of(row) if row else None

    async def overdue(self, conn: Conn, now: datetime, limit: int) -> list[tuple[str, Request]]:
        """(tenant, request) of every tenant's pending requests whose current stage is
        past its deadline and not yet reminded, the longest overdue first."""
        rows = await conn.fetch(
            "SELECT r.* FROM requests r, "
            "LATERAL (SELECT coalesce((r.stages -> r.stage ->> 'deadline_minutes')::int, 0) "
            "AS minutes) d "
            "WHERE r.state = 'pending' AND d.minutes > 0 "
            "AND r.stage_started_at + make_interval(mins => d.minutes) < $1 "
            "AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.tenant_id = r.tenant_id "
            "AND m.request_id = r.id AND m.stage = r.stage) "
            "ORDER BY r.stage_started_at + make_interval(mins => d.minutes), r.id LIMIT $2",
            now,
            limit,
        )
        return [(str(r["tenant_id"]), request_of(r)) for r in rows]

    async def note_reminder(
        self, conn: Conn, tenant: str, request_id: str, stage: int, now: datetime
    ) -> bool:
        """Record that this stage of the request was reminded; False when it already was."""
        done = await conn.execute(
            "INSERT INTO reminders (tenant_id, request_id, stage, reminded_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            uuid.UUID(tenant),
            uuid.UUID(request_id),
            stage,
            now,
        )
        return bool(done == "INSERT 0 1")
