"""The live figures (issue 19, rlive): `GET /api/v1/reports/live-queue` (RPT-7, the
supervisor's live queue) and `GET /api/v1/reports/live-assignment` (RPT-5), from
reporting's LiveReportsService; their pushes on the live socket (live_reports.py).
Permission `see_reports` (openapi.yaml, and reporting checks it again)."""

from __future__ import annotations

import uuid

from aiohttp import web
from switchboard.v1 import reporting_live_pb2 as pb
from switchboard.v1 import reporting_live_pb2_grpc

from . import live_reports
from . import views_live_reports as views
from .request import bad, caller, deps, metadata
from .responses import json_response


def _inbox_id(request: web.Request) -> str:
    """The `inbox_id` asked for, canonical ("" for every inbox the caller may see)."""
    raw = request.query.get("inbox_id", "")
    try:
        return str(uuid.UUID(raw)) if raw else ""
    except ValueError:
        raise bad("inbox_id is not a valid id", "inbox_id") from None


def _stub(request: web.Request) -> reporting_live_pb2_grpc.LiveReportsServiceStub:
    return reporting_live_pb2_grpc.LiveReportsServiceStub(deps(request).channels["reporting"])  # type: ignore[no-untyped-call,unused-ignore]


async def live_queue(request: web.Request) -> web.Response:
    inbox_id = _inbox_id(request)
    resp = await _stub(request).GetLiveQueue(
        pb.LiveQueueRequest(inbox_id=inbox_id), metadata=metadata(request), timeout=10
    )
    body = views.queue(resp, caller(request).sees_inbox, inbox_id or None)
    return json_response(body, customer_data=False)


async def live_assignment(request: web.Request) -> web.Response:
    inbox_id = _inbox_id(request)
    resp = await _stub(request).GetLiveAssignment(
        pb.LiveAssignmentRequest(inbox_id=inbox_id), metadata=metadata(request), timeout=10
    )
    body = views.assignment(resp, caller(request).sees_inbox, inbox_id or None)
    return json_response(body, customer_data=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports/live-queue", live_queue)
    app.router.add_get("/api/v1/reports/live-assignment", live_assignment)
    live_reports.attach(app)
