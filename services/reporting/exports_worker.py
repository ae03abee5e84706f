"""The export worker (issue 19, DAT-1): runs the queued export jobs one at a time in the
background, each from its owner's stream (tickets' ExportTickets / ExportMessages,
ingestion's ExportRawMails) called with the creator's identity, into its file
(export_files.py), checkpointing after every batch. A job is held by a PostgreSQL
advisory lock on the worker's connection: a worker that dies (SIGKILL) lets go of it at
once, and the next one — the restarted process, or another replica — resumes it from its
checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import (
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reporting_pb2,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime import grpc_client, log
from services.runtime.clock import Clock
from services.runtime.errors import DomainError
from services.runtime.export_rows import from_micros, read_ahead

from . import export_files as ef
from . import report_csv
from .export_formats import (
    EML_ZIP,
    MAIL_KINDS,
    REPORT_CSV,
    TICKETS_CSV,
    CsvShape,
    eml_name,
    mbox_entry,
)
from .exports_repo import ExportsRepo, Job
from .reports import Reports, report_pb

IDLE_S = 2.0  # how often pending jobs are looked for when nothing wakes the worker
RETRY_S = 2.0  # after an owner was unavailable
CHECKPOINT_S = 0.5  # a job's checkpoint (and progress) written at most this often


@dataclass(frozen=True)
class WorkerSettings:
    batch_rows: int = 5000  # rows asked of tickets per batch
    batch_bytes: int = 2 * 1024 * 1024  # bytes of mail asked of ingestion per batch
    pause_s: float = 0.0  # between batches (spares the owners' databases)


class Refused(Exception):
    """An owner refused the export itself (asking again will not help)."""


def _period(job: Job) -> common_pb2.Period:
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(job.period_start)
    end.FromDatetime(job.period_end)
    return common_pb2.Period(start=start, end=end)


class _Checkpoints:
    """A job's checkpoints, each written while the next batch is (one at a time, on the
    job's connection: a checkpoint names bytes already handed to the kernel, so either it
    or the one before is the job's state if the worker dies), at most every CHECKPOINT_S:
    in between, the latest is kept for later (a resumed job redoes less than that)."""

    def __init__(self, repo: ExportsRepo, conn: asyncpg.Connection, job_id: str) -> None:
        self._repo, self._conn, self._job_id = repo, conn, job_id
        self._pending: asyncio.Future[None] | None = None
        self._latest: tuple[str, int, int] | None = None
        self._written_at = -CHECKPOINT_S

    def put(self, cursor: str, done: int, length: int) -> None:
        assert self._pending is None, "wait() first"
        self._latest = (cursor, done, length)
        if time.monotonic() - self._written_at >= CHECKPOINT_S:
            self._write()

    def _write(self) -> None:
        assert self._latest is not None
        (cursor, done, length), self._latest = self._latest, None
        self._written_at = time.monotonic()
        self._pending = asyncio.ensure_future(
            self._repo.checkpoint(self._conn, self._job_id, cursor, done, length)
        )

    async def wait(self) -> None:
        """The last checkpoint written (the connection free again)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def flush(self) -> None:
        """The latest checkpoint written, even if the last was just now."""
        await self.wait()
        if self._latest is not None:
            self._write()
            await self.wait()

    async def abandon(self) -> None:
        with contextlib.suppress(BaseException):
            await self.wait()


