"""reporting's export jobs (issue 19, DAT-1): the rows of `exports` (migration 020) as
frozen `Job`s, and the few writes of a job's life — created, started, checkpointed,
done or failed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.runtime.identity import Identity
from services.runtime.paging import Cursor


@dataclass(frozen=True)
class Job:
    id: str
    tenant_id: str
    operator_id: str
    kind: str
    state: str
    period_start: datetime
    period_end: datetime
    inbox_id: str
    columns: tuple[str, ...]
    tz: str
    masked: bool
    keep_addresses: frozenset[str]
    identity: Identity
    filename: str
    done: int
    total: int
    cursor: str
    file_bytes: int
    size_bytes: int
    sha256: str
    error: str
    created_at: datetime
    finished_at: datetime | None
    report_request: bytes  # report_csv: its GetReportRequest

    @classmethod
    def of(cls, r: asyncpg.Record) -> Job:
        ident = json.loads(r["identity"])
        inboxes = ident.get("inboxes")
        return cls(
            id=str(r["id"]),
            tenant_id=str(r["tenant_id"]),
            operator_id=str(r["operator_id"]),
            kind=r["kind"],
            state=r["state"],
            period_start=r["period_start"],
            period_end=r["period_end"],
            inbox_id=str(r["inbox_id"]) if r["inbox_id"] else "",
            columns=tuple(r["columns"]),
            tz=r["tz"],
            masked=r["masked"],
            keep_addresses=frozenset(r["keep_addresses"]),
            identity=Identity(
                tenant_id=str(r["tenant_id"]),
                operator_id=str(r["operator_id"]),
                display_name=ident.get("display_name", ""),
                permissions=frozenset(ident.get("permissions", ())),
                inboxes=None if inboxes is None else frozenset(inboxes),
                correlation_id=f"export-{r['id']}",
                time_zone=ident.get("time_zone", ""),
            ),
            filename=r["filename"],
            done=r["done"],
            total=r["total"],
            cursor=r["cursor"],
            file_bytes=r["file_bytes"],
            size_bytes=r["size_bytes"],
            sha256=r["sha256"],
            error=r["error"],
            created_at=r["created_at"],
            finished_at=r["finished_at"],
            report_request=bytes(r["report_request"] or b""),
        )


@dataclass(frozen=True)
class NewJob:
    kind: str
    period_start: datetime
    period_end: datetime
    inbox_id: str
    columns: tuple[str, ...]
    tz: str
    masked: bool
    keep_addresses: frozenset[str]
    filename: str
    report_request: bytes = b""


def _identity_json(ident: Identity) -> str:
    data: dict[str, Any] = {
        "display_name": ident.display_name,
        "permissions": sorted(ident.permissions),
        "inboxes": None if ident.inboxes is None else sorted(ident.inboxes),
        "time_zone": ident.time_zone,
    }
    return json.dumps(data)


class ExportsRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, job_id: str, ident: Identity, new: NewJob, now: datetime) -> Job:
        row = await self.pool.fetchrow(
            "INSERT INTO exports (id, tenant_id, operator_id, kind, period_start, period_end, "
            "inbox_id, columns, tz, masked, keep_addresses, identity, filename, created_at, "
            "report_request) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15) "
            "RETURNING *",
            uuid.UUID(job_id),
            uuid.UUID(ident.tenant_id),
            uuid.UUID(ident.operator_id),
            new.kind,
            new.period_start,
            new.period_end,
            uuid.UUID(new.inbox_id) if new.inbox_id else None,
            list(new.columns),
            new.tz,
            new.masked,
            sorted(new.keep_addresses),
            _identity_json(ident),
            new.filename,
            now,
            new.report_request or None,
        )
        return Job.of(row)

    async def get(self, tenant_id: str, operator_id: str, job_id: uuid.UUID) -> Job | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM exports WHERE tenant_id = $1 AND operator_id = $2 AND id = $3",
            uuid.UUID(tenant_id),
            uuid.UUID(operator_id),
            job_id,
        )
        return Job.of(row) if row else None

    async def recent(
        self, tenant_id: str, operator_id: str, before: Cursor | None, limit: int
    ) -> list[Job]:
        args: list[object] = [uuid.UUID(tenant_id), uuid.UUID(operator_id)]
        where = "tenant_id = $1 AND operator_id = $2"
        if before is not None:
            where += " AND (created_at, id) < ($3, $4)"
            args += [before.received_at, before.id]
        rows = await self.pool.fetch(
            f"SELECT * FROM exports WHERE {where} ORDER BY created_at DESC, id DESC "
            f"LIMIT {int(limit)}",
            *args,
        )
        return [Job.of(r) for r in rows]

    async def pending(self) -> list[str]:
        """Jobs not finished, oldest first (queued ones, and running ones whose worker
        may have died)."""
        rows = await self.pool.fetch(
            "SELECT id FROM exports WHERE state IN ('queued', 'running') ORDER BY created_at"
        )
        return [str(r["id"]) for r in rows]

    async def by_id(self, conn: asyncpg.Connection, job_id: str) -> Job | None:
        row = await conn.fetchrow("SELECT * FROM exports WHERE id = $1", uuid.UUID(job_id))
        return Job.of(row) if row else None

    async def start(self, conn: asyncpg.Connection, job_id: str, now: datetime) -> None:
        await conn.execute(
            "UPDATE exports SET state = 'running', started_at = coalesce(started_at, $2) "
            "WHERE id = $1",
            uuid.UUID(job_id),
            now,
        )

    async def restart(self, conn: asyncpg.Connection, job_id: str) -> Job:
        """From the start again: its partial file was lost (a volume that did not
        survive a restart)."""
        row = await conn.fetchrow(
            "UPDATE exports SET cursor = '', done = 0, file_bytes = 0 WHERE id = $1 RETURNING *",
            uuid.UUID(job_id),
        )
        return Job.of(row)

    async def set_total(self, conn: asyncpg.Connection, job_id: str, total: int) -> None:
        await conn.execute("UPDATE exports SET total = $2 WHERE id = $1", uuid.UUID(job_id), total)

    async def checkpoint(
        self, conn: asyncpg.Connection, job_id: str, cursor: str, done: int, file_bytes: int
    ) -> None:
        await conn.execute(
            "UPDATE exports SET cursor = $2, done = $3, file_bytes = $4, "
            "total = greatest(total, $3) WHERE id = $1",
            uuid.UUID(job_id),
            cursor,
            done,
            file_bytes,
        )

    async def finish(
        self, conn: asyncpg.Connection, job_id: str, size: int, sha256: str, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE exports SET state = 'done', size_bytes = $2, sha256 = $3, "
            "finished_at = $4, total = done WHERE id = $1",
            uuid.UUID(job_id),
            size,
            sha256,
            now,
        )

    async def fail(self, conn: asyncpg.Connection, job_id: str, error: str, now: datetime) -> None:
        await conn.execute(
            "UPDATE exports SET state = 'failed', error = $2, finished_at = $3 WHERE id = $1",
            uuid.UUID(job_id),
            error[:500],
            now,
        )
