"""Ingestion's per-tenant settings an administrator keeps: web inquiry forms and blocked
senders (their storage; every query names the tenant, except a form's public lookup by
its id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from switchboard.v1 import common_pb2, ingestion_pb2

from services.runtime.errors import AlreadyExists

Table = Literal["forms", "blocklist"]  # SQL names only from here


@dataclass(frozen=True, slots=True)
class FormRecord:
    """A form as a submission needs it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    inbox: common_pb2.InboxRef
    name: str
    redirect_url: str


def form_pb(row: asyncpg.Record) -> ingestion_pb2.Form:
    out = ingestion_pb2.Form(
        id=str(row["id"]),
        inbox_id=str(row["inbox_id"]),
        inbox_name=row["inbox_name"],
        name=row["name"],
        redirect_url=row["redirect_url"],
        enabled=row["enabled"],
    )
    out.created_at.FromDatetime(row["created_at"])
    return out


def block_pb(row: asyncpg.Record) -> ingestion_pb2.Block:
    out = ingestion_pb2.Block(
        id=str(row["id"]),
        kind=row["kind"],
        value=row["value"],
        inbox_id=str(row["inbox_id"]) if row["inbox_id"] else "",
    )
    out.created_at.FromDatetime(row["created_at"])
    return out


class AdminRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_form(
        self,
        *,
        form_id: uuid.UUID,
        tenant_id: str,
        inbox: common_pb2.InboxRef,
        name: str,
        redirect_url: str,
        now: datetime,
    ) -> ingestion_pb2.Form:
        row = await self._pool.fetchrow(
            "INSERT INTO forms (id, tenant_id, inbox_id, inbox_name, name, redirect_url, "
            "created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *",
            form_id,
            uuid.UUID(tenant_id),
            uuid.UUID(inbox.id),
            inbox.name,
            name,
            redirect_url,
            now,
        )
        return form_pb(row)

    async def forms(self, tenant_id: str) -> list[ingestion_pb2.Form]:
        return [form_pb(r) for r in await self._owned("forms", tenant_id)]

    async def enabled_form(self, form_id: uuid.UUID) -> FormRecord | None:
        """An enabled form, by its id alone (a public submission names no tenant)."""
        row = await self._pool.fetchrow("SELECT * FROM forms WHERE id = $1 AND enabled", form_id)
        if row is None:
            return None
        return FormRecord(
            id=row["id"],
            tenant_id=row["tenant_id"],
            inbox=common_pb2.InboxRef(id=str(row["inbox_id"]), name=row["inbox_name"]),
            name=row["name"],
            redirect_url=row["redirect_url"],
        )

    async def add_block(
        self,
        *,
        block_id: uuid.UUID,
        tenant_id: str,
        inbox_id: uuid.UUID | None,
        kind: str,
        value: str,
        now: datetime,
    ) -> ingestion_pb2.Block:
        row = await self._pool.fetchrow(
            "INSERT INTO blocklist (id, tenant_id, inbox_id, kind, value, created_at) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING *",
            block_id,
            uuid.UUID(tenant_id),
            inbox_id,
            kind,
            value,
            now,
        )
        if row is None:
            raise AlreadyExists("that sender is blocked already", field="value")
        return block_pb(row)

    async def blocks(self, tenant_id: str) -> list[ingestion_pb2.Block]:
        return [block_pb(r) for r in await self._owned("blocklist", tenant_id)]

    async def delete(self, table: Table, tenant_id: str, row_id: uuid.UUID) -> bool:
        """Delete one of the tenant's forms or blocks; False when there was none."""
        status: str = await self._pool.execute(
            f"DELETE FROM {table} WHERE tenant_id = $1 AND id = $2", uuid.UUID(tenant_id), row_id
        )
        return status == "DELETE 1"

    async def _owned(self, table: Table, tenant_id: str) -> list[asyncpg.Record]:
        """The tenant's rows of one of these tables."""
        rows: list[asyncpg.Record] = await self._pool.fetch(
            f"SELECT * FROM {table} WHERE tenant_id = $1 ORDER BY created_at", uuid.UUID(tenant_id)
        )
        return rows
