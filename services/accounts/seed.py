"""Tenants made by platform tooling: the demo tenant for `make run` (inboxes support@ and
sales@demo.example; operators admin, agent1, agent2, trainee and supervisor
@demo.example with the password given; the supervisor approves the trainee's replies),
and `create_tenant_with_admin` for the command line and the tests.
Seeding is idempotent: a second run sets the demo operators' password, roles and inboxes
back to these, and changes nothing else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from services.runtime.demo import DEMO_ADMIN, DEMO_TENANT, SALES_INBOX, SUPPORT_INBOX
from services.runtime.errors import AlreadyExists, FailedPrecondition
from services.runtime.ids import IdGenerator

from . import domain
from .repo import create_tenant

DEMO_INBOXES = {
    "Support": (str(SUPPORT_INBOX), ["support@demo.example"]),
    "Sales": (str(SALES_INBOX), ["sales@demo.example"]),
}
# id, login, name, roles, inboxes
DEMO_OPERATORS = [
    (
        str(DEMO_ADMIN),
        "admin@demo.example",
        "Demo Admin",
        ["admin", "supervisor"],
        ["Support", "Sales"],
    ),
    (
        "0191f000-0000-7000-8000-0000000000a2",
        "agent1@demo.example",
        "Aiko Agent",
        ["agent"],
        ["Support", "Sales"],
    ),
    (
        "0191f000-0000-7000-8000-0000000000a3",
        "agent2@demo.example",
        "Ben Agent",
        ["agent"],
        ["Support", "Sales"],
    ),
    (
        "0191f000-0000-7000-8000-0000000000a4",
        "trainee@demo.example",
        "Tomo Trainee",
        ["trainee"],
        ["Support"],
    ),
    (
        "0191f000-0000-7000-8000-0000000000a5",
        "supervisor@demo.example",
        "Sora Supervisor",
        ["supervisor"],
        ["Support", "Sales"],
    ),
]


async def _inbox(
    conn: asyncpg.Connection, tenant: uuid.UUID, inbox: uuid.UUID, name: str, addresses: list[str]
) -> None:
    await conn.execute(
        "INSERT INTO inboxes (id, tenant_id, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        inbox,
        tenant,
        name,
    )
    for addr in addresses:
        await conn.execute(
            "INSERT INTO inbox_addresses (address, tenant_id, inbox_id) VALUES ($1,$2,$3) "
            "ON CONFLICT (address) DO NOTHING",
            domain.normalise_address(addr),
            tenant,
            inbox,
        )


async def _operator(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    op_id: uuid.UUID,
    login: str,
    name: str,
    pw_hash: str,
    roles: list[str],
    inboxes: list[uuid.UUID],
    *,
    must_change: bool,
) -> None:
    await conn.execute(
        "INSERT INTO operators (id, tenant_id, login, display_name, password_hash, roles, "
        "addresses, must_change_password) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
        "ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
        "roles = EXCLUDED.roles, active = true, "
        "must_change_password = EXCLUDED.must_change_password, password_changed_at = now()",
        op_id,
        tenant,
        login,
        name,
        pw_hash,
        roles,
        [login.lower()],
        must_change,
    )
    await conn.execute(
        "DELETE FROM inbox_members WHERE tenant_id = $1 AND operator_id = $2 "
        "AND NOT inbox_id = ANY($3::uuid[])",
        tenant,
        op_id,
        inboxes,
    )
    await conn.execute(
        "INSERT INTO inbox_members (tenant_id, inbox_id, operator_id) "
        "SELECT $1, i, $2 FROM unnest($3::uuid[]) i ON CONFLICT DO NOTHING",
        tenant,
        op_id,
        inboxes,
    )


async def seed_demo(conn: asyncpg.Connection, password: str) -> None:
    pw_hash = domain.hash_password(password)
    async with conn.transaction():
        await create_tenant(
            conn, tenant_id=DEMO_TENANT, slug="demo", name="Demo Company", time_zone="Asia/Tokyo"
        )
        for name, (inbox_id, addresses) in DEMO_INBOXES.items():
            await _inbox(conn, DEMO_TENANT, uuid.UUID(inbox_id), name, addresses)
        for op_id, login, display, roles, inboxes in DEMO_OPERATORS:
            await _operator(
                conn,
                DEMO_TENANT,
                uuid.UUID(op_id),
                login,
                display,
                pw_hash,
                roles,
                [uuid.UUID(DEMO_INBOXES[i][0]) for i in inboxes],
                must_change=False,
            )


@dataclass(frozen=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    admin_id: uuid.UUID
    password: str


async def create_tenant_with_admin(
    conn: asyncpg.Connection,
    *,
    slug: str,
    name: str,
    time_zone: str,
    inbox_name: str,
    inbox_addresses: list[str],
    admin_login: str,
    admin_name: str,
    password: str | None,
    must_change: bool,
    ids: IdGenerator,
    roles: list[str] | None = None,
) -> CreatedTenant:
    """A tenant, its built-in roles, one inbox with these addresses, and one operator
    (an administrator unless `roles` says otherwise) who is a member of the inbox. Without
    `password` a temporary one is generated (returned)."""
    domain.check_time_zone(time_zone, allow_empty=False)
    login = domain.clean_login(admin_login)
    addresses = domain.clean_addresses(inbox_addresses)
    password = password or domain.generate_password(domain.PasswordPolicy())
    tenant, inbox, admin = ids.new(), ids.new(), ids.new()
    if await conn.fetchval("SELECT 1 FROM tenants WHERE slug = $1", slug):
        raise AlreadyExists(f"a tenant with the slug {slug!r} exists", field="slug")
    if await conn.fetchval("SELECT 1 FROM operators WHERE lower(login) = lower($1)", login):
        raise AlreadyExists(f"an operator with the login {login!r} exists", field="login")
    taken = await conn.fetchval(
        "SELECT address FROM inbox_addresses WHERE address = ANY($1::text[]) LIMIT 1", addresses
    )
    if taken:
        raise FailedPrecondition(f"the address {taken} belongs to another inbox", field="address")
    async with conn.transaction():
        await create_tenant(conn, tenant_id=tenant, slug=slug, name=name, time_zone=time_zone)
        await _inbox(conn, tenant, inbox, inbox_name, addresses)
        await _operator(
            conn,
            tenant,
            admin,
            login,
            admin_name,
            domain.hash_password(password),
            roles or ["admin"],
            [inbox],
            must_change=must_change,
        )
    return CreatedTenant(tenant, inbox, admin, password)
