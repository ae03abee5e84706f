"""Accounts' storage (its own database). Every query names the tenant, except the two
that find a tenant: a login, and an intake address."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from .domain import OperatorRecord


def _operator(row: Any) -> OperatorRecord:
    return OperatorRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        login=row["login"],
        display_name=row["display_name"],
        roles=tuple(row["roles"]),
        password_hash=row["password_hash"],
        active=row["active"],
    )


class AccountsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def operator_by_login(self, login: str) -> OperatorRecord | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM operators WHERE lower(login) = lower($1)", login
        )
        return _operator(row) if row else None

    async def record_login(
        self,
        *,
        id: uuid.UUID,
        op: OperatorRecord | None,
        login: str,
        success: bool,
        client_address: str,
        user_agent: str,
        at: datetime,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO login_history (id, tenant_id, operator_id, login, success, "
            "client_address, user_agent, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            id,
            uuid.UUID(op.tenant_id) if op else None,
            uuid.UUID(op.id) if op else None,
            login[:254],
            success,
            client_address[:100],
            user_agent[:500],
            at,
        )

    async def create_session(
        self,
        *,
        token_hash: bytes,
        op: OperatorRecord,
        created_at: datetime,
        expires_at: datetime,
        client_address: str,
        user_agent: str,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO sessions (token_hash, tenant_id, operator_id, created_at, expires_at, "
            "client_address, user_agent) VALUES ($1,$2,$3,$4,$5,$6,$7)",
            token_hash,
            uuid.UUID(op.tenant_id),
            uuid.UUID(op.id),
            created_at,
            expires_at,
            client_address[:100],
            user_agent[:500],
        )

    async def session(
        self, token_hash: bytes, now: datetime
    ) -> tuple[OperatorRecord, datetime] | None:
        row = await self._pool.fetchrow(
            "SELECT o.*, s.expires_at FROM sessions s "
            "JOIN operators o ON o.id = s.operator_id AND o.tenant_id = s.tenant_id "
            "WHERE s.token_hash = $1 AND s.expires_at > $2 AND o.active",
            token_hash,
            now,
        )
        return (_operator(row), row["expires_at"]) if row else None

    async def resolve_addresses(self, addresses: Sequence[str]) -> list[Any]:
        return list(
            await self._pool.fetch(
                "SELECT a.address, a.tenant_id, i.id AS inbox_id, i.name AS inbox_name "
                "FROM inbox_addresses a JOIN inboxes i ON i.id = a.inbox_id "
                "AND i.tenant_id = a.tenant_id WHERE a.address = ANY($1::text[])",
                list(addresses),
            )
        )

    async def operators(self, tenant_id: str) -> list[OperatorRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM operators WHERE tenant_id = $1 AND active ORDER BY display_name, id",
            uuid.UUID(tenant_id),
        )
        return [_operator(r) for r in rows]

    async def inboxes(self, tenant_id: str) -> list[tuple[str, str, list[str]]]:
        rows = await self._pool.fetch(
            "SELECT i.id, i.name, coalesce(array_agg(a.address ORDER BY a.address) "
            "FILTER (WHERE a.address IS NOT NULL), '{}') AS addresses "
            "FROM inboxes i LEFT JOIN inbox_addresses a ON a.inbox_id = i.id "
            "AND a.tenant_id = i.tenant_id WHERE i.tenant_id = $1 GROUP BY i.id, i.name "
            "ORDER BY i.name",
            uuid.UUID(tenant_id),
        )
        return [(str(r["id"]), r["name"], list(r["addresses"])) for r in rows]
