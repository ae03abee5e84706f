"""Exports (issue 19, RPT-6 / DAT-1): ask for an export of tickets or messages as CSV with
chosen columns, or of the mails of a period as .eml files in a zip or as an mbox; follow
its progress; download the file. reporting runs them in the background (ExportsService);
asking is in the operation log like every state-changing request."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web
from switchboard.v1 import (
    common_pb2,
    reporting_exports_pb2,
    reporting_exports_pb2_grpc,
    reporting_pb2,
)

from . import views
from .errors import ApiError, from_grpc, renamed
from .request import bad, deps, json_body, metadata, page, timestamp
from .responses import json_response, page_response

_FIELDS = {"period.start": "from", "period.end": "to", "time_zone": "tz"}


def _stub(request: web.Request) -> Any:
    return reporting_exports_pb2_grpc.ExportsServiceStub(deps(request).channels["reporting"])  # type: ignore[no-untyped-call,unused-ignore]


def export_view(e: reporting_exports_pb2.Export) -> dict[str, Any]:
    done = e.state == "done"
    return {
        "id": e.id,
        "kind": e.kind,
        "report": e.report or None,
        "state": e.state,
        "done": e.done,
        "total": e.total,
        "params": {
            "from": views.iso(e.period.start),
            "to": views.iso(e.period.end),
            "inbox_id": e.inbox_id or None,
            "columns": list(e.columns),
            "tz": e.tz,
        },
        "created_at": views.iso(e.created_at),
        "finished_at": views.iso(e.finished_at),
        "filename": e.filename,
        "content_type": e.content_type,
        "size_bytes": e.size_bytes,
        "sha256": e.sha256 or None,
        "error": e.error or None,
        "download": f"/api/v1/exports/{e.id}/file" if done else None,
    }


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad(f"{name} must be a string", name)
    return value


def _report_request(body: dict[str, Any]) -> reporting_pb2.GetReportRequest:
    """report_csv: the same parameters as GET /api/v1/reports/{report}, as given."""
    req = reporting_pb2.GetReportRequest(
        report=_text(body, "report"),
        to=_text(body, "to"),
        granularity=_text(body, "granularity"),
        time_zone=_text(body, "tz"),
        inbox_id=_text(body, "inbox_id"),
        basis=_text(body, "basis"),
    )
    setattr(req, "from", _text(body, "from"))
    return req


async def create_export(request: web.Request) -> web.Response:
    body = await json_body(request)
    period = common_pb2.Period()
    report = None
    if body.get("kind") == "report_csv":
        report = _report_request(body)
    else:
        for name, target in (("from", period.start), ("to", period.end)):
            text = _text(body, name)
            if not text:
                raise bad(f"{name} is required", name)
            target.CopyFrom(timestamp(text, name))
    columns = body.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad("columns must be a list of column names", "columns")
    req = reporting_exports_pb2.CreateExportRequest(
        kind=_text(body, "kind"),
        period=period,
        inbox_id=_text(body, "inbox_id"),
        columns=columns,
        tz=_text(body, "tz"),
        report=report,
    )
    created = await renamed(
        _stub(request).CreateExport(req, metadata=metadata(request), timeout=15), _FIELDS
    )
    return json_response(export_view(created), 202, customer_data=False)


async def get_export(request: web.Request) -> web.Response:
    req = reporting_exports_pb2.GetExportRequest(export_id=request.match_info["export_id"])
    found = await _stub(request).GetExport(req, metadata=metadata(request), timeout=10)
    return json_response(export_view(found), customer_data=False)


async def list_exports(request: web.Request) -> web.Response:
    req = reporting_exports_pb2.ListExportsRequest(page=page(request))
    resp = await _stub(request).ListExports(req, metadata=metadata(request), timeout=10)
    return page_response(
        [export_view(e) for e in resp.exports], resp.next_cursor, customer_data=False
    )


async def download_export(request: web.Request) -> web.StreamResponse:
    """The finished file, streamed from reporting as it is read (no size limit)."""
    stub, md = _stub(request), metadata(request)
    req = reporting_exports_pb2.GetExportRequest(export_id=request.match_info["export_id"])
    found = await stub.GetExport(req, metadata=md, timeout=10)
    if found.state != "done":
        raise bad_state(found.state)
    call = stub.DownloadExport(req, metadata=md)
    response = web.StreamResponse(
        headers={
            "Content-Type": found.content_type,
            "Content-Disposition": f'attachment; filename="{found.filename}"',
        }
    )
    response.content_length = found.size_bytes
    started = False
    try:
        async for chunk in call:
            if not started:
                await response.prepare(request)
                started = True
            if chunk.data:
                await response.write(chunk.data)
    except grpc.aio.AioRpcError as err:
        if not started:
            raise from_grpc(err) from None
        raise  # mid-file: the client sees a cut connection, not a wrong file
    if not started:
        await response.prepare(request)
    await response.write_eof()
    return response


def bad_state(state: str) -> ApiError:
    return ApiError(409, "failed_precondition", f"the export is {state}, not done", "export_id")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/exports", create_export)
    app.router.add_get("/api/v1/exports", list_exports)
    app.router.add_get("/api/v1/exports/{export_id}", get_export)
    app.router.add_get("/api/v1/exports/{export_id}/file", download_export)
