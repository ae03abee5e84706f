"""A web chat visitor as the widget is one (issue 21): its socket to the gateway, for the
end-to-end tests and the chat benchmark."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from services.devstack.infra import free_port


class Visitor:
    def __init__(self, gateway_url: str, public_key: str, origin: str) -> None:
        self.url = gateway_url.replace("http", "ws", 1) + f"/chat/{public_key}/ws"
        self.origin = origin
        self.token = ""
        self.conversation_id = ""
        self.ready: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.perf_counter() of each frame
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._new = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def connect(
        self, *, after_seq: int = 0, language: str = "en", client: str = "", **fields: str
    ) -> dict[str, Any]:
        """Opens the socket and the chat; the `ready` frame."""
        self._http = self._http or aiohttp.ClientSession()
        headers = {"Origin": self.origin}
        if client:
            headers["X-Forwarded-For"] = client
        self._ws = await self._http.ws_connect(self.url, headers=headers, heartbeat=30)
        self.frames = []
        self.arrived = []
        self._reader = asyncio.create_task(self._read(self._ws))
        opening = {"type": "open", "token": self.token, "language": language}
        await self._ws.send_json({**opening, "after_seq": after_seq, **fields})
        self.ready = await self.wait("ready")
        self.token = self.ready["token"]
        self.conversation_id = self.ready["conversation_id"]
        return self.ready

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            async with self._new:
                self.arrived.append(time.perf_counter())
                self.frames.append(json.loads(msg.data))
                self._new.notify_all()

    async def wait(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """The first frame of this type (and these values) received on this socket."""

        def found() -> dict[str, Any] | None:
            return next(
                (
                    f
                    for f in self.frames
                    if f.get("type") == kind and all(f.get(k) == v for k, v in match.items())
                ),
                None,
            )

        async with self._new:
            await asyncio.wait_for(self._new.wait_for(found), timeout)
        got = found()
        assert got is not None
        return got

    def messages(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == "message"]

    async def say(self, text: str, key: str = "") -> str:
        """Sends a message; its key."""
        key = key or f"k-{uuid.uuid4().hex}"
        assert self._ws is not None
        await self._ws.send_json({"type": "send", "key": key, "text": text})
        return key

    async def send(self, frame: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_json(frame)

    async def drop(self) -> None:
        """The network goes away (the socket closes; the visitor keeps the token)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def close(self) -> None:
        await self.drop()
        if self._http is not None:
            await self._http.close()
            self._http = None


@asynccontextmanager
async def visitor_site(gateway_url: str, lang: str = "en") -> AsyncIterator[tuple[str, list[str]]]:
    """A customer's site on an origin of its own: (its origin, the widget keys its page
    embeds — filled in before a page is opened). `/?bare=1` is the page without them."""
    keys: list[str] = []
    port = free_port()

    async def page(request: web.Request) -> web.Response:
        scripts = (
            ""
            if "bare" in request.query
            else "".join(f'<script src="{gateway_url}/widget/{k}.js" async></script>' for k in keys)
        )
        return web.Response(
            text=f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>Shop</title></head><body><h1>Shop</h1>{scripts}</body></html>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        await runner.cleanup()
