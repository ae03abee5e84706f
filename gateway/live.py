"""The live WebSocket: ticket events pushed to the operators of the event's tenant, and
notifications (assigned, mentioned) pushed only to the sockets of the operator concerned.

Every gateway replica subscribes to `sb.tickets.>` with a plain NATS subscription (a push
is a courtesy: a client that reconnects re-reads the list). Each client has a bounded
queue; a client too slow to keep up is closed (1013) and re-syncs when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

from aiohttp import WSCloseCode, web
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from switchboard.v1 import events_pb2

from services.runtime import log
from services.runtime import metrics as m

from . import masking, views
from .auth import WS_PROTOCOL, Caller

QUEUE_MAX = 256


class _Client:
    def __init__(self, ws: web.WebSocketResponse, caller: Caller) -> None:
        self.ws = ws
        self.caller = caller
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_MAX)

    async def writer(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            await self.ws.send_str(item)


class _Texts:
    """One push, serialised once as it is and once masked, as the clients need."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._plain: str | None = None
        self._masked: dict[frozenset[str], str] = {}  # by the tenant's own addresses

    def for_(self, caller: Caller) -> str:
        if caller.sees_addresses:
            if self._plain is None:
                self._plain = json.dumps(self._body, ensure_ascii=False)
            return self._plain
        keep = caller.tenant_addresses
        if keep not in self._masked:
            self._masked[keep] = json.dumps(masking.mask(self._body, keep=keep), ensure_ascii=False)
        return self._masked[keep]


class LiveHub:
    def __init__(self, metrics: m.Metrics) -> None:
        self._clients: dict[str, set[_Client]] = defaultdict(set)
        self._sub: Subscription | None = None
        self._templates: Subscription | None = None
        self._sends: Subscription | None = None
        self._closing: set[asyncio.Task[Any]] = set()
        self._log = log.get("gateway.live")
        metrics.gauge(m.WEBSOCKET_CLIENTS).set_function(lambda: self.client_count)
        self._slow_closed = metrics.counter(m.WEBSOCKET_SLOW)

    @property
    def client_count(self) -> int:
        return sum(len(c) for c in self._clients.values())

    async def start(self, nc: NatsClient) -> None:
        self._sub = await nc.subscribe("sb.tickets.>", cb=self._on_msg)
        self._templates = await nc.subscribe("sb.compose.template.changed", cb=self._on_msg)
        self._sends = await nc.subscribe("sb.outbound.send.changed", cb=self._on_msg)

    async def stop(self) -> None:
        for sub in (self._sub, self._templates, self._sends):
            if sub is not None:
                await sub.unsubscribe()
        for clients in list(self._clients.values()):
            for client in list(clients):
                await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _on_msg(self, msg: Msg) -> None:
        env = events_pb2.EventEnvelope()
        try:
            env.ParseFromString(msg.data)
        except DecodeError:
            self._log.warning("undecodable event", subject=msg.subject)
            return
        self.publish(env)

    def publish(self, env: events_pb2.EventEnvelope) -> None:
        """An event to every socket of the tenant whose operator may see its inbox (SEC-5),
        masked for those who may not see customers' addresses (SEC-6)."""
        clients = self._clients.get(env.tenant_id)
        if not clients:
            return
        if env.WhichOneof("payload") == "template_changed":  # open editors refresh it
            scope = list(env.template_changed.inbox_ids)
            text = json.dumps(views.template_event(env), ensure_ascii=False)
            for client in list(clients):
                if not scope or any(client.caller.sees_inbox(i) for i in scope):
                    self._offer(clients, client, text)
            return
        inbox_id = views.event_inbox(env)
        allowed = [c for c in clients if inbox_id is None or c.caller.sees_inbox(inbox_id)]
        body = views.event(env)
        if body is not None:
            texts = _Texts(body)
            for client in allowed:
                self._offer(clients, client, texts.for_(client.caller))
        left = views.ticket_left(env)
        if left is not None:  # a transfer: those who saw it only in its old inbox drop it
            text = json.dumps(left, ensure_ascii=False)
            old = left["inbox_id"]
            for client in [c for c in clients if c not in allowed and c.caller.sees_inbox(old)]:
                self._offer(clients, client, text)
        # the assignee / mentioned operators: only their own sockets (any number of tabs)
        for operator_id, note in views.notifications(env):
            texts = _Texts(note)
            for client in [c for c in allowed if c.caller.operator_id == operator_id]:
                self._offer(clients, client, texts.for_(client.caller))

    def _offer(self, clients: set[_Client], client: _Client, text: str) -> None:
        """Queue a message for a client; a client whose queue is full is closed."""
        if client not in clients:
            return  # closed as too slow a moment ago
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._log.warning("slow live client closed", operator_id=client.caller.operator_id)
            self._slow_closed.inc()
            clients.discard(client)
            task = asyncio.get_running_loop().create_task(
                client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def serve(self, request: web.Request, caller: Caller) -> web.WebSocketResponse:
        # A browser offers ("switchboard.v1", "bearer.<token>"); we answer the first only.
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024, protocols=(WS_PROTOCOL,))
        await ws.prepare(request)
        client = _Client(ws, caller)
        self._clients[caller.tenant_id].add(client)
        writer = asyncio.create_task(client.writer())
        hello: dict[str, Any] = {"type": "hello", "operator": caller.to_json()}
        await client.queue.put(json.dumps(hello, ensure_ascii=False))
        try:
            async for _ in ws:  # the client sends nothing we act on yet; read to see close
                pass
        finally:
            self._clients[caller.tenant_id].discard(client)
            if not self._clients[caller.tenant_id]:
                del self._clients[caller.tenant_id]
            if client.queue.full():
                writer.cancel()  # it is stuck behind a full queue: no goodbye to wait for
            else:
                client.queue.put_nowait(None)
            try:
                await writer
            except (asyncio.CancelledError, ConnectionError, RuntimeError):
                pass
        return ws
