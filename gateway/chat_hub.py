"""The web chat's visitor sockets (issue 21, ING-6): which sockets of this replica follow
which conversation, what is pushed to them, and the replicas' typing/online notes.

Every replica follows `sb.ingest.channel.message` (a `channel.message` of a conversation
goes to its visitors' sockets: an operator's reply, and the visitor's own message for
their other tabs), `channel.conversation` ("linked" tells the ticket) and the core
subject `sb.live.chat` (an operator typing: pushed to the visitor). It publishes the
visitor's typing / idle / online / offline on `sb.live.chat` for the operators' sockets
(gateway/live.py). It also follows routing's `presence.changed`: when an operator of a
visitor's inbox comes or goes, the visitor is told whether anyone is present now
(`presence`; the widget switches between the chat and the offline form); and since an
operator's "online" lapses without an event (a closed laptop: no heartbeat for 90 s),
every `recheck_s` the inboxes with visitors here are asked again. A push is a
courtesy: a socket resumes with `after_seq` and misses nothing. A socket too slow to keep
up is closed (1013) and resumes when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from switchboard.v1 import events_pb2

from services.runtime import events, log, registry

from . import views

QUEUE_MAX = 256
SUBJECT = registry.LIVE_CHAT_SUBJECT
EVENTS = (
    events.CHANNEL_MESSAGE.subject,
    events.CHANNEL_CONVERSATION.subject,
    events.PRESENCE_CHANGED.subject,
)
Presence = Callable[[str, str], Awaitable[bool]]  # (tenant, inbox) → an operator is present


@dataclass(eq=False)
class VisitorSocket:
    ws: web.WebSocketResponse
    tenant_id: str
    inbox_id: str
    conversation_id: str
    ticket_id: str = ""
    name: str = ""
    online: bool = False  # as the visitor was last told
    # until the history after the client's `after_seq` is sent, pushes wait here; then
    # those already sent in the history are dropped
    ready: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))

    async def writer(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            await self.ws.send_str(item)


def line_json(
    seq: int, direction: str, text: str, author_name: str, key: str, created_at: str | None
) -> dict[str, Any]:
    """A transcript line as the widget reads it (from an event or the history): the
    operator's name on replies, the client's key on the visitor's own."""
    return {
        "type": "message",
        "seq": seq,
        "direction": direction,
        "text": text,
        "author_name": author_name if direction == "out" else "",
        "key": key if direction == "in" else "",
        "created_at": created_at,
    }


