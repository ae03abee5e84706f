"""Outbound routes of issue 7 (OUT-1…4, OUT-7): sending a draft now or at a time, the
outbox items (list, detail, cancel, reschedule, decide an unknown one), SMTP routes, DKIM
keys and each inbox's automatic reply. The outbound service does the work and checks
permissions and fences itself; documented in openapi.yaml."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import outbound_pb2, outbound_pb2_grpc

from services.runtime import ticket_names

from . import views_compose
from .request import (
    bad,
    deps,
    json_body,
    limit,
    local_time,
    metadata,
    optional_body,
    query_list,
)
from .responses import connection_tested, json_response, no_content, page_response

STATES = ("scheduled", "sending", "retrying", "sent", "failed", "unknown", "cancelled", "bounced")
ROUTE_TEXT = ("name", "inbox_id", "domain", "host", "username")


def _stub(request: web.Request) -> outbound_pb2_grpc.OutboundServiceStub:
    return deps(request).outbound


# -- sending -----------------------------------------------------------------------------


async def send_draft(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = outbound_pb2.SubmitDraftRequest(
        draft_id=request.match_info["draft_id"],
        fence=body.get("fence", 0),
        acknowledged_warnings=body.get("acknowledged_warnings", []),
        request_approval=body.get("request_approval", False),
        without_survey=body.get("without_survey", False),
    )
    if body.get("status_after") is not None:
        req.status_after = ticket_names.STATUS_VALUES[body["status_after"]]
    if body.get("send_at") is not None:
        req.send_at.CopyFrom(local_time(request, body["send_at"], "send_at"))
    resp = await _stub(request).SubmitDraft(req, metadata=metadata(request), timeout=60)
    return json_response(views_compose.send(resp), status=201)


def _states(request: web.Request) -> list[str]:
    states = query_list(request, "state")
    for s in states:
        if s not in STATES:
            raise bad(f"state must be one of {', '.join(STATES)}", "state")
    return states


async def _list(request: web.Request, ticket_id: str = "") -> web.Response:
    resp = await _stub(request).ListSends(
        outbound_pb2.ListSendsRequest(
            ticket_id=ticket_id,
            states=_states(request),
            inbox_id=request.query.get("inbox_id", "")[:100],
            limit=limit(request),
            cursor=request.query.get("cursor", "")[:500],
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return page_response([views_compose.send(s) for s in resp.sends], resp.next_cursor)


async def list_sends(request: web.Request) -> web.Response:
    return await _list(request)


async def list_ticket_sends(request: web.Request) -> web.Response:
    return await _list(request, request.match_info["ticket_id"])


async def get_send(request: web.Request) -> web.Response:
    resp = await _stub(request).GetSend(
        outbound_pb2.GetSendRequest(send_id=request.match_info["send_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.send(resp))


async def cancel_send(request: web.Request) -> web.Response:
    resp = await _stub(request).CancelSend(
        outbound_pb2.CancelSendRequest(send_id=request.match_info["send_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_compose.send(resp))


async def reschedule_send(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = outbound_pb2.RescheduleSendRequest(send_id=request.match_info["send_id"])
    req.send_at.CopyFrom(local_time(request, body["send_at"], "send_at"))
    resp = await _stub(request).RescheduleSend(req, metadata=metadata(request), timeout=15)
    return json_response(views_compose.send(resp))


async def resolve_send(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).ResolveUnknown(
        outbound_pb2.ResolveUnknownRequest(
            send_id=request.match_info["send_id"], decision=body["decision"]
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_compose.send(resp))


# -- SMTP routes, DKIM keys ------------------------------------------------------------


async def list_routes(request: web.Request) -> web.Response:
    resp = await _stub(request).ListSmtpRoutes(
        outbound_pb2.ListSmtpRoutesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [views_compose.smtp_route(r) for r in resp.routes]}, customer_data=False
    )


def _route_write(body: dict[str, Any], route_id: str = "") -> outbound_pb2.SmtpRouteWrite:
    """A body its schema accepted (SmtpRouteWrite); a password left out keeps the stored
    one."""
    write = outbound_pb2.SmtpRouteWrite(
        route_id=route_id,
        **{name: body.get(name) or "" for name in ROUTE_TEXT},
        scope=body.get("scope") or "default",
        port=body["port"],
        security=body.get("security") or "starttls",
        verify_certificate=body.get("verify_certificate", True),
    )
    if "password" in body:  # null or "": none
        write.password = body["password"] or ""
    return write


async def test_route_settings(request: web.Request) -> web.Response:
    """A connection test of route settings not saved yet (the body of a new route)."""
    write = _route_write(await json_body(request))
    resp = await _stub(request).TestSmtpRoute(
        outbound_pb2.TestSmtpRouteRequest(settings=write), metadata=metadata(request), timeout=30
    )
    return connection_tested(resp)


async def test_route(request: web.Request) -> web.Response:
    """A stored route as it is (no body), or its edited settings with its stored password
    unless the body has another."""
    route_id = request.match_info["route_id"]
    test = outbound_pb2.TestSmtpRouteRequest(route_id=route_id)
    body = await optional_body(request)
    if body is not None:
        test.settings.CopyFrom(_route_write(body, route_id))
    resp = await _stub(request).TestSmtpRoute(test, metadata=metadata(request), timeout=30)
    return connection_tested(resp)


async def _put_route(request: web.Request, route_id: str = "") -> web.Response:
    write = _route_write(await json_body(request), route_id)
    resp = await _stub(request).PutSmtpRoute(write, metadata=metadata(request), timeout=10)
    return json_response(
        views_compose.smtp_route(resp), status=200 if route_id else 201, customer_data=False
    )


async def create_route(request: web.Request) -> web.Response:
    return await _put_route(request)


async def update_route(request: web.Request) -> web.Response:
    return await _put_route(request, request.match_info["route_id"])


async def delete_route(request: web.Request) -> web.Response:
    await _stub(request).DeleteSmtpRoute(
        outbound_pb2.DeleteSmtpRouteRequest(route_id=request.match_info["route_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def list_dkim(request: web.Request) -> web.Response:
    resp = await _stub(request).ListDkimKeys(
        outbound_pb2.ListDkimKeysRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [views_compose.dkim_key(k) for k in resp.keys]}, customer_data=False
    )


async def put_dkim(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).PutDkimKey(
        outbound_pb2.PutDkimKeyRequest(
            domain=request.match_info["domain"][:300],
            selector=body["selector"],
            private_key_pem=body.get("private_key_pem", ""),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(views_compose.dkim_key(resp), customer_data=False)


async def delete_dkim(request: web.Request) -> web.Response:
    await _stub(request).DeleteDkimKey(
        outbound_pb2.DeleteDkimKeyRequest(domain=request.match_info["domain"][:300]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


# -- automatic replies -----------------------------------------------------------------


async def get_auto_reply(request: web.Request) -> web.Response:
    resp = await _stub(request).GetAutoReply(
        outbound_pb2.GetAutoReplyRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.auto_reply(resp), customer_data=False)


async def put_auto_reply(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).SetAutoReply(
        outbound_pb2.AutoReplySettings(
            inbox_id=request.match_info["inbox_id"],
            enabled=body.get("enabled", False),
            mode=body.get("mode") or "outside_hours",
            hours=[outbound_pb2.BusinessHours(**h) for h in body.get("hours", [])],
            time_zone=body.get("time_zone") or "UTC",
            template_id=body.get("template_id") or "",
            period_hours=body.get("period_hours", 24),
            form_template_id=body.get("form_template_id") or "",
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_compose.auto_reply(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/drafts/{draft_id}/send", send_draft)
    r.add_get("/api/v1/sends", list_sends)
    r.add_get("/api/v1/sends/{send_id}", get_send)
    r.add_post("/api/v1/sends/{send_id}/cancel", cancel_send)
    r.add_put("/api/v1/sends/{send_id}/schedule", reschedule_send)
    r.add_post("/api/v1/sends/{send_id}/resolve", resolve_send)
    r.add_get("/api/v1/tickets/{ticket_id}/sends", list_ticket_sends)
    r.add_get("/api/v1/smtp-routes", list_routes)
    r.add_post("/api/v1/smtp-routes", create_route)
    r.add_post("/api/v1/smtp-routes/test", test_route_settings)
    r.add_post("/api/v1/smtp-routes/{route_id}/test", test_route)
    r.add_put("/api/v1/smtp-routes/{route_id}", update_route)
    r.add_delete("/api/v1/smtp-routes/{route_id}", delete_route)
    r.add_get("/api/v1/dkim-keys", list_dkim)
    r.add_put("/api/v1/dkim-keys/{domain}", put_dkim)
    r.add_delete("/api/v1/dkim-keys/{domain}", delete_dkim)
    r.add_get("/api/v1/inboxes/{inbox_id}/auto-reply", get_auto_reply)
    r.add_put("/api/v1/inboxes/{inbox_id}/auto-reply", put_auto_reply)
