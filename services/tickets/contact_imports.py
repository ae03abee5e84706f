"""CSV imports into contact lists (issue 20, OUT-6): the stored job and the background
runner that applies its lines in batches.

A job is stored with its raw file (`contact_imports`, migration 018), so any replica of
tickets — this one after a restart — goes on with it where it stopped: each batch of lines
is applied and its progress (`processed`, counts, errors) written in one transaction,
under the job's row lock (FOR UPDATE SKIP LOCKED: one replica per job at a time). A job
whose batch fails `ATTEMPTS_MAX` times in a row is marked failed, never left running."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import tickets_pb2

from services.runtime import events, log
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.periodic import PeriodicTask

from . import contact_csv, outreach_repo
from .api_outreach import apply_members
from .deps import Deps
from .outreach_rules import FieldDef, MemberEdit

BATCH = 500
ERRORS_KEPT = 1_000
ATTEMPTS_MAX = 3


def import_pb(row: asyncpg.Record) -> tickets_pb2.ContactImport:
    out = tickets_pb2.ContactImport(
        id=str(row["id"]),
        list_id=str(row["list_id"]),
        state=row["state"],
        total_lines=row["total_lines"],
        processed=row["processed"],
        imported=row["imported"],
        failed=row["failed"],
        message=row["message"],
    )
    for e in row["errors"]:
        out.errors.add(line=e["line"], message=e["message"])
    out.created_at.FromDatetime(row["created_at"])
    if row["finished_at"] is not None:
        out.finished_at.FromDatetime(row["finished_at"])
    return out


_JOB_COLUMNS = (
    "id, list_id, state, total_lines, processed, imported, failed, errors, message, "
    "created_at, finished_at"
)


async def create(
    conn: asyncpg.Connection,
    tenant_id: str,
    import_id: uuid.UUID,
    list_id: uuid.UUID,
    data: bytes,
    created_by: str,
    now: datetime,
) -> tickets_pb2.ContactImport:
    row = await conn.fetchrow(
        "INSERT INTO contact_imports (id, tenant_id, list_id, state, csv, created_by, "
        f"created_at, updated_at) VALUES ($1, $2, $3, 'running', $4, $5, $6, $6) "
        f"RETURNING {_JOB_COLUMNS}",
        import_id,
        uuid.UUID(tenant_id),
        list_id,
        data,
        created_by,
        now,
    )
    return import_pb(row)


async def get(
    pool: asyncpg.Pool, tenant_id: str, import_id: uuid.UUID
) -> tickets_pb2.ContactImport:
    row = await pool.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM contact_imports WHERE tenant_id = $1 AND id = $2",
        uuid.UUID(tenant_id),
        import_id,
    )
    if row is None:
        raise NotFound("no such import", field="import_id")
    return import_pb(row)


@dataclass
class _File:
    """A job's file as read once by this replica."""

    parsed: contact_csv.Parsed
    columns: contact_csv.Columns
    defs: list[FieldDef]


def _checked(
    lines: list[contact_csv.Line], file: _File
) -> tuple[list[MemberEdit], list[dict[str, Any]]]:
    edits: list[MemberEdit] = []
    errors: list[dict[str, Any]] = []
    for line in lines:
        try:
            edits.append(contact_csv.member(line, file.columns, file.defs))
        except InvalidArgument as err:
            errors.append({"line": line.number, "message": str(err)})
    return edits, errors


