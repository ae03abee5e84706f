"""The gateway's own routes: health (livez, readyz, healthz), the OpenAPI document as
YAML and JSON, and the live WebSocket (gateway/live.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from services.runtime import grpc_client

from .access import RULE
from .deps import BACKENDS, OPENAPI
from .request import caller, deps
from .responses import json_response


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    d = deps(request)
    checks = {"nats": d.bus.connected}
    try:
        checks["redis"] = bool(await asyncio.wait_for(d.redis.ping(), 2))
    except (aioredis.RedisError, OSError, TimeoutError):
        checks["redis"] = False
    ok = all(checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def healthz(request: web.Request) -> web.Response:
    """200 when every backend service reports SERVING; 503 naming the ones that do not."""
    d = deps(request)
    statuses = await asyncio.gather(*(grpc_client.check_health(d.channels[n]) for n in BACKENDS))
    services = dict(zip(BACKENDS, statuses, strict=True))
    failing = sorted(n for n, s in services.items() if s != "SERVING")
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "services": services}
    if failing:
        body["failing"] = failing
    return json_response(body, status=200 if not failing else 503)


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/yaml"})


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(deps(request).spec, customer_data=False)


async def live(request: web.Request) -> web.StreamResponse:
    """The socket's caller is checked again, by the same rules, whenever accounts announces
    a change of their access (gateway/live.py)."""
    d = deps(request)
    rule = request[RULE]
    return await d.live.serve(
        request, caller(request), lambda: d.access.authenticate(request, rule)
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/livez", livez)
    r.add_get("/readyz", readyz)
    r.add_get("/healthz", healthz)
    r.add_get("/api/v1/openapi.yaml", openapi)
    r.add_get("/api/v1/openapi.json", openapi_json)
    r.add_get("/api/v1/live", live)
