"""The demo tenant for `make run`: inboxes support@ and sales@demo.example, and the
operators admin, agent1, agent2 and trainee @demo.example with the password given.
Idempotent: a second run changes nothing but the demo operators' password."""

from __future__ import annotations

import uuid

import asyncpg

from . import domain

DEMO_TENANT = uuid.UUID("0191f000-0000-7000-8000-00000000de00")
DEMO_INBOXES = {
    "Support": ("0191f000-0000-7000-8000-0000000001b1", ["support@demo.example"]),
    "Sales": ("0191f000-0000-7000-8000-0000000001b2", ["sales@demo.example"]),
}
DEMO_OPERATORS = [
    (
        "0191f000-0000-7000-8000-0000000000a1",
        "admin@demo.example",
        "Demo Admin",
        ["admin", "supervisor"],
    ),
    ("0191f000-0000-7000-8000-0000000000a2", "agent1@demo.example", "Aiko Agent", ["agent"]),
    ("0191f000-0000-7000-8000-0000000000a3", "agent2@demo.example", "Ben Agent", ["agent"]),
    (
        "0191f000-0000-7000-8000-0000000000a4",
        "trainee@demo.example",
        "Tomo Trainee",
        ["agent", "trainee"],
    ),
]


async def seed_demo(conn: asyncpg.Connection, password: str) -> None:
    pw_hash = domain.hash_password(password)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tenants (id, slug, name, time_zone) VALUES ($1, 'demo', 'Demo Company', "
            "'Asia/Tokyo') ON CONFLICT (id) DO NOTHING",
            DEMO_TENANT,
        )
        for name, (inbox_id, addresses) in DEMO_INBOXES.items():
            await conn.execute(
                "INSERT INTO inboxes (id, tenant_id, name) VALUES ($1, $2, $3) "
                "ON CONFLICT (id) DO NOTHING",
                uuid.UUID(inbox_id),
                DEMO_TENANT,
                name,
            )
            for addr in addresses:
                await conn.execute(
                    "INSERT INTO inbox_addresses (address, tenant_id, inbox_id) VALUES ($1,$2,$3) "
                    "ON CONFLICT (address) DO NOTHING",
                    addr,
                    DEMO_TENANT,
                    uuid.UUID(inbox_id),
                )
        for op_id, login, display, roles in DEMO_OPERATORS:
            await conn.execute(
                "INSERT INTO operators (id, tenant_id, login, display_name, password_hash, roles) "
                "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO UPDATE SET "
                "password_hash = EXCLUDED.password_hash",
                uuid.UUID(op_id),
                DEMO_TENANT,
                login,
                display,
                pw_hash,
                roles,
            )
