"""Routing's assignment tables (migration 003_assignment.sql): presence, profiles, inbox
policies, the assigner's lock and the log of what it gave whom; the per-ticket rows and
load counters are in ticket_rows.py (the same repository object). Every query is scoped
by tenant; answers are frozen dataclasses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .assignment import Assignment, InboxPolicy, Presence, Profile, Skill, Strategy, Tier
from .ticket_rows import TicketRows, uuid_of

ADVISORY_ASSIGN = 0x5B_0018  # with the tenant's hash: one assignment pass per tenant at a time


@dataclass(frozen=True, slots=True)
class PresenceRow:
    operator_id: str
    status: Presence
    expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy: InboxPolicy
    cursor: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredProfile:
    profile: Profile
    updated_at: datetime


_u = uuid_of


def _presence(r: asyncpg.Record) -> PresenceRow:
    return PresenceRow(
        str(r["operator_id"]), Presence(r["status"]), r["expires_at"], r["updated_at"]
    )


def _policy(r: asyncpg.Record) -> StoredPolicy:
    tiers = tuple(
        Tier(tuple(t["operator_ids"]), int(t["widen_after_minutes"]))
        for t in json.loads(r["tiers"])
    )
    return StoredPolicy(
        InboxPolicy(
            inbox_id=str(r["inbox_id"]),
            strategy=Strategy(r["strategy"]),
            capacity=r["capacity"],
            channel_capacity=json.loads(r["channel_capacity"]),
            tiers=tiers,
            reassign_after_minutes=r["reassign_after_minutes"],
            max_new_per_hour=r["max_new_per_hour"],
        ),
        r["rr_cursor"],
        r["updated_at"],
    )


def _profile(r: asyncpg.Record) -> StoredProfile:
    return StoredProfile(
        Profile(
            operator_id=str(r["operator_id"]),
            capacity=r["capacity"],
            channel_capacity=json.loads(r["channel_capacity"]),
            skills=tuple(Skill(s["name"], int(s["level"])) for s in json.loads(r["skills"])),
            languages=tuple(r["languages"]),
        ),
        r["updated_at"],
    )


class AssignRepo(TicketRows):
    """Presence, profiles, policies, the assigner's lock and log; with `TicketRows`
    (ticket_rows.py) routing's rows of tickets and the load counters."""

    # -- presence ------------------------------------------------------------------------

    async def set_presence(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        operator: str,
        status: Presence,
        expires_at: datetime | None,
        now: datetime,
    ) -> PresenceRow | None:
        """Store the operator's presence; the one it replaces (None: never set)."""
        old = await conn.fetchrow(
            "SELECT operator_id, status, expires_at, updated_at FROM assign_presence"
            " WHERE tenant_id = $1 AND operator_id = $2 FOR UPDATE",
            _u(tenant),
            _u(operator),
        )
        await conn.execute(
            "INSERT INTO assign_presence (tenant_id, operator_id, status, expires_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, operator_id) DO UPDATE SET"
            " status = EXCLUDED.status, expires_at = EXCLUDED.expires_at,"
            " updated_at = EXCLUDED.updated_at",
            _u(tenant),
            _u(operator),
            status.value,
            expires_at,
            now,
        )
        return _presence(old) if old else None

    async def presence(self, conn: asyncpg.Connection, tenant: str) -> dict[str, PresenceRow]:
        rows = await conn.fetch(
            "SELECT operator_id, status, expires_at, updated_at FROM assign_presence"
            " WHERE tenant_id = $1",
            _u(tenant),
        )
        return {str(r["operator_id"]): _presence(r) for r in rows}

    # -- profiles and policies -----------------------------------------------------------

    async def profiles(self, conn: asyncpg.Connection, tenant: str) -> dict[str, StoredProfile]:
        rows = await conn.fetch("SELECT * FROM assign_profiles WHERE tenant_id = $1", _u(tenant))
        return {str(r["operator_id"]): _profile(r) for r in rows}

    async def profile(
        self, conn: asyncpg.Connection, tenant: str, operator: str
    ) -> StoredProfile | None:
        r = await conn.fetchrow(
            "SELECT * FROM assign_profiles WHERE tenant_id = $1 AND operator_id = $2",
            _u(tenant),
            _u(operator),
        )
        return _profile(r) if r else None

    async def put_profile(
        self, conn: asyncpg.Connection, tenant: str, p: Profile, now: datetime
    ) -> StoredProfile:
        await conn.execute(
            "INSERT INTO assign_profiles (tenant_id, operator_id, capacity, channel_capacity,"
            " skills, languages, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (tenant_id, operator_id) DO UPDATE SET capacity = EXCLUDED.capacity,"
            " channel_capacity = EXCLUDED.channel_capacity, skills = EXCLUDED.skills,"
            " languages = EXCLUDED.languages, updated_at = EXCLUDED.updated_at",
            _u(tenant),
            _u(p.operator_id),
            p.capacity,
            json.dumps(dict(p.channel_capacity)),
            json.dumps([{"name": s.name, "level": s.level} for s in p.skills]),
            list(p.languages),
            now,
        )
        return StoredProfile(p, now)

    async def policies(self, conn: asyncpg.Connection, tenant: str) -> dict[str, StoredPolicy]:
        rows = await conn.fetch("SELECT * FROM assign_policies WHERE tenant_id = $1", _u(tenant))
        return {str(r["inbox_id"]): _policy(r) for r in rows}

    async def policy(
        self, conn: asyncpg.Connection, tenant: str, inbox: str
    ) -> StoredPolicy | None:
        r = await conn.fetchrow(
            "SELECT * FROM assign_policies WHERE tenant_id = $1 AND inbox_id = $2",
            _u(tenant),
            _u(inbox),
        )
        return _policy(r) if r else None

    async def put_policy(
        self, conn: asyncpg.Connection, tenant: str, p: InboxPolicy, now: datetime
    ) -> StoredPolicy:
        tiers = [
            {"operator_ids": list(t.operator_ids), "widen_after_minutes": t.widen_after_minutes}
            for t in p.tiers
        ]
        r = await conn.fetchrow(
            "INSERT INTO assign_policies (tenant_id, inbox_id, strategy, capacity,"
            " channel_capacity, tiers, reassign_after_minutes, max_new_per_hour, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (tenant_id, inbox_id) DO UPDATE SET strategy = EXCLUDED.strategy,"
            " capacity = EXCLUDED.capacity, channel_capacity = EXCLUDED.channel_capacity,"
            " tiers = EXCLUDED.tiers, reassign_after_minutes = EXCLUDED.reassign_after_minutes,"
            " max_new_per_hour = EXCLUDED.max_new_per_hour, updated_at = EXCLUDED.updated_at"
            " RETURNING *",
            _u(tenant),
            _u(p.inbox_id),
            p.strategy.value,
            p.capacity,
            json.dumps(dict(p.channel_capacity)),
            json.dumps(tiers),
            p.reassign_after_minutes,
            p.max_new_per_hour,
            now,
        )
        return _policy(r)

    async def save_cursors(
        self, conn: asyncpg.Connection, tenant: str, cursors: Mapping[str, str]
    ) -> None:
        for inbox, operator in cursors.items():
            await conn.execute(
                "UPDATE assign_policies SET rr_cursor = $3 WHERE tenant_id = $1 AND inbox_id = $2",
                _u(tenant),
                _u(inbox),
                operator,
            )

    # -- the assigner's lock and log -----------------------------------------------------

    async def lock_tenant(self, conn: asyncpg.Connection, tenant: str) -> None:
        """One assignment pass per tenant at a time, across replicas (until commit)."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", ADVISORY_ASSIGN, tenant
        )

    async def log_assignments(
        self, conn: asyncpg.Connection, tenant: str, given: Sequence[Assignment], now: datetime
    ) -> None:
        """What the assigner gave whom (fairness: at most K an hour)."""
        if not given:
            return
        await conn.execute(
            "INSERT INTO assign_log (tenant_id, operator_id, ticket_id, inbox_id, at, strategy)"
            " SELECT $1, o, t, i, $2, s"
            " FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[]) AS v(o, t, i, s)",
            _u(tenant),
            now,
            [_u(a.operator_id) for a in given],
            [_u(a.ticket_id) for a in given],
            [_u(a.inbox_id) for a in given],
            [a.strategy.value for a in given],
        )

    async def new_since(
        self, conn: asyncpg.Connection, tenant: str, since: datetime
    ) -> dict[str, int]:
        """Tickets the assigner gave each operator since `since` (fairness)."""
        rows = await conn.fetch(
            "SELECT operator_id, count(*) AS n FROM assign_log WHERE tenant_id = $1"
            " AND at > $2 GROUP BY operator_id",
            _u(tenant),
            since,
        )
        return {str(r["operator_id"]): r["n"] for r in rows}
