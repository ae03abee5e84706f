"""Storage of the customer-data lookup (issue 21): the tenant's configuration (its header
secret sealed, bound to the tenant id) and the answers cached per contact in the database,
so every replica of tickets shares them. Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .lookup_rules import LookupConfig, LookupField


@dataclass(frozen=True)
class StoredConfig:
    config: LookupConfig
    sealed_secret: bytes | None
    secret_hint: str
    updated_at: datetime


@dataclass(frozen=True)
class CachedAnswer:
    fetched_at: datetime
    http_status: int
    elapsed_ms: int
    values: list[dict[str, Any]]  # [{pointer, value, found}] in the mapping's order
    customer_value: int | None


def _config_of(row: asyncpg.Record) -> StoredConfig:
    fields = tuple(
        LookupField(f["pointer"], f.get("label_ja", ""), f.get("label_en", ""), f.get("type", ""))
        for f in row["fields"]
    )
    return StoredConfig(
        LookupConfig(
            url_template=row["url_template"],
            enabled=row["enabled"],
            header_name=row["header_name"],
            timeout_ms=row["timeout_ms"],
            cache_ttl_s=row["cache_ttl_s"],
            fields=fields,
            value_pointer=row["value_pointer"],
            allow_hosts=tuple(row["allow_hosts"]),
        ),
        row["header_secret"],
        row["secret_hint"],
        row["updated_at"],
    )


class LookupRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def config(
        self, tenant_id: str, conn: asyncpg.Connection | None = None
    ) -> StoredConfig | None:
        row = await (conn or self._pool).fetchrow(
            "SELECT * FROM customer_lookups WHERE tenant_id = $1", uuid.UUID(tenant_id)
        )
        return None if row is None else _config_of(row)

    async def save(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        config: LookupConfig,
        sealed_secret: bytes | None,
        secret_hint: str,
        now: datetime,
    ) -> None:
        """Replace the configuration and drop every cached answer of the tenant (they
        were mapped by the old one)."""
        tenant = uuid.UUID(tenant_id)
        fields = [
            {"pointer": f.pointer, "label_ja": f.label_ja, "label_en": f.label_en, "type": f.type}
            for f in config.fields
        ]
        await conn.execute(
            "INSERT INTO customer_lookups (tenant_id, enabled, url_template, header_name,"
            " header_secret, secret_hint, timeout_ms, cache_ttl_s, fields, value_pointer,"
            " allow_hosts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (tenant_id) DO UPDATE SET enabled = $2, url_template = $3,"
            " header_name = $4, header_secret = $5, secret_hint = $6, timeout_ms = $7,"
            " cache_ttl_s = $8, fields = $9, value_pointer = $10, allow_hosts = $11,"
            " updated_at = $12",
            tenant,
            config.enabled,
            config.url_template,
            config.header_name,
            sealed_secret,
            secret_hint,
            config.timeout_ms,
            config.cache_ttl_s,
            fields,
            config.value_pointer,
            list(config.allow_hosts),
            now,
        )
        await conn.execute("DELETE FROM customer_lookup_cache WHERE tenant_id = $1", tenant)

    async def cached(
        self, tenant_id: str, contact_id: uuid.UUID, now: datetime
    ) -> CachedAnswer | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM customer_lookup_cache WHERE tenant_id = $1 AND contact_id = $2"
            " AND expires_at > $3",
            uuid.UUID(tenant_id),
            contact_id,
            now,
        )
        if row is None:
            return None
        return CachedAnswer(
            row["fetched_at"],
            row["http_status"],
            row["elapsed_ms"],
            list(row["fields"]),
            row["customer_value"],
        )

    async def store(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        contact_id: uuid.UUID,
        answer: CachedAnswer,
        expires_at: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO customer_lookup_cache (tenant_id, contact_id, fetched_at, expires_at,"
            " http_status, elapsed_ms, fields, customer_value)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (tenant_id, contact_id) DO UPDATE SET fetched_at = $3,"
            " expires_at = $4, http_status = $5, elapsed_ms = $6, fields = $7,"
            " customer_value = $8",
            uuid.UUID(tenant_id),
            contact_id,
            answer.fetched_at,
            expires_at,
            answer.http_status,
            answer.elapsed_ms,
            answer.values,
            answer.customer_value,
        )

    async def set_customer_value(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        contact_id: uuid.UUID,
        value: int,
        now: datetime,
    ) -> bool:
        """The contact takes the customer value its lookup answered; False when it already
        had it (or was merged away meanwhile)."""
        changed = await conn.fetchval(
            "UPDATE contacts SET customer_value = $3, updated_at = $4"
            " WHERE tenant_id = $1 AND id = $2 AND merged_into IS NULL"
            " AND customer_value IS DISTINCT FROM $3 RETURNING id",
            uuid.UUID(tenant_id),
            contact_id,
            value,
            now,
        )
        return changed is not None
