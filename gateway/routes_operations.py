"""The operation log (SEC-7): every state-changing request of an operator, as the
gateway announced it (access.py) and accounts keeps it, listed and exported as CSV."""

from __future__ import annotations

import csv
import io

from aiohttp import web
from switchboard.v1 import accounts_pb2, common_pb2

from . import views, views_accounts
from .request import deps, metadata, page, timestamp
from .responses import page_response

CSV_MAX_ROWS = 100_000


def _operations_request(request: web.Request) -> accounts_pb2.ListOperationsRequest:
    q = request.query
    req = accounts_pb2.ListOperationsRequest(
        page=page(request),
        operator_id=q.get("operator_id", ""),
        action=q.get("action", "")[:101],
        target=q.get("target", "")[:201],
        text=q.get("q", "")[:201],
    )
    period = common_pb2.Period()
    if q.get("from"):
        period.start.CopyFrom(timestamp(q["from"], "from"))
    if q.get("to"):
        period.end.CopyFrom(timestamp(q["to"], "to"))
    req.period.CopyFrom(period)
    return req


async def list_operations(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListOperations(
        _operations_request(request), metadata=metadata(request), timeout=10
    )
    return page_response(
        [views_accounts.operation(o) for o in resp.operations],
        resp.next_cursor,
        customer_data=False,
    )


CSV_COLUMNS = ("at", "operator_id", "operator", "action", "method", "path", "target", "status",
               "client_address", "request_id")  # fmt: skip


def _csv_cell(value: str) -> str:
    """No formula injection when the file is opened in a spreadsheet."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def export_operations(request: web.Request) -> web.StreamResponse:
    """The operation log as CSV (UTF-8 with a BOM, for spreadsheets), every page of the
    filter, newest first, at most CSV_MAX_ROWS rows."""
    d = deps(request)
    md = metadata(request)
    req = _operations_request(request)
    req.page.limit = 1000
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="operations.csv"',
        }
    )
    first = await d.accounts.ListOperations(req, metadata=md, timeout=30)  # errors before 200
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    await response.write(b"\xef\xbb\xbf" + buf.getvalue().encode())
    batch, rows = first, 0
    while True:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for o in batch.operations:
            writer.writerow(
                [
                    _csv_cell(c)
                    for c in (
                        views.iso(o.at) or "",
                        o.operator.id,
                        o.operator.display_name,
                        o.action,
                        o.method,
                        o.path,
                        o.target,
                        str(o.status),
                        o.client_address,
                        o.request_id,
                    )
                ]
            )
            rows += 1
        await response.write(buf.getvalue().encode())
        if not batch.next_cursor or rows >= CSV_MAX_ROWS:
            break
        req.page.cursor = batch.next_cursor
        batch = await d.accounts.ListOperations(req, metadata=md, timeout=30)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/operations", list_operations)
    app.router.add_get("/api/v1/operations.csv", export_operations)