class ChatHub:
    def __init__(self, recheck_s: float = 30.0) -> None:
        self._recheck_s = recheck_s
        self._rechecking: asyncio.Task[None] | None = None
        self._by_conv: dict[str, set[VisitorSocket]] = defaultdict(set)
        self._subs: list[Subscription] = []
        self._nc: NatsClient | None = None
        self._closing: set[asyncio.Future[bool]] = set()
        self.presence: Presence | None = None  # set by routes_chat (routing's presence)
        self._log = log.get("gateway.chat")

    @property
    def socket_count(self) -> int:
        return sum(len(s) for s in self._by_conv.values())

    async def start(self, nc: NatsClient) -> None:
        self._nc = nc
        for subject in EVENTS:
            self._subs.append(await nc.subscribe(subject, cb=self._on_event))
        self._subs.append(await nc.subscribe(SUBJECT, cb=self._on_live))
        self._rechecking = asyncio.create_task(self._recheck_loop())

    async def stop(self) -> None:
        if self._rechecking is not None:
            self._rechecking.cancel()
            self._rechecking = None
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        for sockets in list(self._by_conv.values()):
            for s in list(sockets):
                await s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def join(self, sock: VisitorSocket) -> None:
        self._by_conv[sock.conversation_id].add(sock)

    def leave(self, sock: VisitorSocket) -> None:
        sockets = self._by_conv.get(sock.conversation_id)
        if sockets is not None:
            sockets.discard(sock)
            if not sockets:
                del self._by_conv[sock.conversation_id]

    def others_present(self, sock: VisitorSocket) -> bool:
        """Whether the visitor has another tab open on this replica."""
        return any(s is not sock for s in self._by_conv.get(sock.conversation_id, ()))

    # -- to the visitor --------------------------------------------------------------------

    def send(self, sock: VisitorSocket, body: dict[str, Any]) -> None:
        try:
            sock.queue.put_nowait(json.dumps(body, ensure_ascii=False))
        except asyncio.QueueFull:
            self._log.warning("slow chat socket closed", conversation_id=sock.conversation_id)
            self.leave(sock)
            task = asyncio.ensure_future(
                sock.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def send_in_turn(self, sock: VisitorSocket, body: dict[str, Any]) -> None:
        """A message that may wait for room in the queue (the history, however long)."""
        await sock.queue.put(json.dumps(body, ensure_ascii=False))

    def push_line(self, sock: VisitorSocket, line: dict[str, Any]) -> None:
        """A transcript line, once: held until the history is out, never twice."""
        if not sock.ready:
            sock.held.append(line)
            return
        if line["seq"] <= sock.last_seq:
            return
        sock.last_seq = line["seq"]
        self.send(sock, line)

    def release(self, sock: VisitorSocket) -> None:
        """The history is out: the pushes that came meanwhile follow, in order."""
        sock.ready = True
        held, sock.held = sorted(sock.held, key=lambda x: int(x["seq"])), []
        for line in held:
            self.push_line(sock, line)

    async def _on_event(self, msg: Msg) -> None:
        env = events_pb2.EventEnvelope()
        try:
            env.ParseFromString(msg.data)
        except DecodeError:
            return
        kind = env.WhichOneof("payload")
        if kind == "channel_message":
            p = env.channel_message
            sockets = self._by_conv.get(p.conversation_id)
            if not sockets or p.kind != "chat":
                return
            line = line_json(
                p.seq, p.direction, p.text, p.author_name, p.key, views.iso(env.occurred_at)
            )
            for sock in list(sockets):
                if sock.tenant_id == env.tenant_id:
                    if p.ticket_id:
                        sock.ticket_id = p.ticket_id
                    self.push_line(sock, line)
        elif kind == "presence_changed":
            await self._presence_changed(env.tenant_id)
        elif kind == "channel_conversation":
            c = env.channel_conversation
            for sock in list(self._by_conv.get(c.conversation_id, ())):
                if sock.tenant_id == env.tenant_id and c.ticket_id:
                    sock.ticket_id = c.ticket_id

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_s)
            await self.recheck()

    async def recheck(self) -> None:
        """Each tenant with visitors here asked again whether its inboxes have anyone
        present: a presence that lapsed sent no event."""
        for tenant_id in {s.tenant_id for socks in self._by_conv.values() for s in socks}:
            try:
                await self._presence_changed(tenant_id)
            except Exception as err:  # the next round asks again
                self._log.warning("presence recheck failed", tenant_id=tenant_id, error=repr(err))

    async def _presence_changed(self, tenant_id: str) -> None:
        """An operator of the tenant came or went: each of its inboxes with visitors here is
        asked again, and the visitors whose answer changed are told (`presence`)."""
        if self.presence is None:
            return
        inboxes: dict[str, list[VisitorSocket]] = defaultdict(list)
        for sockets in self._by_conv.values():
            for sock in sockets:
                if sock.tenant_id == tenant_id:
                    inboxes[sock.inbox_id].append(sock)
        for inbox_id, socks in inboxes.items():
            online = await self.presence(tenant_id, inbox_id)
            for sock in socks:
                if sock.online != online:
                    sock.online = online
                    self.send(sock, {"type": "presence", "online": online})

    async def _on_live(self, msg: Msg) -> None:
        try:
            note = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(note, dict) or note.get("who") != "operator":
            return
        sockets = self._by_conv.get(str(note.get("conversation_id", "")))
        if not sockets:
            return
        body = {
            "type": "typing",
            "who": "operator",
            "name": str(note.get("name", ""))[:100],
            "typing": note.get("event") == "typing",
        }
        for sock in list(sockets):
            if sock.tenant_id == note.get("tenant_id"):
                self.send(sock, body)

    # -- to the operators (every replica) --------------------------------------------------

    async def note(self, sock: VisitorSocket, event: str) -> None:
        """The visitor's typing / idle / online / offline on `sb.live.chat`."""
        if self._nc is None or not self._nc.is_connected:
            return
        body = {
            "tenant_id": sock.tenant_id,
            "inbox_id": sock.inbox_id,
            "conversation_id": sock.conversation_id,
            "ticket_id": sock.ticket_id,
            "who": "visitor",
            "name": sock.name,
            "event": event,
            "at": time.time(),
        }
        try:
            await self._nc.publish(SUBJECT, json.dumps(body, ensure_ascii=False).encode())
        except Exception as exc:  # a courtesy: never the socket's failure
            self._log.info("chat note not published", error=str(exc))