class ContactImportRunner(PeriodicTask):
    """Applies running imports, one batch per step, oldest job first."""

    def __init__(self, deps: Deps, every_s: float = 2.0) -> None:
        super().__init__("contact-imports", every_s)
        self._d = deps
        self._files: dict[uuid.UUID, _File] = {}
        self._attempts: dict[uuid.UUID, int] = {}
        self._log = log.get("tickets.imports")

    async def step(self) -> bool:
        job_id: uuid.UUID | None = None
        try:
            async with self._d.db.transaction() as conn:
                job = await conn.fetchrow(
                    "SELECT id, tenant_id, list_id, total_lines, processed, errors "
                    "FROM contact_imports WHERE state = 'running' ORDER BY created_at "
                    "LIMIT 1 FOR UPDATE SKIP LOCKED"
                )
                if job is None:
                    return False
                job_id = job["id"]
                await self._batch(conn, job)
            self._attempts.pop(job["id"], None)
            return True
        except InvalidArgument as err:  # the file as a whole (encoding, header)
            assert job_id is not None
            await self._fail(job_id, str(err))
            return True
        except Exception:
            if job_id is None:
                raise
            self._attempts[job_id] = self._attempts.get(job_id, 0) + 1
            if self._attempts[job_id] >= ATTEMPTS_MAX:
                self._log.exception("import batch failed; the job fails", import_id=str(job_id))
                await self._fail(job_id, "the import stopped on an internal error")
                return True
            raise

    async def _file(self, conn: asyncpg.Connection, job: asyncpg.Record) -> _File:
        found = self._files.get(job["id"])
        if found is None:
            data = await conn.fetchval("SELECT csv FROM contact_imports WHERE id = $1", job["id"])
            parsed = contact_csv.parse(contact_csv.decode(data))
            defs = await outreach_repo.fields(conn, str(job["tenant_id"]))
            found = _File(parsed, contact_csv.columns(parsed.header, defs), defs)
            self._files[job["id"]] = found
        return found

    async def _batch(self, conn: asyncpg.Connection, job: asyncpg.Record) -> None:
        file = await self._file(conn, job)
        tenant_id = str(job["tenant_id"])
        now = self._d.clock.now()
        errors: list[dict[str, Any]] = []
        processed = job["processed"]
        failed = 0
        if processed == 0 and job["total_lines"] == 0:  # the first batch: what the file is
            if file.columns.ignored:
                names = ", ".join(file.columns.ignored)
                errors.append({"line": 1, "message": f"columns not imported: {names}"})
            errors += [{"line": n, "message": m} for n, m in file.parsed.errors]
            failed += len(file.parsed.errors)
            processed = len(file.parsed.errors)
        offset = len(file.parsed.errors)
        total = len(file.parsed.lines) + offset
        lines = file.parsed.lines[processed - offset : processed - offset + BATCH]
        edits, bad = _checked(lines, file)
        errors += bad
        failed += len(bad)
        imported = 0
        if edits:
            await outreach_repo.get_list(conn, tenant_id, job["list_id"], lock=True)
            added, updated = await apply_members(
                self._d, conn, tenant_id, job["list_id"], edits, events.system_actor("tickets")
            )
            imported = added + updated
        processed += len(lines)
        done = processed >= total
        kept = (list(job["errors"]) + errors)[:ERRORS_KEPT]
        await conn.execute(
            "UPDATE contact_imports SET total_lines = $2, processed = $3, "
            "imported = imported + $4, failed = failed + $5, errors = $6, "
            "updated_at = $7::timestamptz, state = CASE WHEN $8 THEN 'done' ELSE state END, "
            "finished_at = CASE WHEN $8 THEN $7::timestamptz END, "
            "csv = CASE WHEN $8 THEN ''::bytea ELSE csv END WHERE id = $1",
            job["id"],
            total,
            processed,
            imported,
            failed,
            kept,
            now,
            done,
        )
        if edits:
            self._d.outbox.wake()
        if done:
            self._files.pop(job["id"], None)
            self._log.info("contact import done", import_id=str(job["id"]), lines=total)

    async def _fail(self, job_id: uuid.UUID, message: str) -> None:
        self._files.pop(job_id, None)
        self._attempts.pop(job_id, None)
        async with self._d.db.transaction() as conn:
            await conn.execute(
                "UPDATE contact_imports SET state = 'failed', message = $2, updated_at = $3, "
                "finished_at = $3, csv = ''::bytea WHERE id = $1 AND state = 'running'",
                job_id,
                message,
                self._d.clock.now(),
            )
        self._log.warning("contact import failed", import_id=str(job_id), reason=message)
