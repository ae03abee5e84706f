"""The live WebSocket: ticket and approval events pushed to the operators of the event's
tenant who see its inbox, and notifications (assigned, mentioned; an approval to decide
or decided; a routing rule's notify action) pushed only to the sockets of the operator
concerned.

Every gateway replica follows the subjects of `registry.GATEWAY.subscriptions` with plain
NATS subscriptions (a push is a courtesy: a client that reconnects re-reads the list).
Each client has a bounded queue; a client too slow to keep up is closed (1013) and
re-syncs when it reconnects.

A socket's caller is not fixed when it opens (SEC-9): accounts announces every session
that ends (`session.ended`: its sockets are closed with 4401) and every change of who may
see what (`access.changed`: the sockets of those operators get no push until they are
re-authorised through the access rules, then carry on with the new caller — told with an
`access.changed` message — or are closed with 4401 or 4403). Each announcement also drops
the cached sessions it concerns. Besides, a socket is closed when its session expires and
re-checked at once when the replica's NATS connection comes back (an announcement
published meanwhile never reaches it) and every `recheck_s`. Nothing of this costs a push anything.

A client may send JSON messages: `subscribe` / `unsubscribe` to the live reports (issue 19,
gateway/live_reports.py, plugged in as `topics`) and `chat.typing` while replying to a
chat (issue 21, gateway/live_chat.py, plugged in as `chat`, which also shapes the
channels' events and the web chat's `sb.live.chat` for operators); anything else is
answered with an `error` message and the socket stays open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from switchboard.v1 import events_pb2

from services.runtime import log, registry
from services.runtime import metrics as m

from . import masking, views, views_approval, views_compose, views_rules
from .auth import WS_PROTOCOL, Caller, SessionResolver
from .errors import ApiError
from .live_chat import CHANNEL_PAYLOADS, LIVE_CHAT, Audience, LiveChat, administrators_only


def refusal(topic: str | None, code: str, message: str, field: str | None) -> dict[str, Any]:
    """What a socket is told when its message is refused (it stays open)."""
    return {
        "type": "error",
        "topic": topic,
        "error": {"code": code, "message": message, "field": field},
    }


QUEUE_MAX = 256
CLOSE_SESSION_ENDED = 4401  # logout, revoked, expired, operator deactivated, password changed
CLOSE_ACCESS_DENIED = 4403  # re-authorised after a change: this caller may no longer have it
TICK_S = 5.0  # how often expiry and due re-authorisations are looked for
RECENT_S = 30.0  # a socket opening this soon after a change of its operator is re-checked
REAUTH_AT_ONCE = 8  # re-authorisations running at the same time

Reauthorise = Callable[[], Awaitable[Caller]]  # the access rules again, for the socket


class Topics(Protocol):
    """What a socket may ask for by sending a message (`{"type": "subscribe", "topic"}`:
    the live reports, gateway/live_reports.py)."""

    def said(self, client: LiveClient, message: dict[str, Any]) -> None: ...

    def gone(self, client: LiveClient) -> None: ...


class LiveClient:
    def __init__(self, ws: web.WebSocketResponse, caller: Caller, reauth: Reauthorise) -> None:
        self.ws = ws
        self.caller = caller
        self.reauth = reauth
        self.suspended = False  # its access changed: no push until it is re-authorised
        self.generation = 0  # of its access: a re-check begun before a change is void
        self.checked_at = time.monotonic()
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
    def __init__(
        self, metrics: m.Metrics, sessions: SessionResolver, recheck_s: float = 60.0
    ) -> None:
        self._clients: dict[str, set[LiveClient]] = defaultdict(set)
        self._sessions = sessions
        self._recheck_s = recheck_s
        self._subs: list[Subscription] = []
        self._ticker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[Any]] = set()
        self._reauth_slots = asyncio.Semaphore(REAUTH_AT_ONCE)
        # when (monotonic) the access of an operator, or of a whole tenant, last changed
        self._changed: dict[str, float] = {}
        self._log = log.get("gateway.live")
        metrics.gauge(m.WEBSOCKET_CLIENTS).set_function(lambda: self.client_count)
        self._slow_closed = metrics.counter(m.WEBSOCKET_SLOW)
        self.topics: Topics | None = None  # set by gateway/live_reports.py
        self.chat: LiveChat | None = None  # set by gateway/deps.py

    def send(self, client: LiveClient, body: dict[str, Any]) -> None:
        """A message for one socket (holding no customer data: never masked)."""
        clients = self._clients.get(client.caller.tenant_id)
        if clients is not None:
            self._offer(clients, client, json.dumps(body, ensure_ascii=False))

    @property
    def client_count(self) -> int:
        return sum(len(c) for c in self._clients.values())

    async def start(self, nc: NatsClient) -> None:
        if self.chat is not None:
            self.chat.connected(nc)
        for subject in registry.GATEWAY.subscriptions:
            self._subs.append(await nc.subscribe(subject, cb=self._on_msg))
        self._ticker = asyncio.create_task(self._tick(), name="live-ticker")

    async def bus_state(self, connected: bool) -> None:
        """Announcements published while this replica was cut off from NATS are lost to
        it (its subscriptions are not durable): on a reconnect every socket is re-checked
        at once instead of at its next routine re-check."""
        if not connected:
            return
        now = time.monotonic()
        for clients in list(self._clients.values()):
            for client in list(clients):
                client.checked_at = now
                self._spawn(self._reauthorise(client, after_change=False))
        self._log.info("live clients re-checked after a nats reconnect", clients=self.client_count)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for sub in self._subs:
            await sub.unsubscribe()
        for clients in list(self._clients.values()):
            for client in list(clients):
                await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _on_msg(self, msg: Msg) -> None:
        if msg.subject == LIVE_CHAT:  # JSON between replicas, not an event
            if self.chat is not None:
                self._push(self.chat.visitor(msg.data))
            return
        env = events_pb2.EventEnvelope()
        try:
            env.ParseFromString(msg.data)
        except DecodeError:
            self._log.warning("undecodable event", subject=msg.subject)
            return
        kind = env.WhichOneof("payload")
        if kind == "session_ended":
            await self.sessions_ended(env)
        elif kind == "access_changed":
            await self.access_changed(env)
        elif kind in CHANNEL_PAYLOADS:
            if self.chat is not None:
                self._push(await self.chat.audience(env))
        else:
            self.publish(env)

    # -- who may still listen (SEC-9) ----------------------------------------------------

    async def sessions_ended(self, env: events_pb2.EventEnvelope) -> None:
        """Their sockets close at once; the operator's cached sessions are dropped."""
        p = env.session_ended
        ended = set(p.session_ids)
        for client in list(self._clients.get(env.tenant_id, ())):
            if client.caller.session_id in ended:
                self._close(client, CLOSE_SESSION_ENDED, "session ended")
        self._changed[p.operator_id] = time.monotonic()
        await self._sessions.invalidate(env.tenant_id, [p.operator_id])

    async def access_changed(self, env: events_pb2.EventEnvelope) -> None:
        """The sockets of those operators stop receiving at once, their cached sessions
        are dropped, and then each is re-authorised."""
        p = env.access_changed
        who = set(p.operator_ids)
        affected = [
            c
            for c in self._clients.get(env.tenant_id, ())
            if p.whole_tenant or c.caller.operator_id in who
        ]
        for client in affected:
            client.suspended = True
            client.generation += 1
        now = time.monotonic()
        for key in [f"tenant:{env.tenant_id}"] if p.whole_tenant else who:
            self._changed[key] = now
        await self._sessions.invalidate(
            env.tenant_id, list(p.operator_ids), whole_tenant=p.whole_tenant
        )
        for client in affected:
            self._spawn(self._reauthorise(client, after_change=True))

    async def _reauthorise(self, client: LiveClient, *, after_change: bool) -> None:
        """The access rules again, as when the socket opened: its new caller, or closed.
        When the check itself fails (accounts unreachable) after a change, the socket is
        closed too (the client reconnects); on a routine re-check it is kept. A suspended
        socket is told `access.changed` and receives again."""
        generation = client.generation
        async with self._reauth_slots:
            if client not in self._clients.get(client.caller.tenant_id, ()):
                return  # closed meanwhile
            try:
                caller = await client.reauth()
            except ApiError as err:
                code = CLOSE_SESSION_ENDED if err.status == 401 else CLOSE_ACCESS_DENIED
                self._close(client, code, err.code)
                return
            except Exception as exc:
                if after_change:
                    self._log.warning("live client not re-authorised", error=str(exc))
                    self._close(client, WSCloseCode.TRY_AGAIN_LATER, "try again later")
                else:
                    self._log.info("live client re-check failed", error=str(exc))
                return
        clients = self._clients.get(caller.tenant_id)
        if clients is None or client not in clients or client.generation != generation:
            return  # closed meanwhile, or changed again: that check decides
        client.checked_at = time.monotonic()
        client.caller = caller
        if client.suspended:
            client.suspended = False
            changed = {"type": "access.changed", "operator": caller.to_json()}
            self._offer(clients, client, json.dumps(changed, ensure_ascii=False))

    def _close(self, client: LiveClient, code: int, message: str) -> None:
        clients = self._clients.get(client.caller.tenant_id)
        if clients is None or client not in clients:
            return
        clients.discard(client)
        self._log.info("live client closed", code=code, reason=message)
        self._spawn(client.ws.close(code=code, message=message.encode()))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _tick(self) -> None:
        """Close expired sessions' sockets; re-check those not checked for `recheck_s`."""
        while True:
            await asyncio.sleep(TICK_S)
            now, wall = time.monotonic(), time.time()
            for clients in list(self._clients.values()):
                for client in list(clients):
                    if 0 < client.caller.expires_at <= wall:
                        self._close(client, CLOSE_SESSION_ENDED, "session expired")
                    elif not client.suspended and now - client.checked_at >= self._recheck_s:
                        client.checked_at = now
                        self._spawn(self._reauthorise(client, after_change=False))
            for key, at in list(self._changed.items()):
                if now - at > RECENT_S:
                    del self._changed[key]

    def publish(self, env: events_pb2.EventEnvelope) -> None:
        """An event to every socket of the tenant whose operator may see its inbox (SEC-5),
        masked for those who may not see customers' addresses (SEC-6)."""
        clients = self._clients.get(env.tenant_id)
        if not clients:
            return
        listening = [c for c in clients if not c.suspended]
        if env.WhichOneof("payload") == "template_changed":  # open editors refresh it
            scope = list(env.template_changed.inbox_ids)
            text = json.dumps(views_compose.template_event(env), ensure_ascii=False)
            for client in listening:
                if not scope or any(client.caller.sees_inbox(i) for i in scope):
                    self._offer(clients, client, text)
            return
        if env.WhichOneof("payload") == "approval_changed":
            self._publish_approval(clients, listening, env)
            return
        inbox_id = views.event_inbox(env)
        allowed = [c for c in listening if inbox_id is None or c.caller.sees_inbox(inbox_id)]
        body = views.event(env)
        if body is not None:
            texts = _Texts(body)
            for client in allowed:
                self._offer(clients, client, texts.for_(client.caller))
        left = views.ticket_left(env)
        if left is not None:  # a transfer: those who saw it only in its old inbox drop it
            text = json.dumps(left, ensure_ascii=False)
            old = left["inbox_id"]
            for client in [c for c in listening if c not in allowed and c.caller.sees_inbox(old)]:
                self._offer(clients, client, text)
        # the assignee / mentioned operators: only their own sockets (any number of tabs)
        for operator_id, note in views.notifications(env):
            texts = _Texts(note)
            for client in [c for c in allowed if c.caller.operator_id == operator_id]:
                self._offer(clients, client, texts.for_(client.caller))
        # a routing rule's notify actions: the operators, members or roles they name
        if env.WhichOneof("payload") == "rule_actions":
            for client in allowed:
                for note in views_rules.rule_notifications(env, client.caller):
                    self._offer(clients, client, _Texts(note).for_(client.caller))

    def _push(self, audience: Audience | None) -> None:
        """A channel push to the operators who see its inbox (no inbox: administrators)."""
        if audience is None:
            return
        clients = self._clients.get(audience.tenant_id)
        if not clients:
            return
        texts = _Texts(audience.body)
        for client in [c for c in clients if not c.suspended]:
            caller = client.caller
            if (
                caller.sees_inbox(audience.inbox_id)
                if audience.inbox_id
                else administrators_only(caller)
            ):
                self._offer(clients, client, texts.for_(caller))

    def _publish_approval(
        self, clients: set[LiveClient], listening: list[LiveClient], env: events_pb2.EventEnvelope
    ) -> None:
        """`approval.changed` to every socket whose operator sees the request's inbox; a
        notification to those of the current stage's approvers and of the author (the
        approval service's rule, asked with each socket's caller: views_approval)."""
        inbox_id = env.approval_changed.inbox_id
        texts = _Texts(views_approval.live_event(env))
        for client in [c for c in listening if c.caller.sees_inbox(inbox_id)]:
            self._offer(clients, client, texts.for_(client.caller))
            note = views_approval.notification(env, client.caller)
            if note is not None:
                self._offer(clients, client, _Texts(note).for_(client.caller))

    def _offer(self, clients: set[LiveClient], client: LiveClient, text: str) -> None:
        """Queue a message for a client; a client whose queue is full is closed."""
        if client not in clients:
            return  # closed as too slow a moment ago
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._log.warning("slow live client closed", operator_id=client.caller.operator_id)
            self._slow_closed.inc()
            self._close(client, WSCloseCode.TRY_AGAIN_LATER, "too slow")

    async def _said(self, client: LiveClient, text: str) -> None:
        """A client's message: a JSON object with a `type` (subscribe, unsubscribe,
        chat.typing)."""
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "chat.typing":
            if self.chat is not None and not client.suspended:
                refused = await self.chat.typing(id(client), client.caller, message)
                if refused is not None:
                    self.send(client, refusal(None, *refused))
            return
        if not isinstance(message, dict) or self.topics is None:
            self.send(client, refusal(None, "invalid_argument", "not a JSON object", "type"))
            return
        self.topics.said(client, message)

    async def serve(
        self, request: web.Request, caller: Caller, reauth: Reauthorise
    ) -> web.WebSocketResponse:
        """`reauth` applies the access rules to the socket's request again."""
        # A browser offers ("switchboard.v1", "bearer.<token>"); we answer the first only.
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024, protocols=(WS_PROTOCOL,))
        await ws.prepare(request)
        client = LiveClient(ws, caller, reauth)
        self._clients[caller.tenant_id].add(client)
        writer = asyncio.create_task(client.writer())
        hello: dict[str, Any] = {"type": "hello", "operator": caller.to_json()}
        await client.queue.put(json.dumps(hello, ensure_ascii=False))
        since = [
            self._changed.get(caller.operator_id),
            self._changed.get(f"tenant:{caller.tenant_id}"),
        ]
        if any(at is not None for at in since):
            # its caller may have been resolved just before a change this hub has already
            # handled: check once more
            self._spawn(self._reauthorise(client, after_change=True))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._said(client, msg.data)
        finally:
            if self.topics is not None:
                self.topics.gone(client)
            if self.chat is not None:
                self.chat.gone(id(client))
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