class ExportWorker:
    name = "export-worker"

    def __init__(
        self,
        repo: ExportsRepo,
        files: ef.ExportFiles,
        tickets: grpc.aio.Channel,
        ingestion: grpc.aio.Channel,
        clock: Clock,
        settings: WorkerSettings,
        reports: Reports,
    ) -> None:
        self._reports = reports
        self._repo = repo
        self._files = files
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._ingestion = ingestion_pb2_grpc.IngestionServiceStub(ingestion)
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._log = log.get("reporting.exports")

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                for job_id in await self._repo.pending():
                    await self._try(job_id)
            except (OSError, asyncpg.PostgresError) as exc:
                self._log.warning("export worker pass failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_S)

    async def _try(self, job_id: str) -> None:
        """Run a job if no other worker holds it."""
        async with self._repo.pool.acquire() as conn:
            if not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 19))", job_id
            ):
                return
            try:
                job = await self._repo.by_id(conn, job_id)
                if job is None or job.state not in ("queued", "running"):
                    return
                await self._run(conn, job)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 19))", job_id)

    async def _run(self, conn: asyncpg.Connection, job: Job) -> None:
        with log.operation(tenant_id=job.tenant_id, export_id=job.id, kind=job.kind):
            await self._repo.start(conn, job.id, self._clock.now())
            final = self._files.final(job.tenant_id, job.id, job.kind)
            part = self._files.part(job.tenant_id, job.id)
            try:
                if final.exists() and not part.exists():  # renamed, then stopped
                    size, sha = ef.digest(final)
                else:
                    if not ef.resumable(part, job.file_bytes):
                        self._log.warning("export file lost: starting again", done=job.done)
                        job = await self._repo.restart(conn, job.id)
                    size, sha = await self._write(conn, job, part)
                    ef.place(part, final)
            except Refused as exc:
                self._log.info("export refused", error=str(exc))
                await self._repo.fail(conn, job.id, str(exc), self._clock.now())
                return
            except grpc.aio.AioRpcError as err:
                self._log.warning("export source unavailable", code=err.code().name)
                await asyncio.sleep(RETRY_S)
                return
            except OSError as exc:
                self._log.error("export file failed", error=repr(exc))
                await self._repo.fail(
                    conn,
                    job.id,
                    f"the file could not be written ({exc.strerror})",
                    self._clock.now(),
                )
                return
            await self._repo.finish(conn, job.id, size, sha, self._clock.now())
            self._log.info("export done", size_bytes=size, rows=job.total)

    async def _write(self, conn: asyncpg.Connection, job: Job, part: Path) -> tuple[int, str]:
        """The job's file written (synced) into `part`: its size and SHA-256 (hex)."""
        if job.kind == REPORT_CSV:
            return await self._report(conn, job, part)
        if job.kind in MAIL_KINDS:
            return await self._mails(conn, job, part)
        return await self._rows(conn, job, part)

    async def _stream(self, call: Any, request: Any, job: Job) -> AsyncIterator[Any]:
        """An owner's stream with the creator's identity, read one batch ahead; its refusal
        as `Refused`."""
        try:
            async for batch in read_ahead(call(request, metadata=job.identity.metadata())):
                yield batch
                if self._settings.pause_s:
                    await asyncio.sleep(self._settings.pause_s)
        except grpc.aio.AioRpcError as err:
            if grpc_client.refused(err):
                raise Refused(err.details() or err.code().name) from err
            raise

    async def _report(self, conn: asyncpg.Connection, job: Job, part: Path) -> tuple[int, str]:
        """An aggregate report's table, computed as the chart's (rreports' Reports)."""
        request = reporting_pb2.GetReportRequest.FromString(job.report_request)
        request.with_comments = True  # a CSV: satisfaction's comments as its last section
        try:
            report = report_pb(await self._reports.run(job.identity, request))
        except DomainError as err:
            raise Refused(err.message) from err
        rows = len(report_csv.table_of(report).rows)
        await self._repo.set_total(conn, job.id, rows)
        out = ef.Appender(part, 0)
        out.write("".join(report_csv.csv_lines(report)).encode("utf-8"))
        await self._repo.checkpoint(conn, job.id, "", rows, out.flushed())
        return await asyncio.to_thread(out.finish)

    async def _rows(self, conn: asyncpg.Connection, job: Job, part: Path) -> tuple[int, str]:
        shape = CsvShape(job.columns, job.tz, job.masked, job.keep_addresses)
        request = tickets_pb2.ExportRowsRequest(
            period=_period(job),
            inbox_ids=[job.inbox_id] if job.inbox_id else [],
            cursor=job.cursor,
            batch_size=self._settings.batch_rows,
        )
        call = (
            self._tickets.ExportTickets if job.kind == TICKETS_CSV else self._tickets.ExportMessages
        )
        out = ef.Appender(part, job.file_bytes)
        checkpoints = _Checkpoints(self._repo, conn, job.id)
        done, cursor = job.done, job.cursor
        try:
            if job.file_bytes == 0:
                out.write(shape.header())
            async for batch in self._stream(call, request, job):
                if not cursor and batch.total:
                    await checkpoints.wait()
                    await self._repo.set_total(conn, job.id, batch.total)
                if not batch.id:
                    continue
                out.write(shape.rows(batch))
                done, cursor = done + len(batch.id), batch.next_cursor
                await self._checkpoint(out, checkpoints, cursor, done)
            await checkpoints.flush()
        except BaseException:
            out.abandon()
            await checkpoints.abandon()
            raise
        return await asyncio.to_thread(out.finish)

    async def _mails(self, conn: asyncpg.Connection, job: Job, part: Path) -> tuple[int, str]:
        """The mails into a zip of .eml files or an mbox, from packed batches (one bytes
        value each, sliced without copies); each batch written in a thread (CRC-32,
        SHA-256 and the write let other threads run), so the next batch arrives
        meanwhile."""
        request = ingestion_pb2.ExportRawMailsRequest(
            period=_period(job),
            inbox_ids=[job.inbox_id] if job.inbox_id else [],
            cursor=job.cursor,
            max_batch_bytes=self._settings.batch_bytes,
            with_total=not job.cursor,
            packed=True,
        )
        done, cursor = job.done, job.cursor
        out = (
            ef.ZipAppender(part, job.file_bytes)
            if job.kind == EML_ZIP
            else ef.Appender(part, job.file_bytes)
        )
        checkpoints = _Checkpoints(self._repo, conn, job.id)
        try:
            async for batch in self._stream(self._ingestion.ExportRawMails, request, job):
                if not cursor and batch.total:
                    await checkpoints.wait()
                    await self._repo.set_total(conn, job.id, batch.total)
                count = len(batch.sizes) or len(batch.mails)
                if not count:
                    continue
                await asyncio.to_thread(_write_mails, out, batch)
                done, cursor = done + count, batch.next_cursor
                await self._checkpoint(out, checkpoints, cursor, done)
            await checkpoints.flush()
        except BaseException:
            out.abandon()
            await checkpoints.abandon()
            raise
        return await asyncio.to_thread(out.finish)

    @staticmethod
    async def _checkpoint(
        out: ef.Appender | ef.ZipAppender, checkpoints: _Checkpoints, cursor: str, done: int
    ) -> None:
        """After a batch: the file handed to the kernel (synced now and then), then its
        checkpoint put in, once the one before is written."""
        length = out.flushed()
        if out.sync_due():
            await asyncio.to_thread(out.sync)
        await checkpoints.wait()
        checkpoints.put(cursor, done, length)


