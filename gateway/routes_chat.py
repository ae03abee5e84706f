"""The web chat, visitor side (issue 21, ING-6): the widget's script, the visitor's
WebSocket and a demo page. Public (no login): the widget's key names the channel, the
visitor token (ingestion's, kept by the widget) the conversation.

- `GET /widget/{public_key}.js` — the widget (gateway/widget/chat.js) with the widget's
  look (colour, greetings, position, offline form) in front; cacheable for a minute; no
  request to anyone but this gateway.
- `GET /chat/{public_key}/ws` — the visitor's socket. Its `Origin` must be one of the
  widget's allowed origins (403 before the upgrade otherwise). Protocol (JSON, described
  in openapi.yaml): the client's first message is `open`; then `send` (with the client's
  key: a resend is one message), `typing`, `contact`, `end`, `history`.
- `GET /widget-demo/{public_key}` — a visitor page embedding the widget (`make run`).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from pathlib import Path
from typing import Any

import grpc
from aiohttp import WSMsgType, web
from switchboard.v1 import ingestion_channels_pb2 as pb
from switchboard.v1 import ingestion_channels_pb2_grpc
from switchboard.v1 import routing_assign_pb2 as rpb

from services.runtime.identity import Identity

from .access import CLIENT
from .chat_hub import ChatHub, VisitorSocket, line_json
from .deps import DEPS, Deps
from .errors import ApiError, from_grpc
from .request import over_rate
from .views import iso

WIDGET_JS = Path(__file__).resolve().parent / "widget" / "chat.js"
WIDGET_TTL_S = 5.0  # a widget's settings and its inbox's presence, cached this long
OPEN_WAIT_S = 10.0  # the client's `open` must come this soon
MSG_MAX = 16 * 1024
TYPING_EVERY_S = 2.0
CHAT = web.AppKey("chat_hub", ChatHub)
DEMO_CSP = (
    "default-src 'none'; script-src {base}; style-src 'unsafe-inline'; "
    "connect-src {base} {ws}; img-src data:; base-uri 'none'; form-action 'none'"
)


class Widgets:
    """GetWidget and the inbox's presence, cached a few seconds per key (every visitor's
    socket asks)."""

    def __init__(self, d: Deps) -> None:
        self._chat = ingestion_channels_pb2_grpc.ChatServiceStub(d.channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]
        self._assignment = d.assignment
        self._widgets: dict[str, tuple[float, pb.Widget]] = {}
        self._online: dict[str, tuple[float, bool]] = {}

    @property
    def chat(self) -> Any:
        return self._chat

    async def get(self, public_key: str) -> pb.Widget:
        hit = self._widgets.get(public_key)
        if hit is not None and time.monotonic() - hit[0] < WIDGET_TTL_S:
            return hit[1]
        try:
            widget: pb.Widget = await self._chat.GetWidget(
                pb.GetWidgetRequest(public_key=public_key), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            raise from_grpc(exc) from None
        if len(self._widgets) > 10_000:
            self._widgets.clear()
        self._widgets[public_key] = (time.monotonic(), widget)
        return widget

    async def online(self, tenant_id: str, inbox_id: str, *, fresh: bool = False) -> bool:
        """Whether an operator of the inbox is present (routing's presence)."""
        hit = self._online.get(inbox_id)
        if not fresh and hit is not None and time.monotonic() - hit[0] < WIDGET_TTL_S:
            return hit[1]
        try:
            resp = await self._assignment.ListPresence(
                rpb.ListPresenceRequest(inbox_id=inbox_id),
                metadata=Identity(tenant_id=tenant_id).metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError:
            return False  # unknown: the visitor gets the form, never a chat nobody reads
        online = any(o.effective == rpb.PRESENCE_STATUS_ONLINE for o in resp.operators)
        if len(self._online) > 10_000:
            self._online.clear()
        self._online[inbox_id] = (time.monotonic(), online)
        return online


WIDGETS = web.AppKey("chat_widgets", Widgets)


def _widgets(request: web.Request) -> Widgets:
    return request.app[WIDGETS]


def _js_config(widget: pb.Widget) -> str:
    s = widget.settings
    config = {
        "key": widget.public_key,
        "title": widget.inbox_name,
        "colour": s.colour or "#0b57d0",
        "greeting": {"ja": s.greeting_ja, "en": s.greeting_en},
        "position": "left" if s.position == "left" else "right",
        "form": s.offline_form_id or "",
    }
    return json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")


async def widget_script(request: web.Request) -> web.StreamResponse:
    key = request.match_info["public_key"]
    widget = await _widgets(request).get(key)
    body = f"window.__sbChat=window.__sbChat||[];window.__sbChat.push({_js_config(widget)});\n"
    body += WIDGET_JS.read_text(encoding="utf-8")
    headers = {
        "Cache-Control": "public, max-age=60",
        "Vary": "Origin",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    origin = request.headers.get("Origin")
    if origin and origin in widget.settings.allowed_origins:
        headers["Access-Control-Allow-Origin"] = origin
    resp = web.Response(text=body, content_type="text/javascript", charset="utf-8", headers=headers)
    resp.enable_compression()
    return resp


async def demo_page(request: web.Request) -> web.StreamResponse:
    key = request.match_info["public_key"]
    await _widgets(request).get(key)  # 404 for a key that is not a widget's
    base = f"{request.scheme}://{request.host}"
    ws = ("wss" if request.scheme == "https" else "ws") + f"://{request.host}"
    src = html.escape(f"{base}/widget/{key}.js", quote=True)
    lang = "ja" if request.headers.get("Accept-Language", "").lower().startswith("ja") else "en"
    page = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Switchboard chat demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem; max-width: 40rem">
<h1>Example shop</h1>
<p>A visitor's page with the Switchboard chat widget: the button at the bottom corner
opens the chat. Its origin must be among the widget's allowed origins.</p>
<script src="{src}" async></script>
</body></html>"""
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": DEMO_CSP.format(base=base, ws=ws),
            "Cache-Control": "no-store",
        },
    )


def _error(code: str, message: str, field: str | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "field": field, **more}


def _grpc_error(exc: grpc.aio.AioRpcError, **more: Any) -> dict[str, Any]:
    err = from_grpc(exc)
    extra = {"retry_after": err.retry_after_s} if err.retry_after_s else {}
    return _error(err.code, err.message, err.field, **more, **extra)


def _line(m: pb.ChatMessage) -> dict[str, Any]:
    return line_json(m.seq, m.direction, m.text, m.author_name, m.key, iso(m.created_at))


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


class _Session:
    """One visitor socket's conversation with ChatService."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, widget: pb.Widget) -> None:
        self.request = request
        self.ws = ws
        self.widget = widget
        self.hub = request.app[CHAT]
        self.widgets = _widgets(request)
        self.client = request[CLIENT] or ""
        self.token = ""
        self.sock: VisitorSocket | None = None
        self.writer: asyncio.Task[None] | None = None
        self.typing_at = 0.0

    async def open(self, msg: dict[str, Any]) -> None:
        key = self.widget.public_key
        try:
            opened: pb.OpenChatResponse = await self.widgets.chat.OpenChat(
                pb.OpenChatRequest(
                    public_key=key,
                    visitor_token=_text(msg.get("token"), 400),
                    name=_text(msg.get("name"), 200),
                    email=_text(msg.get("email"), 300),
                    language=_text(msg.get("language"), 8),
                    origin=self.request.headers.get("Origin", ""),
                    client_address=self.client,
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            await self.ws.send_json(_grpc_error(exc))
            await self.ws.close()
            return
        conv = opened.conversation
        self.token = opened.visitor_token
        sock = VisitorSocket(
            self.ws,
            self.widget.tenant_id,
            conv.inbox_id,
            conv.id,
            conv.ticket_id,
            conv.sender_name,
        )
        self.sock = sock
        # the writer first: the history may be longer than the socket's queue
        self.writer = asyncio.create_task(sock.writer())
        self.hub.join(sock)  # pushes are held from now until the history is out
        online = await self.widgets.online(self.widget.tenant_id, conv.inbox_id)
        sock.online = online
        self.hub.send(
            sock,
            {
                "type": "ready",
                "token": opened.visitor_token,
                "conversation_id": conv.id,
                "last_seq": conv.last_seq,
                "online": online,
                "email": bool(conv.email),
                "name": conv.sender_name,
            },
        )
        after = msg.get("after_seq")
        await self.history(after if isinstance(after, int) and after >= 0 else 0)
        await self.hub.note(sock, "online")

    async def history(self, after_seq: int) -> None:
        sock = self.sock
        assert sock is not None
        sock.ready = False
        sock.last_seq = after_seq
        after = after_seq
        while True:
            try:
                resp = await self.widgets.chat.ChatHistory(
                    pb.ChatHistoryRequest(visitor_token=self.token, after_seq=after, limit=500),
                    timeout=10,
                )
            except grpc.aio.AioRpcError as exc:
                self.hub.send(sock, _grpc_error(exc))
                break
            for m in resp.messages:
                await self.hub.send_in_turn(sock, _line(m))
                sock.last_seq = max(sock.last_seq, m.seq)
            if len(resp.messages) < 500:
                break
            after = resp.messages[-1].seq
        self.hub.release(sock)

    async def said(self, msg: dict[str, Any]) -> None:
        sock = self.sock
        assert sock is not None
        kind = msg.get("type")
        chat = self.widgets.chat
        try:
            if kind == "send":
                key = _text(msg.get("key"), 200)
                resp: pb.SendChatResponse = await chat.SendChat(
                    pb.SendChatRequest(
                        visitor_token=self.token,
                        key=key,
                        text=_text(msg.get("text"), MSG_MAX),
                        client_address=self.client,
                    ),
                    timeout=15,
                )
                self.hub.send(
                    sock,
                    {
                        "type": "ack",
                        "key": key,
                        "seq": resp.message.seq,
                        "duplicate": resp.duplicate,
                    },
                )
                self.hub.push_line(sock, _line(resp.message))
                self.typing_at = 0.0
            elif kind == "typing":
                typing = msg.get("typing") is True
                now = time.monotonic()
                if not typing or now - self.typing_at >= TYPING_EVERY_S:
                    self.typing_at = now if typing else 0.0
                    await self.hub.note(sock, "typing" if typing else "idle")
            elif kind == "contact":
                conv = await chat.SetChatContact(
                    pb.SetChatContactRequest(
                        visitor_token=self.token,
                        name=_text(msg.get("name"), 200),
                        email=_text(msg.get("email"), 300),
                    ),
                    timeout=10,
                )
                sock.name = conv.sender_name
                self.hub.send(
                    sock, {"type": "contact", "name": conv.sender_name, "email": bool(conv.email)}
                )
            elif kind == "end":
                await chat.EndChat(pb.EndChatRequest(visitor_token=self.token), timeout=10)
                self.hub.send(sock, {"type": "ended"})
            elif kind == "history":
                after = msg.get("after_seq")
                await self.history(after if isinstance(after, int) and after >= 0 else 0)
            else:
                self.hub.send(sock, _error("invalid_argument", "unknown message type", "type"))
        except grpc.aio.AioRpcError as exc:
            key_of = {"key": _text(msg.get("key"), 200)} if kind == "send" else {}
            self.hub.send(sock, _grpc_error(exc, **key_of))


async def chat_socket(request: web.Request) -> web.StreamResponse:
    key = request.match_info["public_key"]
    widget = await _widgets(request).get(key)
    origin = request.headers.get("Origin", "")
    if origin not in widget.settings.allowed_origins:
        raise ApiError(
            403, "permission_denied", "this site may not open the chat (allowed origins)", "origin"
        )
    rate_key = f"sb:gw:chat-socket-rate:{request[CLIENT] or 'unknown'}"
    if await over_rate(request, rate_key, request.app[DEPS].settings.chat_socket_rate_per_minute):
        raise ApiError(429, "resource_exhausted", "too many chat connections; try again soon")
    ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=MSG_MAX)
    await ws.prepare(request)
    session = _Session(request, ws, widget)
    hub = request.app[CHAT]
    try:
        first = await ws.receive(timeout=OPEN_WAIT_S)
        msg = _json(first.data) if first.type == WSMsgType.TEXT else None
        if msg is None or msg.get("type") != "open":
            await ws.send_json(_error("invalid_argument", "the first message is open", "type"))
            await ws.close()
            return ws
        await session.open(msg)
        if session.sock is None:
            return ws
        async for raw in ws:
            if raw.type != WSMsgType.TEXT:
                continue
            said = _json(raw.data)
            if said is None:
                hub.send(session.sock, _error("invalid_argument", "not a JSON object", "type"))
                continue
            await session.said(said)
    except TimeoutError:
        await ws.close()
    finally:
        sock = session.sock
        if sock is not None:
            hub.leave(sock)
            if not hub.others_present(sock):
                await hub.note(sock, "offline")
            writer = session.writer
            if writer is not None:
                if sock.queue.full():
                    writer.cancel()
                else:
                    sock.queue.put_nowait(None)
                try:
                    await writer
                except (asyncio.CancelledError, ConnectionError, RuntimeError):
                    pass
    return ws


def _json(text: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def add_routes(app: web.Application) -> None:
    hub = ChatHub(app[DEPS].settings.chat_presence_recheck_s)
    app[CHAT] = hub
    widgets = app[WIDGETS] = Widgets(app[DEPS])

    async def presence(tenant_id: str, inbox_id: str) -> bool:
        return await widgets.online(tenant_id, inbox_id, fresh=True)

    hub.presence = presence

    async def start(app: web.Application) -> None:
        # after the gateway's lifecycle connected the bus (on_startup runs after it)
        await hub.start(app[DEPS].bus.nc)

    async def stop(app: web.Application) -> None:
        await hub.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.router.add_get("/widget/{public_key}.js", widget_script)
    app.router.add_get("/chat/{public_key}/ws", chat_socket)
    app.router.add_get("/widget-demo/{public_key}", demo_page)
