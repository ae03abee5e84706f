"""Import jobs (DAT-2): storage, and the runner that works through them.

Any ingestion replica may run a job: it is claimed with a lease (`FOR UPDATE SKIP
LOCKED`), progress is committed with every window of mails recorded, and a job whose
holder died is taken over and resumes at the first window not yet recorded. Every mail
goes through the intake pipeline (stored, published, acknowledged), keeps its own Date as
its received time, and is deduped like any other — importing the same file twice creates
nothing new.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, ingestion_pb2

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.periodic import PeriodicTask

from . import archive
from .intake import Batch, IntakePipeline
from .store import Intake

MAX_FAILURES_LISTED = 1000
WINDOW = 64  # mails per window (one transaction to keep them, one to record them)
WINDOW_BYTES = 16 * 1024 * 1024  # and at most this many bytes of mail per window


def _windows(items: Iterator[archive.Item], start: int) -> Iterator[list[archive.Item]]:
    """The items from index `start` on, WINDOW at a time (fewer when they are large)."""
    window: list[archive.Item] = []
    size = 0
    for item in items:  # streamed, not listed
        if item.index < start:
            continue
        window.append(item)
        size += len(item.raw or b"")
        if len(window) >= WINDOW or size >= WINDOW_BYTES:
            yield window
            window, size = [], 0
    if window:
        yield window


@dataclass(frozen=True)
class NewImport:
    id: str
    tenant_id: str
    inbox_id: str
    inbox_name: str
    filename: str
    kind: str
    data: bytes


def import_pb(row: asyncpg.Record) -> ingestion_pb2.ImportJob:
    out = ingestion_pb2.ImportJob(
        id=str(row["id"]),
        inbox_id=str(row["inbox_id"]),
        inbox_name=row["inbox_name"],
        filename=row["filename"],
        kind=row["kind"],
        size_bytes=row["size_bytes"],
        state=row["state"],
        total=row["total"] or 0,
        done=row["done"],
        created=row["created"],
        duplicates=row["duplicates"],
        error=row["error"],
        failures=[ingestion_pb2.ImportFailure(**f) for f in row["failures"]],
    )
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    return out


class ImportRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, job: NewImport, now: datetime) -> ingestion_pb2.ImportJob:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO import_jobs (id, tenant_id, inbox_id, inbox_name, filename, kind, "
                "size_bytes, state, created_at, updated_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,'queued',$8,$8) RETURNING *",
                uuid.UUID(job.id),
                uuid.UUID(job.tenant_id),
                uuid.UUID(job.inbox_id),
                job.inbox_name,
                job.filename,
                job.kind,
                len(job.data),
                now,
            )
            await conn.execute(
                "INSERT INTO import_files (job_id, data) VALUES ($1, $2)",
                uuid.UUID(job.id),
                job.data,
            )
        return import_pb(row)

    async def get(self, tenant_id: str, job_id: uuid.UUID) -> ingestion_pb2.ImportJob | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM import_jobs WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            job_id,
        )
        return None if row is None else import_pb(row)

    async def list_for_tenant(
        self, tenant_id: str, limit: int = 100
    ) -> list[ingestion_pb2.ImportJob]:
        return [
            import_pb(r)
            for r in await self._pool.fetch(
                "SELECT * FROM import_jobs WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT $2",
                uuid.UUID(tenant_id),
                limit,
            )
        ]

    async def claim(self, holder: str, lease_s: float) -> Any:
        """The oldest unfinished job nobody (alive) holds, now ours."""
        return await self._pool.fetchrow(
            "UPDATE import_jobs SET holder = $1, lease_until = now() + make_interval(secs => $2), "
            "state = 'running', updated_at = now() WHERE id = ("
            "SELECT id FROM import_jobs WHERE state IN ('queued', 'running') "
            "AND (holder IS NULL OR lease_until < now()) ORDER BY created_at "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
            holder,
            lease_s,
        )

    async def data(self, job_id: uuid.UUID) -> bytes:
        return bytes(
            await self._pool.fetchval("SELECT data FROM import_files WHERE job_id = $1", job_id)
        )

    async def progress(
        self,
        job_id: uuid.UUID,
        holder: str,
        lease_s: float,
        *,
        done: int,
        total: int | None = None,
        created: int = 0,
        duplicates: int = 0,
        failures: list[dict[str, Any]] | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> bool:
        """Record one step (in `conn`'s transaction when given); False when the job is no
        longer ours (lease taken over)."""
        status = await (conn or self._pool).execute(
            "UPDATE import_jobs SET done = $3, total = coalesce($4, total), "
            "created = created + $5, duplicates = duplicates + $6, "
            "failures = CASE WHEN jsonb_array_length(failures) >= $8 "
            "THEN failures ELSE failures || $7::jsonb END, "
            "lease_until = now() + make_interval(secs => $9), updated_at = now() "
            "WHERE id = $1 AND holder = $2",
            job_id,
            holder,
            done,
            total,
            created,
            duplicates,
            failures or [],  # the jsonb codec encodes it
            MAX_FAILURES_LISTED,
            lease_s,
        )
        return bool(status == "UPDATE 1")

    async def finish(self, job_id: uuid.UUID, holder: str, state: str, error: str = "") -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE import_jobs SET state = $3, error = $4, holder = NULL, lease_until = NULL, "
                "updated_at = now() WHERE id = $1 AND holder = $2",
                job_id,
                holder,
                state,
                error[:1000],
            )
            await conn.execute("DELETE FROM import_files WHERE job_id = $1", job_id)


class ImportRunner(PeriodicTask):
    def __init__(
        self,
        repo: ImportRepo,
        pipeline: IntakePipeline,
        clock: Clock,
        *,
        holder: str,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        limits: archive.ImportLimits | None = None,
    ) -> None:
        super().__init__("import-runner", poll_s)
        self._repo = repo
        self._pipeline = pipeline
        self._clock = clock
        self._holder = holder
        self._lease_s = lease_s
        self._limits = limits or archive.ImportLimits()
        self._log = log.get("import")
        self._handed: tuple[uuid.UUID, bytes] | None = None

    def hand_over(self, job_id: uuid.UUID, data: bytes) -> None:
        """The file of a job just created here (and stored): if this replica runs that job,
        it need not read the file back. Only the latest is kept."""
        self._handed = (job_id, data)
        self.wake()

    async def _data(self, job_id: uuid.UUID) -> bytes:
        handed, self._handed = self._handed, None
        if handed is not None and handed[0] == job_id:
            return handed[1]
        self._handed = handed  # another job's: kept for when that one runs
        return await self._repo.data(job_id)

    async def step(self) -> bool:
        """Run the oldest job nobody holds; True when there was one (look for the next)."""
        job = await self._repo.claim(self._holder, self._lease_s)
        if job is None:
            self._handed = None  # its job is another replica's (or done)
            return False
        await self.run_job(job)
        return True

    async def run_job(self, job: Any) -> None:
        job_id: uuid.UUID = job["id"]
        bound = self._log.bind(import_id=str(job_id), tenant_id=str(job["tenant_id"]))
        data = await self._data(job_id)
        try:
            total = sum(1 for _ in archive.items(data, job["kind"], self._limits))
        except archive.ArchiveError as exc:
            await self._repo.finish(job_id, self._holder, "failed", str(exc))
            bound.info("import failed", error=str(exc))
            return
        start = job["done"]
        bound.info("import running", total=total, resume_at=start)
        inbox = common_pb2.InboxRef(id=str(job["inbox_id"]), name=job["inbox_name"])
        tenant_id = str(job["tenant_id"])

        # Mails are taken a window at a time: the window's bytes are kept in one
        # transaction and its mails parsed (while the window before is being recorded),
        # then their parses, their message.received events (published, acks awaited
        # together) and the job's progress are committed in one transaction. After a crash
        # the window is taken again, and dedupe absorbs what it had already done.
        async def prepare(window: list[archive.Item]) -> Batch:
            return await self._pipeline.prepare(
                [
                    Intake(
                        tenant_id=tenant_id,
                        inbox=inbox,
                        channel="import",
                        raw=item.raw,
                        envelope_from="",
                        envelope_recipients=[],
                        use_mail_date=True,
                    )
                    for item in window
                    if item.raw is not None
                ]
            )

        async def record(window: list[archive.Item], batch: Batch) -> bool:
            ours = True

            async def progress(conn: asyncpg.Connection) -> None:
                nonlocal ours
                ours = await self._repo.progress(
                    job_id,
                    self._holder,
                    self._lease_s,
                    done=window[-1].index + 1,
                    total=total,
                    created=sum(1 for s in batch.stored if not s.duplicate),
                    duplicates=sum(1 for s in batch.stored if s.duplicate),
                    failures=[
                        {"index": i.index, "name": i.name, "problem": i.problem}
                        for i in window
                        if i.raw is None
                    ],
                    conn=conn,
                )

            await self._pipeline.finish(batch, also=progress)
            return ours

        # At most two windows in hand: the one being recorded and the one being prepared.
        in_hand: list[tuple[list[archive.Item], asyncio.Future[Batch]]] = []

        async def record_first() -> bool:
            window, preparing = in_hand[0]
            batch = await preparing
            in_hand.pop(0)
            if await record(window, batch):
                return True
            bound.warning("import taken over by another replica")
            return False

        try:
            for window in _windows(archive.items(data, job["kind"], self._limits), start):
                if self.stopping:
                    return  # the lease lapses; this or another replica resumes here
                in_hand.append((window, asyncio.ensure_future(prepare(window))))
                if len(in_hand) > 1 and not await record_first():
                    return
            while in_hand:
                if not await record_first():
                    return
        finally:  # stopped or failed: what is in hand is not recorded (taken again later)
            for _window, preparing in in_hand:
                preparing.cancel()
            await asyncio.gather(*(p for _w, p in in_hand), return_exceptions=True)
        await self._repo.finish(job_id, self._holder, "done")
        bound.info("import done", total=total)
