"""The suppression list (issue 20, OUT-6; `manage_outreach`): addresses no campaign mails
again — unsubscribed, bounced for good, or added by hand. `GET /api/v1/suppressions`
(search by part of the address, newest first, cursor paging), `POST` an address (reason
`manual`), `DELETE /api/v1/suppressions/{address}`. Outbound keeps the list per tenant
and checks every address (400 naming `address`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import outbound_outreach_pb2 as pb

from . import views
from .request import deps, json_body, limit, metadata
from .responses import json_response, no_content


def suppression(s: pb.Suppression) -> dict[str, Any]:
    return {
        "address": s.address,
        "reason": s.reason,
        "campaign_id": s.campaign_id or None,
        "created_at": views.iso(s.created_at),
    }


async def list_suppressions(request: web.Request) -> web.Response:
    resp = await deps(request).outreach.ListSuppressions(
        pb.ListSuppressionsRequest(
            query=request.query.get("query", "")[:300],
            cursor=request.query.get("cursor", "")[:500],
            limit=limit(request),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {
            "suppressions": [suppression(s) for s in resp.suppressions],
            "next_cursor": resp.next_cursor,
        }
    )


async def add_suppression(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).outreach.AddSuppression(
        pb.AddSuppressionRequest(address=body["address"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(suppression(resp), 201)


async def delete_suppression(request: web.Request) -> web.Response:
    await deps(request).outreach.DeleteSuppression(
        pb.DeleteSuppressionRequest(address=request.match_info["address"]),
        metadata=metadata(request),
        timeout=15,
    )
    return no_content()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/suppressions", list_suppressions)
    r.add_post("/api/v1/suppressions", add_suppression)
    r.add_delete("/api/v1/suppressions/{address}", delete_suppression)
