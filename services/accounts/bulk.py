"""Accounts' bulk path (platform tooling: `make seed-scale`): a whole tenant — its inboxes
with their addresses, its operators with one password and their inbox memberships —
written with COPY into a database that has no such tenant yet.

It keeps what the API keeps: addresses lower case and unique, logins unique, the built-in
roles of the tenant (`create_tenant`), every operator a member of the inboxes named. One
password hash (argon2id) is computed once and shared, as hashing 200 passwords would cost
a minute; the operators can sign in with that password.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import domain
from .repo import create_tenant


@dataclass(frozen=True)
class BulkTenant:
    id: uuid.UUID
    slug: str
    name: str
    time_zone: str


@dataclass(frozen=True)
class BulkInbox:
    id: uuid.UUID
    name: str
    addresses: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class BulkOperator:
    id: uuid.UUID
    login: str
    display_name: str
    roles: tuple[str, ...]
    inbox_ids: tuple[uuid.UUID, ...]
    language: str
    created_at: datetime


async def bulk_load(
    conn: asyncpg.Connection,
    tenant: BulkTenant,
    inboxes: Sequence[BulkInbox],
    operators: Sequence[BulkOperator],
    password: str,
) -> None:
    """Write the tenant, its inboxes and operators in one transaction."""
    pw_hash = domain.hash_password(password)
    async with conn.transaction():
        await create_tenant(
            conn,
            tenant_id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            time_zone=tenant.time_zone,
        )
        await conn.copy_records_to_table(
            "inboxes",
            columns=["id", "tenant_id", "name", "created_at"],
            records=[(i.id, tenant.id, i.name, i.created_at) for i in inboxes],
        )
        await conn.copy_records_to_table(
            "inbox_addresses",
            columns=["address", "tenant_id", "inbox_id"],
            records=[
                (domain.normalise_address(a), tenant.id, i.id) for i in inboxes for a in i.addresses
            ],
        )
        await conn.copy_records_to_table(
            "operators",
            columns=[
                "id",
                "tenant_id",
                "login",
                "display_name",
                "password_hash",
                "roles",
                "addresses",
                "language",
                "created_at",
                "password_changed_at",
                "updated_at",
            ],
            records=[
                (
                    o.id,
                    tenant.id,
                    o.login,
                    o.display_name,
                    pw_hash,
                    list(o.roles),
                    [o.login.lower()],
                    o.language,
                    o.created_at,
                    o.created_at,
                    o.created_at,
                )
                for o in operators
            ],
        )
        await conn.copy_records_to_table(
            "inbox_members",
            columns=["tenant_id", "inbox_id", "operator_id"],
            records=[(tenant.id, i, o.id) for o in operators for i in o.inbox_ids],
        )