def _write_mails(out: ef.ZipAppender | ef.Appender, batch: ingestion_pb2.RawMailBatch) -> None:
    if isinstance(out, ef.ZipAppender):
        out.add_all((eml_name(us // 1_000_000, mid), raw) for us, mid, _, raw in _unpacked(batch))
    else:
        out.write(
            b"".join(
                mbox_entry(bytes(raw), sender, from_micros(us))
                for us, mid, sender, raw in _unpacked(batch)
            )
        )


_Mail = tuple[int, str, str, bytes | memoryview]  # received (µs), id, envelope sender, bytes


def _unpacked(batch: ingestion_pb2.RawMailBatch) -> Iterator[_Mail]:
    """A batch's mails in order: from its packed fields (slices of one bytes value), or
    from `mails` when an ingestion of before packed batches sent them so."""
    if batch.mails:
        for m in batch.mails:
            us = m.received_at.seconds * 1_000_000 + m.received_at.nanos // 1000
            yield us, m.message_id, m.envelope_from, m.raw
        return
    raws = memoryview(batch.raws)
    at = 0
    for size, mid, us, sender in zip(
        batch.sizes, batch.message_ids, batch.received_at_us, batch.envelope_froms, strict=True
    ):
        yield us, mid, sender, raws[at : at + size]
        at += size
