"""A tenant's customer system for the customer-data lookup tests (issue 21): a real
aiohttp server on 127.0.0.1 answering JSON per e-mail address and, on other paths, the
ways such a system fails — slowly, with a 500, with text that is not JSON, with too much,
with a redirect to another host. It counts the requests per path and address."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp import web

from services.devstack.infra import free_port

SLOW_S = 8.0  # longer than any lookup's timeout
LATE_S = 1.0  # slow, but within the tests' timeouts


class LookupPeer:
    def __init__(self) -> None:
        self.port = free_port()
        self.hits: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        # e-mail address → the customer record answered
        self.customers: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def start(self) -> LookupPeer:
        app = web.Application()
        app.router.add_get("/customers", self._customers)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/late", self._late)
        app.router.add_get("/fail", self._fail)
        app.router.add_get("/badjson", self._badjson)
        app.router.add_get("/html", self._html)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/hop", self._hop)
        app.router.add_get("/away", self._away)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _count(self, request: web.Request) -> None:
        self.hits[f"{request.path}?{request.query.get('email', '')}"] += 1
        self.hits[request.path] += 1
        self.headers.append(dict(request.headers))

    async def _customers(self, request: web.Request) -> web.Response:
        self._count(request)
        email = request.query.get("email", "")
        record = self.customers.get(email)
        if record is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(record)

    async def _late(self, request: web.Request) -> web.Response:
        """The customer record, after LATE_S."""
        await asyncio.sleep(LATE_S)
        return await self._customers(request)

    async def _slow(self, request: web.Request) -> web.Response:
        self._count(request)
        await asyncio.sleep(SLOW_S)
        return web.json_response({"customer": {"rank": "late"}})

    async def _fail(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response({"error": "boom"}, status=500)

    async def _badjson(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(text="{not json", content_type="application/json")

    async def _html(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(text="<html>login</html>", content_type="text/html")

    async def _huge(self, request: web.Request) -> web.Response:
        self._count(request)
        body = json.dumps({"customer": {"notes": "x" * (300 * 1024)}})
        return web.Response(text=body, content_type="application/json")

    async def _hop(self, request: web.Request) -> web.Response:
        """A redirect on the same host to the customer record."""
        self._count(request)
        raise web.HTTPFound(f"/customers?{request.query_string}")

    async def _away(self, request: web.Request) -> web.Response:
        """A redirect to another host (the same server under another name)."""
        self._count(request)
        raise web.HTTPFound(f"http://localhost:{self.port}/customers?{request.query_string}")
