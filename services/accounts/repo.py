"""Accounts' storage of tenants, operators, roles and inboxes (its own database). Every
query names the tenant, except those that find a tenant: a login, and an intake address."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from switchboard.v1 import accounts_pb2, common_pb2

from services.runtime import permissions
from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound

from .domain import OperatorRecord, PasswordPolicy

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# An operator with their permissions (the union of their roles') and their inboxes.
_OPERATOR = """
SELECT o.*,
    coalesce((SELECT array_agg(DISTINCT p ORDER BY p) FROM roles r, unnest(r.permissions) p
              WHERE r.tenant_id = o.tenant_id AND r.name = ANY(o.roles)), '{}') AS permissions,
    coalesce((SELECT array_agg(m.inbox_id::text ORDER BY m.inbox_id::text) FROM inbox_members m
              WHERE m.tenant_id = o.tenant_id AND m.operator_id = o.id), '{}') AS inbox_ids
FROM operators o
"""


def tenant_addresses_sql(tenant: str) -> str:
    """The addresses of the inboxes of the tenant `tenant` (an SQL expression) names, as
    one array."""
    return (
        "SELECT coalesce(array_agg(a.address ORDER BY a.address), '{}') "
        f"FROM inbox_addresses a WHERE a.tenant_id = {tenant}"
    )


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    time_zone: str
    policy: PasswordPolicy
    ip_allowlist: tuple[str, ...]
    addresses: tuple[str, ...]  # of its inboxes


@dataclass(frozen=True, slots=True)
class InboxRecord:
    id: str
    name: str
    addresses: tuple[str, ...]
    member_ids: tuple[str, ...]
    plain_text_only: bool = False  # replies are plain text (no HTML body)


def operator_of(row: asyncpg.Record) -> OperatorRecord:
    return OperatorRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        login=row["login"],
        display_name=row["display_name"],
        roles=tuple(row["roles"]),
        password_hash=row["password_hash"],
        active=row["active"],
        addresses=tuple(row["addresses"]),
        language=row["language"],
        time_zone=row["time_zone"],
        skills=tuple(row["skills"]),
        capacity=row["capacity"],
        must_change_password=row["must_change_password"],
        password_changed_at=row["password_changed_at"],
        ip_allowlist=tuple(row["ip_allowlist"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        permissions=frozenset(row["permissions"]),
        inbox_ids=tuple(row["inbox_ids"]),
    )


def policy_of(row: asyncpg.Record) -> PasswordPolicy:
    return PasswordPolicy(
        row["password_min_length"], row["password_min_classes"], row["password_max_age_days"]
    )


async def ensure_builtin_roles(conn: Conn, tenant_id: uuid.UUID | None = None) -> None:
    """The built-in roles for one tenant (or every tenant); existing roles are kept as
    their administrators edited them."""
    await conn.executemany(
        "INSERT INTO roles (tenant_id, name, description, permissions, builtin) "
        "SELECT t.id, $1, $2, $3, true FROM tenants t WHERE $4::uuid IS NULL OR t.id = $4 "
        "ON CONFLICT DO NOTHING",
        [
            (name, desc, sorted(perms), tenant_id)
            for name, (perms, desc) in permissions.BUILTIN_ROLES.items()
        ],
    )


class AccountsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    # -- operators ---------------------------------------------------------------------

    async def operator_by_login(self, login: str) -> OperatorRecord | None:
        row = await self._pool.fetchrow(f"{_OPERATOR} WHERE lower(o.login) = lower($1)", login)
        return operator_of(row) if row else None

    async def operator(
        self, conn: Conn, tenant_id: str, operator_id: uuid.UUID
    ) -> OperatorRecord | None:
        row = await conn.fetchrow(
            f"{_OPERATOR} WHERE o.tenant_id = $1 AND o.id = $2", uuid.UUID(tenant_id), operator_id
        )
        return operator_of(row) if row else None

    async def operators(
        self, tenant_id: str, *, include_inactive: bool = False
    ) -> list[OperatorRecord]:
        rows = await self._pool.fetch(
            f"{_OPERATOR} WHERE o.tenant_id = $1 AND (o.active OR $2) "
            "ORDER BY o.display_name, o.id",
            uuid.UUID(tenant_id),
            include_inactive,
        )
        return [operator_of(r) for r in rows]

    async def insert_operator(
        self,
        conn: asyncpg.Connection,
        *,
        id: uuid.UUID,
        tenant_id: str,
        login: str,
        display_name: str,
        password_hash: str,
        now: datetime,
    ) -> None:
        try:
            await conn.execute(
                "INSERT INTO operators (id, tenant_id, login, display_name, password_hash, "
                "must_change_password, password_changed_at, created_at, updated_at) "
                "VALUES ($1,$2,$3,$4,$5,true,$6,$6,$6)",
                id,
                uuid.UUID(tenant_id),
                login,
                display_name,
                password_hash,
                now,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("an operator with this login exists", field="login") from None

    async def update_operator(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        operator_id: uuid.UUID,
        values: dict[str, Any],
    ) -> None:
        """Set these columns (names come from the API code, never from input)."""
        if not values:
            return
        cols = list(values)
        sets = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(cols))
        status = await conn.execute(
            f"UPDATE operators SET {sets} WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            operator_id,
            *[values[c] for c in cols],
        )
        if status == "UPDATE 0":
            raise NotFound("no such operator", field="operator_id")

    async def set_memberships(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        operator_id: uuid.UUID,
        inbox_ids: list[uuid.UUID],
    ) -> None:
        tenant = uuid.UUID(tenant_id)
        await self.require_inboxes(conn, tenant_id, inbox_ids)
        await conn.execute(
            "DELETE FROM inbox_members WHERE tenant_id = $1 AND operator_id = $2 "
            "AND NOT inbox_id = ANY($3::uuid[])",
            tenant,
            operator_id,
            inbox_ids,
        )
        await conn.execute(
            "INSERT INTO inbox_members (tenant_id, inbox_id, operator_id) "
            "SELECT $1, i, $2 FROM unnest($3::uuid[]) i ON CONFLICT DO NOTHING",
            tenant,
            operator_id,
            inbox_ids,
        )

    async def managers_left(self, conn: asyncpg.Connection, tenant_id: str) -> int:
        """Active operators who may manage operators (checked before a change commits)."""
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM operators o WHERE o.tenant_id = $1 AND o.active AND EXISTS "
                "(SELECT 1 FROM roles r WHERE r.tenant_id = o.tenant_id AND r.name = ANY(o.roles) "
                "AND $2 = ANY(r.permissions))",
                uuid.UUID(tenant_id),
                permissions.MANAGE_OPERATORS,
            )
        )

    async def lock_tenant(self, conn: asyncpg.Connection, tenant_id: str) -> None:
        """Serialise changes to a tenant's operators and roles (so the last manager cannot
        be removed by two changes at once)."""
        await conn.execute("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", uuid.UUID(tenant_id))

    # -- tenants -----------------------------------------------------------------------

    async def tenant(self, conn: Conn, tenant_id: str) -> Tenant:
        row = await conn.fetchrow(
            f"SELECT t.*, ({tenant_addresses_sql('t.id')}) AS addresses FROM tenants t "
            "WHERE t.id = $1",
            uuid.UUID(tenant_id),
        )
        if row is None:
            raise NotFound("no such tenant")
        return Tenant(
            id=str(row["id"]),
            name=row["name"],
            time_zone=row["time_zone"],
            policy=policy_of(row),
            ip_allowlist=tuple(row["ip_allowlist"]),
            addresses=tuple(row["addresses"]),
        )

    async def update_tenant(
        self, conn: asyncpg.Connection, tenant_id: str, values: dict[str, Any]
    ) -> Tenant:
        if values:
            cols = list(values)
            sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
            await conn.execute(
                f"UPDATE tenants SET {sets} WHERE id = $1",
                uuid.UUID(tenant_id),
                *[values[c] for c in cols],
            )
        return await self.tenant(conn, tenant_id)

    # -- roles -------------------------------------------------------------------------

    async def roles(self, conn: Conn, tenant_id: str) -> list[accounts_pb2.Role]:
        return [
            accounts_pb2.Role(
                name=r["name"],
                description=r["description"],
                permissions=sorted(r["permissions"]),
                builtin=r["builtin"],
                operator_count=r["operator_count"],
            )
            for r in await conn.fetch(
                "SELECT r.*, (SELECT count(*) FROM operators o WHERE o.tenant_id = r.tenant_id "
                "AND r.name = ANY(o.roles)) AS operator_count FROM roles r "
                "WHERE r.tenant_id = $1 ORDER BY r.builtin DESC, r.name",
                uuid.UUID(tenant_id),
            )
        ]

    async def role_names(self, conn: Conn, tenant_id: str) -> set[str]:
        rows = await conn.fetch("SELECT name FROM roles WHERE tenant_id = $1", uuid.UUID(tenant_id))
        return {r["name"] for r in rows}

    async def put_role(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        name: str,
        description: str,
        perms: list[str],
        now: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO roles (tenant_id, name, description, permissions, updated_at) "
            "VALUES ($1,$2,$3,$4,$5) ON CONFLICT (tenant_id, name) DO UPDATE SET "
            "description = EXCLUDED.description, permissions = EXCLUDED.permissions, "
            "updated_at = EXCLUDED.updated_at",
            uuid.UUID(tenant_id),
            name,
            description,
            perms,
            now,
        )

    async def delete_role(self, conn: asyncpg.Connection, tenant_id: str, name: str) -> None:
        tenant = uuid.UUID(tenant_id)
        used = await conn.fetchval(
            "SELECT count(*) FROM operators WHERE tenant_id = $1 AND $2 = ANY(roles)", tenant, name
        )
        if used:
            raise FailedPrecondition(
                f"{used} operator(s) have the role {name!r}; take it from them first", field="name"
            )
        status = await conn.execute(
            "DELETE FROM roles WHERE tenant_id = $1 AND name = $2", tenant, name
        )
        if status == "DELETE 0":
            raise NotFound("no such role", field="name")

    # -- inboxes -----------------------------------------------------------------------

    async def resolve_addresses(self, addresses: Sequence[str]) -> list[accounts_pb2.AddressRoute]:
        return [
            accounts_pb2.AddressRoute(
                address=r["address"],
                tenant_id=str(r["tenant_id"]),
                inbox=common_pb2.InboxRef(id=str(r["inbox_id"]), name=r["inbox_name"]),
            )
            for r in await self._pool.fetch(
                "SELECT a.address, a.tenant_id, i.id AS inbox_id, i.name AS inbox_name "
                "FROM inbox_addresses a JOIN inboxes i ON i.id = a.inbox_id "
                "AND i.tenant_id = a.tenant_id WHERE a.address = ANY($1::text[])",
                list(addresses),
            )
        ]

    async def inboxes(
        self, conn: Conn, tenant_id: str, only: Sequence[str] | None = None
    ) -> list[InboxRecord]:
        """The tenant's inboxes (or those of `only`) with their addresses and members."""
        return [
            InboxRecord(
                str(r["id"]),
                r["name"],
                tuple(r["addresses"]),
                tuple(r["member_ids"]),
                r["plain_text_only"],
            )
            for r in await conn.fetch(
                "SELECT i.id, i.name, i.plain_text_only, "
                "coalesce((SELECT array_agg(a.address ORDER BY a.address) FROM inbox_addresses a "
                "  WHERE a.inbox_id = i.id AND a.tenant_id = i.tenant_id), '{}') AS addresses, "
                "coalesce((SELECT array_agg(m.operator_id::text ORDER BY m.operator_id::text) "
                "  FROM inbox_members m WHERE m.inbox_id = i.id AND m.tenant_id = i.tenant_id), "
                "  '{}') AS member_ids "
                "FROM inboxes i WHERE i.tenant_id = $1 "
                "AND ($2::uuid[] IS NULL OR i.id = ANY($2::uuid[])) ORDER BY i.name",
                uuid.UUID(tenant_id),
                None if only is None else [uuid.UUID(i) for i in only],
            )
        ]

    async def require_inboxes(
        self, conn: Conn, tenant_id: str, inbox_ids: Sequence[uuid.UUID]
    ) -> None:
        found = await conn.fetchval(
            "SELECT count(*) FROM inboxes WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            uuid.UUID(tenant_id),
            list(inbox_ids),
        )
        if found != len(set(inbox_ids)):
            raise NotFound("no such inbox", field="inbox_ids")

    async def require_operators(
        self, conn: Conn, tenant_id: str, operator_ids: Sequence[uuid.UUID]
    ) -> None:
        found = await conn.fetchval(
            "SELECT count(*) FROM operators WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            uuid.UUID(tenant_id),
            list(operator_ids),
        )
        if found != len(set(operator_ids)):
            raise NotFound("no such operator", field="member_ids")

    async def insert_inbox(
        self, conn: asyncpg.Connection, tenant_id: str, inbox_id: uuid.UUID, name: str
    ) -> None:
        try:
            await conn.execute(
                "INSERT INTO inboxes (id, tenant_id, name) VALUES ($1,$2,$3)",
                inbox_id,
                uuid.UUID(tenant_id),
                name,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("an inbox with this name exists", field="name") from None

    async def set_plain_text_only(
        self, conn: asyncpg.Connection, tenant_id: str, inbox_id: uuid.UUID, value: bool
    ) -> None:
        await conn.execute(
            "UPDATE inboxes SET plain_text_only = $3 WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            inbox_id,
            value,
        )

    async def rename_inbox(
        self, conn: asyncpg.Connection, tenant_id: str, inbox_id: uuid.UUID, name: str
    ) -> None:
        try:
            status = await conn.execute(
                "UPDATE inboxes SET name = $3 WHERE tenant_id = $1 AND id = $2",
                uuid.UUID(tenant_id),
                inbox_id,
                name,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("an inbox with this name exists", field="name") from None
        if status == "UPDATE 0":
            raise NotFound("no such inbox", field="inbox_id")

    async def set_addresses(
        self, conn: asyncpg.Connection, tenant_id: str, inbox_id: uuid.UUID, addresses: list[str]
    ) -> None:
        tenant = uuid.UUID(tenant_id)
        taken = await conn.fetchval(
            "SELECT address FROM inbox_addresses WHERE address = ANY($1::text[]) "
            "AND NOT (tenant_id = $2 AND inbox_id = $3) LIMIT 1",
            addresses,
            tenant,
            inbox_id,
        )
        if taken:
            raise FailedPrecondition(
                f"the address {taken} belongs to another inbox", field="addresses"
            )
        await conn.execute(
            "DELETE FROM inbox_addresses WHERE tenant_id = $1 AND inbox_id = $2 "
            "AND NOT address = ANY($3::text[])",
            tenant,
            inbox_id,
            addresses,
        )
        try:
            await conn.execute(
                "INSERT INTO inbox_addresses (address, tenant_id, inbox_id) "
                "SELECT a, $1, $2 FROM unnest($3::text[]) a ON CONFLICT DO NOTHING",
                tenant,
                inbox_id,
                addresses,
            )
        except asyncpg.UniqueViolationError:
            raise FailedPrecondition(
                "an address belongs to another inbox", field="addresses"
            ) from None

    async def set_members(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        inbox_id: uuid.UUID,
        members: list[uuid.UUID],
    ) -> list[str]:
        """The inbox's members become `members`: the operators who left or joined."""
        tenant = uuid.UUID(tenant_id)
        await self.require_operators(conn, tenant_id, members)
        left = await conn.fetch(
            "DELETE FROM inbox_members WHERE tenant_id = $1 AND inbox_id = $2 "
            "AND NOT operator_id = ANY($3::uuid[]) RETURNING operator_id",
            tenant,
            inbox_id,
            members,
        )
        joined = await conn.fetch(
            "INSERT INTO inbox_members (tenant_id, inbox_id, operator_id) "
            "SELECT $1, $2, m FROM unnest($3::uuid[]) m ON CONFLICT DO NOTHING "
            "RETURNING operator_id",
            tenant,
            inbox_id,
            members,
        )
        return [str(r["operator_id"]) for r in (*left, *joined)]

    async def operators_with_role(
        self, conn: asyncpg.Connection, tenant_id: str, name: str
    ) -> list[str]:
        rows = await conn.fetch(
            "SELECT id FROM operators WHERE tenant_id = $1 AND $2 = ANY(roles)",
            uuid.UUID(tenant_id),
            name,
        )
        return [str(r["id"]) for r in rows]


async def create_tenant(
    conn: asyncpg.Connection,
    *,
    tenant_id: uuid.UUID,
    slug: str,
    name: str,
    time_zone: str = "UTC",
) -> None:
    """A new tenant with the built-in roles (platform tooling: the CLI, the demo seed)."""
    await conn.execute(
        "INSERT INTO tenants (id, slug, name, time_zone) VALUES ($1,$2,$3,$4) "
        "ON CONFLICT (id) DO NOTHING",
        tenant_id,
        slug,
        name,
        time_zone,
    )
    await ensure_builtin_roles(conn, tenant_id)
