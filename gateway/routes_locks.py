"""Reply-lock routes (TKT-3): acquire, renew, release, take over and read the "X is
replying" lock of a ticket. Documented in openapi.yaml; the tickets service does the work."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import events_pb2, tickets_pb2

from . import app as gw
from . import views
from .errors import ApiError

FENCE_MAX = 2**63 - 1
BASE = "/api/v1/tickets/{ticket_id}/lock"


def _fence_of(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= FENCE_MAX:
        raise ApiError(400, "invalid_argument", "fence must be a positive whole number", "fence")
    return value


async def _fence(request: web.Request, *, query_allowed: bool = False) -> int:
    """The fence the caller holds: `{"fence": n}` in the body, or `?fence=n` (DELETE)."""
    if query_allowed and "fence" in request.query:
        return _fence_of(request.query["fence"])
    if not request.body_exists:
        raise ApiError(400, "invalid_argument", "fence is required", "fence")
    body = await gw._json_body(request)
    if "fence" not in body:
        raise ApiError(400, "invalid_argument", "fence is required", "fence")
    return _fence_of(body["fence"])


def locked_response(lock: events_pb2.ReplyLock) -> web.Response:
    """409: someone else is replying; the body names them."""
    body = {
        "error": {
            "code": "locked",
            "message": f"{lock.holder.display_name or 'another operator'} is replying",
            "holder": views.operator(lock.holder),
        }
    }
    return gw.json_response(body, status=409)


def _request(request: web.Request, fence: int = 0) -> tickets_pb2.ReplyLockRequest:
    return tickets_pb2.ReplyLockRequest(ticket_id=request.match_info["ticket_id"], fence=fence)


async def acquire_lock(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.AcquireReplyLock(
        _request(request), metadata=gw._md(caller, request), timeout=10
    )
    if not resp.acquired:
        return locked_response(resp.lock)
    return gw.json_response(views.lock(resp.lock))


async def renew_lock(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    fence = await _fence(request)
    resp = await request.app[gw.DEPS].tickets.RenewReplyLock(
        _request(request, fence), metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response(views.lock(resp))


async def release_lock(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    fence = await _fence(request, query_allowed=True)
    resp = await request.app[gw.DEPS].tickets.ReleaseReplyLock(
        _request(request, fence), metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response({"released": resp.released})


async def take_over_lock(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.TakeOverReplyLock(
        _request(request), metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response(views.lock(resp))


async def get_lock(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.GetReplyLock(
        _request(request), metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response(views.lock(resp))


def add_routes(app: web.Application) -> None:
    app.router.add_post(BASE, acquire_lock)
    app.router.add_get(BASE, get_lock)
    app.router.add_delete(BASE, release_lock)
    app.router.add_post(f"{BASE}/renew", renew_lock)
    app.router.add_post(f"{BASE}/takeover", take_over_lock)
