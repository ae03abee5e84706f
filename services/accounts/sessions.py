"""Sessions and API tokens, the login history, and login locks (accounts' storage).

A browser session and a personal API token are both rows of `sessions`, kept by the
SHA-256 of their secret (a database leak yields no usable secret); a session also keeps
the hash of its CSRF token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from switchboard.v1 import accounts_pb2

from services.runtime.errors import NotFound
from services.runtime.paging import Cursor

from .convert import operator_ref, ts
from .domain import OperatorRecord
from .repo import _OPERATOR, Tenant, operator_of, policy_of, tenant_addresses_sql

# How stale `last_seen_at` may get before a request refreshes it (one write a minute).
SEEN_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    kind: str
    csrf_hash: bytes
    expires_at: datetime
    operator: OperatorRecord
    tenant: Tenant


@dataclass(frozen=True, slots=True)
class EndedSession:
    id: str
    tenant_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class RecentFailures:
    """The failed logins of one login and of one client address within the window, and
    when the last lock of each ended (the throttle's rule counts them: domain.Throttle)."""

    by_login: tuple[datetime, ...]
    by_address: tuple[datetime, ...]
    login_lock_ended: datetime | None
    address_lock_ended: datetime | None


# Which API tokens end with an operator's browser sessions (end_all_of).
NO_TOKENS, TOKENS_ENDING_WITH_PASSWORD, ALL_TOKENS = "none", "password", "all"


@dataclass(frozen=True, slots=True)
class LoginLock:
    kind: str  # "login" or "address"
    key: str
    failures: int
    locked_at: datetime
    until: datetime


def _lock_of(row: asyncpg.Record) -> LoginLock:
    return LoginLock(row["kind"], row["key"], row["failures"], row["locked_at"], row["until"])


def _token_pb(r: asyncpg.Record) -> accounts_pb2.ApiToken:
    token = accounts_pb2.ApiToken(
        id=str(r["id"]), name=r["name"], survives_password_change=r["survives_password_change"]
    )
    ts(r["created_at"], token.created_at)
    ts(r["expires_at"], token.expires_at)
    if r["last_seen_at"] and r["last_seen_at"] > r["created_at"]:
        token.last_used_at.FromDatetime(r["last_seen_at"])
    return token


def _active_session_pb(r: asyncpg.Record) -> accounts_pb2.ActiveSession:
    s = accounts_pb2.ActiveSession(
        id=str(r["id"]),
        operator=operator_ref(r["operator_id"], r["display_name"]),
        kind=r["kind"],
        client_address=r["client_address"],
        user_agent=r["user_agent"],
    )
    ts(r["created_at"], s.created_at)
    ts(r["last_seen_at"], s.last_seen_at)
    if r["op_id"] is not None:
        s.last_action.id = str(r["op_id"])
        s.last_action.at.FromDatetime(r["op_at"])
        s.last_action.action = r["op_action"]
        s.last_action.method = r["op_method"]
        s.last_action.path = r["op_path"]
        s.last_action.target = r["op_target"]
        s.last_action.status = r["op_status"]
    return s


def _login_pb(r: asyncpg.Record) -> accounts_pb2.LoginRecord:
    rec = accounts_pb2.LoginRecord(
        id=str(r["id"]),
        operator_id=str(r["operator_id"] or ""),
        login=r["login"],
        success=bool(r["success"]),
        result=r["result"] or ("ok" if r["success"] else "wrong_password"),
        client_address=r["client_address"],
        user_agent=r["user_agent"],
    )
    rec.at.FromDatetime(r["at"])
    return rec


class SessionsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        id: uuid.UUID,
        kind: str,
        token_hash: bytes,
        csrf_hash: bytes | None,
        op: OperatorRecord,
        created_at: datetime,
        expires_at: datetime,
        client_address: str = "",
        user_agent: str = "",
        name: str = "",
        survives_password_change: bool = False,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO sessions (id, kind, token_hash, csrf_hash, tenant_id, operator_id, "
            "created_at, expires_at, client_address, user_agent, name, last_seen_at, "
            "survives_password_change) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$7,$12)",
            id,
            kind,
            token_hash,
            csrf_hash,
            uuid.UUID(op.tenant_id),
            uuid.UUID(op.id),
            created_at,
            expires_at,
            client_address[:100],
            user_agent[:500],
            name,
            survives_password_change,
        )

    async def resolve(self, token_hash: bytes, now: datetime) -> SessionRow | None:
        """The live session or token of an active operator, its last use stamped."""
        row = await self._pool.fetchrow(
            f"WITH o AS ({_OPERATOR} WHERE o.id = (SELECT operator_id FROM sessions "
            "WHERE token_hash = $1)) "
            "SELECT s.id AS session_id, s.kind, s.csrf_hash, s.expires_at AS session_expires, "
            "s.last_seen_at, t.password_min_length, t.password_min_classes, "
            "t.password_max_age_days, t.ip_allowlist AS tenant_allowlist, "
            "t.time_zone AS tenant_time_zone, t.name AS tenant_name, "
            f"({tenant_addresses_sql('s.tenant_id')}) AS tenant_addresses, o.* "
            "FROM sessions s JOIN o ON o.id = s.operator_id AND o.tenant_id = s.tenant_id "
            "JOIN tenants t ON t.id = s.tenant_id "
            "WHERE s.token_hash = $1 AND s.expires_at > $2 AND o.active",
            token_hash,
            now,
        )
        if row is None:
            return None
        if row["last_seen_at"] is None or now - row["last_seen_at"] > SEEN_GRANULARITY:
            await self._pool.execute(
                "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1", token_hash, now
            )
        return SessionRow(
            id=str(row["session_id"]),
            kind=row["kind"],
            csrf_hash=bytes(row["csrf_hash"] or b""),
            expires_at=row["session_expires"],
            operator=operator_of(row),
            tenant=Tenant(
                id=str(row["tenant_id"]),
                name=row["tenant_name"],
                time_zone=row["tenant_time_zone"],
                policy=policy_of(row),
                ip_allowlist=tuple(row["tenant_allowlist"]),
                addresses=tuple(row["tenant_addresses"]),
            ),
        )

    async def end(self, conn: asyncpg.Connection, token_hash: bytes) -> EndedSession | None:
        row = await conn.fetchrow(
            "DELETE FROM sessions WHERE token_hash = $1 RETURNING id, tenant_id, operator_id",
            token_hash,
        )
        if row is None:
            return None
        return EndedSession(str(row["id"]), str(row["tenant_id"]), str(row["operator_id"]))

    async def end_all_of(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        operator_id: uuid.UUID,
        *,
        keep: str = "",
        tokens: str = NO_TOKENS,
    ) -> list[str]:
        """Every browser session of an operator, but `keep` (the session that changed the
        password), and of their API tokens `tokens`: none, those that end with a password
        change, or all. The ids of those ended."""
        rows = await conn.fetch(
            "DELETE FROM sessions WHERE tenant_id = $1 AND operator_id = $2 "
            "AND id::text <> $3 AND (kind = 'session' OR $4 = 'all' "
            "OR ($4 = 'password' AND NOT survives_password_change)) RETURNING id",
            uuid.UUID(tenant_id),
            operator_id,
            keep,
            tokens,
        )
        return [str(r["id"]) for r in rows]

    async def revoke(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        session_id: uuid.UUID,
        *,
        operator_id: str | None,
        kind: str | None,
    ) -> str:
        """End one session or token of the tenant (of `operator_id` only, when given):
        the operator whose it was."""
        found = await conn.fetchval(
            "DELETE FROM sessions WHERE tenant_id = $1 AND id = $2 "
            "AND ($3::uuid IS NULL OR operator_id = $3) AND ($4::text IS NULL OR kind = $4) "
            "RETURNING operator_id",
            uuid.UUID(tenant_id),
            session_id,
            uuid.UUID(operator_id) if operator_id else None,
            kind,
        )
        if found is None:
            raise NotFound("no such session or token", field="id")
        return str(found)

    async def tokens(
        self, tenant_id: str, operator_id: str, now: datetime
    ) -> list[accounts_pb2.ApiToken]:
        return [
            _token_pb(r)
            for r in await self._pool.fetch(
                "SELECT id, name, created_at, expires_at, last_seen_at, survives_password_change "
                "FROM sessions "
                "WHERE tenant_id = $1 AND operator_id = $2 AND kind = 'token' AND expires_at > $3 "
                "ORDER BY created_at DESC",
                uuid.UUID(tenant_id),
                uuid.UUID(operator_id),
                now,
            )
        ]

    async def count_tokens(self, tenant_id: str, operator_id: str, now: datetime) -> int:
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM sessions WHERE tenant_id = $1 AND operator_id = $2 "
                "AND kind = 'token' AND expires_at > $3",
                uuid.UUID(tenant_id),
                uuid.UUID(operator_id),
                now,
            )
        )

    async def active(
        self, tenant_id: str, seen_since: datetime, now: datetime
    ) -> list[accounts_pb2.ActiveSession]:
        """Who is logged in now: live sessions used since `seen_since`, with each
        operator's latest entry of the operation log."""
        return [
            _active_session_pb(r)
            for r in await self._pool.fetch(
                "SELECT s.id, s.kind, s.client_address, s.user_agent, s.created_at, "
                "s.last_seen_at, o.id AS operator_id, o.display_name, "
                "l.id AS op_id, l.at AS op_at, l.action AS op_action, l.method AS op_method, "
                "l.path AS op_path, l.target AS op_target, l.status AS op_status "
                "FROM sessions s JOIN operators o ON o.id = s.operator_id "
                "AND o.tenant_id = s.tenant_id "
                "LEFT JOIN LATERAL (SELECT * FROM operation_log l WHERE l.tenant_id = s.tenant_id "
                "AND l.operator_id = s.operator_id ORDER BY l.at DESC LIMIT 1) l ON true "
                "WHERE s.tenant_id = $1 AND s.expires_at > $3 AND s.last_seen_at >= $2 "
                "ORDER BY s.last_seen_at DESC LIMIT 1000",
                uuid.UUID(tenant_id),
                seen_since,
                now,
            )
        ]

    # -- login history -----------------------------------------------------------------

    async def record_login(
        self,
        *,
        id: uuid.UUID,
        op: OperatorRecord | None,
        login: str,
        result: str,
        client_address: str,
        user_agent: str,
        at: datetime,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO login_history (id, tenant_id, operator_id, login, success, result, "
            "client_address, user_agent, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            id,
            uuid.UUID(op.tenant_id) if op else None,
            uuid.UUID(op.id) if op else None,
            login[:254],
            result == "ok",
            result,
            client_address[:100],
            user_agent[:500],
            at,
        )

    async def history(
        self,
        tenant_id: str,
        *,
        operator_id: uuid.UUID | None,
        failures_only: bool,
        after: Cursor | None,
        limit: int,
    ) -> list[accounts_pb2.LoginRecord]:
        return [
            _login_pb(r)
            for r in await self._pool.fetch(
                "SELECT * FROM login_history WHERE tenant_id = $1 "
                "AND ($2::uuid IS NULL OR operator_id = $2) AND (NOT $3 OR NOT success) "
                "AND ($4::timestamptz IS NULL OR (at, id) < ($4, $5)) "
                "ORDER BY at DESC, id DESC LIMIT $6",
                uuid.UUID(tenant_id),
                operator_id,
                failures_only,
                after.received_at if after else None,
                after.id if after else None,
                limit,
            )
        ]

    async def recent_failures(
        self, *, login: str, client: str, since: datetime, now: datetime, limit: int
    ) -> RecentFailures:
        """The failed logins of this login and from this client address after `since` (at
        most `limit` of each, the latest), and when their last locks ended (before now)."""
        key = login.lower()[:254]
        rows = await self._pool.fetch(
            "(SELECT 'login' AS kind, at FROM login_history WHERE lower(login) = $1 "
            " AND NOT success AND at > $3 AND at <= $4 ORDER BY at DESC LIMIT $5) "
            "UNION ALL (SELECT 'address', at FROM login_history WHERE client_address = $2 "
            " AND NOT success AND at > $3 AND at <= $4 ORDER BY at DESC LIMIT $5) "
            "UNION ALL (SELECT 'login_lock', until FROM login_locks WHERE kind = 'login' "
            " AND key = $1 AND until <= $4) "
            "UNION ALL (SELECT 'address_lock', until FROM login_locks WHERE kind = 'address' "
            " AND key = $2 AND until <= $4)",
            key,
            client[:100],
            since,
            now,
            limit,
        )
        found: dict[str, list[datetime]] = {}
        for r in rows:
            found.setdefault(r["kind"], []).append(r["at"])
        return RecentFailures(
            by_login=tuple(found.get("login", ())),
            by_address=tuple(found.get("address", ())) if client else (),
            login_lock_ended=max(found.get("login_lock", ()), default=None),
            address_lock_ended=max(found.get("address_lock", ()), default=None),
        )

    # -- login locks -------------------------------------------------------------------

    async def active_lock(self, *, login: str, client: str, now: datetime) -> LoginLock | None:
        """The lock on this login or this client address that is still running, if any."""
        row = await self._pool.fetchrow(
            "SELECT * FROM login_locks WHERE until > $3 AND ((kind = 'login' AND key = $1) "
            "OR (kind = 'address' AND key = $2)) ORDER BY until DESC LIMIT 1",
            login.lower()[:254],
            client[:100],
            now,
        )
        return _lock_of(row) if row else None

    async def lock(
        self,
        *,
        kind: str,
        key: str,
        tenant_id: str | None,
        failures: int,
        now: datetime,
        until: datetime,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO login_locks (kind, key, tenant_id, failures, locked_at, until) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (kind, key) DO UPDATE SET "
            "tenant_id = coalesce(EXCLUDED.tenant_id, login_locks.tenant_id), "
            "failures = EXCLUDED.failures, locked_at = EXCLUDED.locked_at, until = EXCLUDED.until",
            kind,
            key[:254],
            uuid.UUID(tenant_id) if tenant_id else None,
            failures,
            now,
            until,
        )

    async def locks(self, tenant_id: str, now: datetime) -> list[LoginLock]:
        return [
            _lock_of(r)
            for r in await self._pool.fetch(
                "SELECT * FROM login_locks WHERE tenant_id = $1 AND until > $2 ORDER BY until DESC",
                uuid.UUID(tenant_id),
                now,
            )
        ]

    async def clear_lock(self, tenant_id: str, kind: str, key: str, now: datetime) -> None:
        """End a lock now; failures before now no longer count towards the next one."""
        status = await self._pool.execute(
            "UPDATE login_locks SET until = $4 WHERE tenant_id = $1 AND kind = $2 AND key = $3 "
            "AND until > $4",
            uuid.UUID(tenant_id),
            kind,
            key,
            now,
        )
        if status == "UPDATE 0":
            raise NotFound("no such lock", field="key")
