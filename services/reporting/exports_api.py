"""ExportsService (issue 19, DAT-1): an operator with the permission `export` asks for an
export (validated here: kind, columns, period, time zone, inbox), follows its progress,
lists their own, and downloads the finished file. The work is the export worker's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    common_pb2,
    reporting_exports_pb2_grpc,
    reporting_pb2,
)
from switchboard.v1 import (
    reporting_exports_pb2 as pb,
)

from services.runtime import grpc_client, identity, permissions
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.export_rows import period_bounds
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.paging import Cursor, page_size

from . import export_formats as fmt
from . import report_csv
from .export_files import CHUNK, ExportFiles
from .exports_repo import ExportsRepo, Job, NewJob
from .exports_worker import ExportWorker
from .reports import Reports, report_pb


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def export_pb(job: Job) -> pb.Export:
    out = pb.Export(
        id=job.id,
        kind=job.kind,
        state=job.state,
        done=job.done,
        total=max(job.total, job.done),
        period=common_pb2.Period(start=_ts(job.period_start), end=_ts(job.period_end)),
        inbox_id=job.inbox_id,
        columns=list(job.columns),
        tz=job.tz,
        created_at=_ts(job.created_at),
        filename=job.filename,
        content_type=fmt.CONTENT_TYPES[job.kind],
        size_bytes=job.size_bytes,
        sha256=job.sha256,
        error=job.error,
    )
    if job.report_request:
        out.report = reporting_pb2.GetReportRequest.FromString(job.report_request).report
    if job.finished_at is not None:
        out.finished_at.CopyFrom(_ts(job.finished_at))
    return out


def _operator() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.EXPORT, "export")
    return ident


class ExportsApi(reporting_exports_pb2_grpc.ExportsServiceServicer):
    def __init__(
        self,
        repo: ExportsRepo,
        files: ExportFiles,
        worker: ExportWorker,
        accounts: grpc.aio.Channel,
        clock: Clock,
        ids: IdGenerator,
        reports: Reports,
    ) -> None:
        self._reports = reports
        self._repo = repo
        self._files = files
        self._worker = worker
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._clock = clock
        self._ids = ids

    async def CreateExport(self, request: pb.CreateExportRequest, context: Context) -> pb.Export:
        ident = _operator()
        kind = request.kind
        if kind not in fmt.KINDS:
            raise InvalidArgument(f"kind is one of {', '.join(fmt.KINDS)}", field="kind")
        if kind == fmt.REPORT_CSV:
            return await self._report_export(ident, request)
        start, end = _period(request.period)
        columns: tuple[str, ...] = ()
        if kind in fmt.COLUMNS:
            unknown = fmt.unknown_columns(kind, request.columns)
            if unknown:
                raise InvalidArgument(
                    f"unknown column {unknown[0]!r} (known: {', '.join(fmt.COLUMNS[kind])})",
                    field="columns",
                )
            columns = tuple(request.columns) or fmt.COLUMNS[kind]
        elif request.columns:
            raise InvalidArgument(f"a {kind} export has no columns", field="columns")
        tz = request.tz or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument(f"unknown time zone {tz!r}", field="tz") from None
        if kind in fmt.MAIL_KINDS:  # the originals hold every address and attachment
            identity.require_permission(
                ident, permissions.SEE_CUSTOMER_ADDRESSES, "export original mails"
            )
            identity.require_permission(
                ident, permissions.DOWNLOAD_ATTACHMENTS, "export original mails"
            )
        inbox_id = str(parse_uuid(request.inbox_id, "inbox_id")) if request.inbox_id else ""
        keep = await self._tenant_addresses(ident, inbox_id)
        masked = not ident.sees_addresses()
        new = NewJob(
            kind=kind,
            period_start=start,
            period_end=end,
            inbox_id=inbox_id,
            columns=columns,
            tz=tz,
            masked=masked,
            keep_addresses=keep if masked else frozenset(),
            filename=fmt.filename(kind, start, end),
        )
        job = await self._repo.create(self._ids.new_str(), ident, new, self._clock.now())
        self._worker.wake()
        return export_pb(job)

    async def _report_export(self, ident: Identity, request: pb.CreateExportRequest) -> pb.Export:
        """An aggregate report's CSV: its request validated by running it now (parameters,
        see_reports, the inbox), its zone fixed, so that the file has the chart's numbers."""
        req = reporting_pb2.GetReportRequest()
        req.CopyFrom(request.report)
        req.inbox_id = req.inbox_id or request.inbox_id
        req.time_zone = req.time_zone or request.tz or ident.time_zone or "UTC"
        req.from_facts = False
        report = report_pb(await self._reports.run(ident, req))
        new = NewJob(
            kind=fmt.REPORT_CSV,
            period_start=datetime.fromisoformat(getattr(report, "from")),
            period_end=datetime.fromisoformat(report.to),
            inbox_id=req.inbox_id,
            columns=(),
            tz=req.time_zone,
            masked=False,
            keep_addresses=frozenset(),
            filename=report_csv.filename(report),
            report_request=req.SerializeToString(),
        )
        job = await self._repo.create(self._ids.new_str(), ident, new, self._clock.now())
        self._worker.wake()
        return export_pb(job)

    async def _tenant_addresses(self, ident: Identity, inbox_id: str) -> frozenset[str]:
        """The tenant's own inbox addresses (never masked); NOT_FOUND for an inbox that is
        not the caller's to see."""
        service = Identity(tenant_id=ident.tenant_id, correlation_id=ident.correlation_id)
        inboxes = await grpc_client.call_peer(
            "accounts",
            self._accounts.ListInboxes,
            accounts_pb2.ListInboxesRequest(),
            service.metadata(),
        )
        if inbox_id and (
            not ident.sees_inbox(inbox_id) or all(i.id != inbox_id for i in inboxes.inboxes)
        ):
            raise NotFound("no such inbox", field="inbox_id")
        return frozenset(a.lower() for i in inboxes.inboxes for a in i.addresses)

    async def _own(self, export_id: str) -> Job:
        ident = _operator()
        job = await self._repo.get(
            ident.tenant_id, ident.operator_id, parse_uuid(export_id, "export_id")
        )
        if job is None:
            raise NotFound("no such export", field="export_id")
        return job

    async def GetExport(self, request: pb.GetExportRequest, context: Context) -> pb.Export:
        return export_pb(await self._own(request.export_id))

    async def ListExports(
        self, request: pb.ListExportsRequest, context: Context
    ) -> pb.ListExportsResponse:
        ident = _operator()
        limit = page_size(request.page.limit)
        before = Cursor.decode(request.page.cursor) if request.page.cursor else None
        jobs = await self._repo.recent(ident.tenant_id, ident.operator_id, before, limit + 1)
        out = pb.ListExportsResponse(exports=[export_pb(j) for j in jobs[:limit]])
        if len(jobs) > limit:
            last = jobs[limit - 1]
            out.next_cursor = Cursor(last.created_at, uuid.UUID(last.id)).encode()
        return out

    async def DownloadExport(
        self, request: pb.GetExportRequest, context: Context
    ) -> AsyncIterator[pb.ExportChunk]:
        job = await self._own(request.export_id)
        if job.state != "done":
            raise FailedPrecondition(f"the export is {job.state}, not done", field="export_id")
        path = self._files.final(job.tenant_id, job.id, job.kind)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise FailedPrecondition("the export's file is gone", field="export_id") from None
        try:
            first = True
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield pb.ExportChunk(data=chunk, size_bytes=job.size_bytes if first else 0)
                first = False
            if first:  # an empty file still answers one chunk with its size
                yield pb.ExportChunk(size_bytes=0)
        finally:
            f.close()


def _period(period: common_pb2.Period) -> tuple[datetime, datetime]:
    """[from, to): both given, `to` after `from` (the API's names for the fields)."""
    if not period.HasField("start"):
        raise InvalidArgument("from is required", field="from")
    if not period.HasField("end"):
        raise InvalidArgument("to is required", field="to")
    try:
        return period_bounds(period)
    except InvalidArgument:
        raise InvalidArgument("to must be after from", field="to") from None
