"""Outbound routes of issue 7 (OUT-1…4, OUT-7): sending a draft now or at a time, the
outbox items (list, detail, cancel, reschedule, decide an unknown one), SMTP routes, DKIM
keys and each inbox's automatic reply. The outbound service does the work and checks
permissions and fences itself; documented in openapi.yaml."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, outbound_pb2

from . import app as gw
from . import views
from .routes_tickets import FENCE_MAX, _bad, _body, _int, _status, _str, _str_list

STATES = ("scheduled", "sending", "retrying", "sent", "failed", "unknown", "cancelled", "bounced")
ROUTE_FIELDS = (
    "name",
    "scope",
    "inbox_id",
    "domain",
    "host",
    "port",
    "security",
    "username",
    "password",
    "verify_certificate",
)
AUTO_REPLY_FIELDS = (
    "enabled",
    "mode",
    "hours",
    "time_zone",
    "template_id",
    "period_hours",
    "form_template_id",
)


def _stub(request: web.Request) -> Any:
    return request.app[gw.DEPS].outbound


async def _md(request: web.Request) -> list[tuple[str, str]]:
    return gw._md(await gw.caller_of(request), request)


def _flag(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _bad(f"{name} must be true or false", name)
    return value


async def _local_time(request: web.Request, value: Any, field: str) -> Timestamp:
    """An ISO 8601 date-time; without an offset it is in the operator's time zone (OUT-2:
    "tomorrow at 9" means 9 where the operator is)."""
    if not isinstance(value, str):
        raise _bad(f"{field} must be an ISO 8601 date-time", field)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"{field} must be an ISO 8601 date-time", field) from None
    if when.tzinfo is None:
        caller = await gw.caller_of(request)
        try:
            when = when.replace(tzinfo=ZoneInfo(caller.time_zone or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            when = when.replace(tzinfo=UTC)
    ts = Timestamp()
    try:
        ts.FromDatetime(when.astimezone(UTC))
    except (ValueError, OverflowError):
        raise _bad(f"{field} is out of range", field) from None
    return ts


# -- sending -----------------------------------------------------------------------------


async def send_draft(request: web.Request) -> web.Response:
    body = await _body(request, ("fence", "send_at", "status_after", "acknowledged_warnings"))
    req = outbound_pb2.SubmitDraftRequest(
        draft_id=request.match_info["draft_id"],
        fence=_int(body, "fence", 1, FENCE_MAX) if "fence" in body else 0,
        acknowledged_warnings=_str_list(body, "acknowledged_warnings"),
    )
    if body.get("status_after") is not None:
        req.status_after = _status(body["status_after"], "status_after")
    if body.get("send_at") is not None:
        req.send_at.CopyFrom(await _local_time(request, body["send_at"], "send_at"))
    resp = await _stub(request).SubmitDraft(req, metadata=await _md(request), timeout=60)
    return gw.json_response(views.send(resp), status=201)


def _states(request: web.Request) -> list[str]:
    raw = request.query.get("state", "")
    states = [s for s in raw.split(",") if s]
    for s in states:
        if s not in STATES:
            raise _bad(f"state must be one of {', '.join(STATES)}", "state")
    return states


def _limit(request: web.Request) -> int:
    value = gw._int_param(request, "limit", 50)
    if not 1 <= value <= 200:
        raise _bad("limit must be between 1 and 200", "limit")
    return value


async def _list(request: web.Request, ticket_id: str = "") -> web.Response:
    resp = await _stub(request).ListSends(
        outbound_pb2.ListSendsRequest(
            ticket_id=ticket_id,
            states=_states(request),
            inbox_id=request.query.get("inbox_id", "")[:100],
            limit=_limit(request),
            cursor=request.query.get("cursor", "")[:500],
        ),
        metadata=await _md(request),
        timeout=15,
    )
    return gw.json_response(
        {"items": [views.send(s) for s in resp.sends], "next": resp.next_cursor or None}
    )


async def list_sends(request: web.Request) -> web.Response:
    return await _list(request)


async def list_ticket_sends(request: web.Request) -> web.Response:
    return await _list(request, request.match_info["ticket_id"])


async def get_send(request: web.Request) -> web.Response:
    resp = await _stub(request).GetSend(
        outbound_pb2.GetSendRequest(send_id=request.match_info["send_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.send(resp))


async def cancel_send(request: web.Request) -> web.Response:
    resp = await _stub(request).CancelSend(
        outbound_pb2.CancelSendRequest(send_id=request.match_info["send_id"]),
        metadata=await _md(request),
        timeout=15,
    )
    return gw.json_response(views.send(resp))


async def reschedule_send(request: web.Request) -> web.Response:
    body = await _body(request, ("send_at",))
    if body.get("send_at") is None:
        raise _bad("send_at is required", "send_at")
    req = outbound_pb2.RescheduleSendRequest(send_id=request.match_info["send_id"])
    req.send_at.CopyFrom(await _local_time(request, body["send_at"], "send_at"))
    resp = await _stub(request).RescheduleSend(req, metadata=await _md(request), timeout=15)
    return gw.json_response(views.send(resp))


async def resolve_send(request: web.Request) -> web.Response:
    body = await _body(request, ("decision",))
    resp = await _stub(request).ResolveUnknown(
        outbound_pb2.ResolveUnknownRequest(
            send_id=request.match_info["send_id"], decision=_str(body, "decision")
        ),
        metadata=await _md(request),
        timeout=15,
    )
    return gw.json_response(views.send(resp))


# -- SMTP routes, DKIM keys ------------------------------------------------------------


async def list_routes(request: web.Request) -> web.Response:
    resp = await _stub(request).ListSmtpRoutes(
        outbound_pb2.ListSmtpRoutesRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {"items": [views.smtp_route(r) for r in resp.routes]}, customer_data=False
    )


async def _route_write(request: web.Request, route_id: str = "") -> outbound_pb2.SmtpRouteWrite:
    body = await _body(request, ROUTE_FIELDS)
    write = outbound_pb2.SmtpRouteWrite(
        route_id=route_id,
        name=_str(body, "name"),
        scope=_str(body, "scope") or "default",
        inbox_id=_str(body, "inbox_id"),
        domain=_str(body, "domain"),
        host=_str(body, "host"),
        port=_int(body, "port", 1, 65535),
        security=_str(body, "security") or "starttls",
        username=_str(body, "username"),
        verify_certificate=_flag(body, "verify_certificate", True),
    )
    if "password" in body:
        if body["password"] is not None and not isinstance(body["password"], str):
            raise _bad("password must be a string", "password")
        write.password = body["password"] or ""
    return write


def _tested(result: common_pb2.ConnectionTestResult) -> web.Response:
    return gw.json_response(
        {"ok": result.ok, "detail": result.detail, "elapsed_ms": result.elapsed_ms},
        customer_data=False,
    )


async def test_route_settings(request: web.Request) -> web.Response:
    """A connection test of route settings not saved yet (the body of a new route)."""
    write = await _route_write(request)
    resp = await _stub(request).TestSmtpRoute(
        outbound_pb2.TestSmtpRouteRequest(settings=write), metadata=await _md(request), timeout=30
    )
    return _tested(resp)


async def test_route(request: web.Request) -> web.Response:
    """A stored route as it is (no body), or its edited settings with its stored password
    unless the body has another."""
    route_id = request.match_info["route_id"]
    test = outbound_pb2.TestSmtpRouteRequest(route_id=route_id)
    if request.can_read_body:
        test.settings.CopyFrom(await _route_write(request, route_id))
    resp = await _stub(request).TestSmtpRoute(
        test,
        metadata=await _md(request),
        timeout=30,
    )
    return _tested(resp)


async def _put_route(request: web.Request, route_id: str = "") -> web.Response:
    write = await _route_write(request, route_id)
    resp = await _stub(request).PutSmtpRoute(write, metadata=await _md(request), timeout=10)
    return gw.json_response(
        views.smtp_route(resp), status=200 if route_id else 201, customer_data=False
    )


async def create_route(request: web.Request) -> web.Response:
    return await _put_route(request)


async def update_route(request: web.Request) -> web.Response:
    return await _put_route(request, request.match_info["route_id"])


async def delete_route(request: web.Request) -> web.Response:
    await _stub(request).DeleteSmtpRoute(
        outbound_pb2.DeleteSmtpRouteRequest(route_id=request.match_info["route_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return web.Response(status=204)


async def list_dkim(request: web.Request) -> web.Response:
    resp = await _stub(request).ListDkimKeys(
        outbound_pb2.ListDkimKeysRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response({"items": [views.dkim_key(k) for k in resp.keys]}, customer_data=False)


async def put_dkim(request: web.Request) -> web.Response:
    body = await _body(request, ("selector", "private_key_pem"))
    resp = await _stub(request).PutDkimKey(
        outbound_pb2.PutDkimKeyRequest(
            domain=request.match_info["domain"][:300],
            selector=_str(body, "selector"),
            private_key_pem=_str(body, "private_key_pem"),
        ),
        metadata=await _md(request),
        timeout=30,
    )
    return gw.json_response(views.dkim_key(resp), customer_data=False)


async def delete_dkim(request: web.Request) -> web.Response:
    await _stub(request).DeleteDkimKey(
        outbound_pb2.DeleteDkimKeyRequest(domain=request.match_info["domain"][:300]),
        metadata=await _md(request),
        timeout=10,
    )
    return web.Response(status=204)


# -- automatic replies -----------------------------------------------------------------


async def get_auto_reply(request: web.Request) -> web.Response:
    resp = await _stub(request).GetAutoReply(
        outbound_pb2.GetAutoReplyRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.auto_reply(resp), customer_data=False)


def _hours(body: dict[str, Any]) -> list[outbound_pb2.BusinessHours]:
    raw = body.get("hours", [])
    if not isinstance(raw, list) or len(raw) > 50:
        raise _bad("hours must be a list of at most 50 ranges", "hours")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"weekday", "start", "end"}:
            raise _bad("each range is {weekday, start, end}", "hours")
        out.append(
            outbound_pb2.BusinessHours(
                weekday=_int(item, "weekday", 1, 7, "hours."),
                start=_str(item, "start", "hours."),
                end=_str(item, "end", "hours."),
            )
        )
    return out


async def put_auto_reply(request: web.Request) -> web.Response:
    body = await _body(request, AUTO_REPLY_FIELDS)
    resp = await _stub(request).SetAutoReply(
        outbound_pb2.AutoReplySettings(
            inbox_id=request.match_info["inbox_id"],
            enabled=_flag(body, "enabled"),
            mode=_str(body, "mode") or "outside_hours",
            hours=_hours(body),
            time_zone=_str(body, "time_zone") or "UTC",
            template_id=_str(body, "template_id"),
            period_hours=_int(body, "period_hours", 1, 720) if "period_hours" in body else 24,
            form_template_id=_str(body, "form_template_id"),
        ),
        metadata=await _md(request),
        timeout=15,
    )
    return gw.json_response(views.auto_reply(resp), customer_data=False)


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
