"""Reply-lock routes (TKT-3): acquire, renew, release, take over and read the "X is
replying" lock of a ticket. Documented in openapi.yaml; the tickets service does the work."""

from __future__ import annotations

from aiohttp import web
from switchboard.v1 import events_pb2, tickets_pb2

from . import views
from .request import FENCE_MAX, bad, deps, json_body, metadata, optional_body, query_int
from .responses import json_response

BASE = "/api/v1/tickets/{ticket_id}/lock"


async def _fence(request: web.Request) -> int:
    """The fence the caller holds: `{"fence": n}` in the body (its schema: LockFence)."""
    body = await json_body(request)
    return int(body["fence"])


async def _release_fence(request: web.Request) -> int:
    """DELETE: the fence as `?fence=n`, or in the body."""
    fence = query_int(request, "fence", low=1, high=FENCE_MAX)
    body = None if fence else await optional_body(request)
    if body is not None:
        fence = int(body["fence"])
    if not fence:
        raise bad("fence is required", "fence")
    return fence


def locked_response(lock: events_pb2.ReplyLock) -> web.Response:
    """409: someone else is replying; the body names them."""
    body = {
        "error": {
            "code": "locked",
            "message": f"{lock.holder.display_name or 'another operator'} is replying",
            "holder": views.operator(lock.holder),
        }
    }
    return json_response(body, status=409)


def _request(request: web.Request, fence: int = 0) -> tickets_pb2.ReplyLockRequest:
    return tickets_pb2.ReplyLockRequest(ticket_id=request.match_info["ticket_id"], fence=fence)


async def acquire_lock(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.AcquireReplyLock(
        _request(request), metadata=metadata(request), timeout=10
    )
    if not resp.acquired:
        return locked_response(resp.lock)
    return json_response(views.lock(resp.lock))


async def renew_lock(request: web.Request) -> web.Response:
    fence = await _fence(request)
    resp = await deps(request).tickets.RenewReplyLock(
        _request(request, fence), metadata=metadata(request), timeout=10
    )
    return json_response(views.lock(resp))


async def release_lock(request: web.Request) -> web.Response:
    fence = await _release_fence(request)
    resp = await deps(request).tickets.ReleaseReplyLock(
        _request(request, fence), metadata=metadata(request), timeout=10
    )
    return json_response({"released": resp.released})


async def take_over_lock(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.TakeOverReplyLock(
        _request(request), metadata=metadata(request), timeout=10
    )
    return json_response(views.lock(resp))


async def get_lock(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetReplyLock(
        _request(request), metadata=metadata(request), timeout=10
    )
    return json_response(views.lock(resp))


def add_routes(app: web.Application) -> None:
    app.router.add_post(BASE, acquire_lock)
    app.router.add_get(BASE, get_lock)
    app.router.add_delete(BASE, release_lock)
    app.router.add_post(f"{BASE}/renew", renew_lock)
    app.router.add_post(f"{BASE}/takeover", take_over_lock)
