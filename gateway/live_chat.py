"""The channels on the operators' live socket (issue 21, ING-6).

Pushed to the sockets of the operators who see the event's inbox (masked as any push):
- `channel.message` — ingestion's fast path: a customer's message (direction "in") before
  the ticket has it, an operator's reply as the channel delivered it ("out");
- `channel.conversation` — a conversation linked to its ticket, the visitor's address
  left, the visitor away or back, the chat ended;
- `channel.delivery` — a reply's delivery to an API webhook or LINE changed state (the
  event names the channel only: its inbox is learnt from the channel's other events or
  asked of ingestion; unknown, only administrators — `manage_inboxes` — are told);
- `chat.typing` (`who` "visitor") and `chat.visitor` (online true/false) from the core
  NATS subject `sb.live.chat`, which every gateway replica shares (docs/channels.md).

An operator's socket may send `{"type": "chat.typing", "ticket_id", "typing"}` while
writing a reply: the ticket's conversation is found with ChannelsService.GetConversation
as that operator (cached for `CONVERSATION_TTL_S`), the operator must see its inbox, and
the replica publishes `{"who": "operator", "event": "typing" | "idle"}` on `sb.live.chat`
for the visitor's socket (gateway/routes_chat.py). A socket's repeats of the same state
are published at most every `REPEAT_S`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from switchboard.v1 import events_pb2, ingestion_channels_pb2_grpc
from switchboard.v1 import ingestion_channels_pb2 as pb

from services.runtime import log, permissions, registry
from services.runtime.identity import Identity

from .auth import Caller

LIVE_CHAT = registry.LIVE_CHAT_SUBJECT
CHANNEL_PAYLOADS = ("channel_message", "channel_conversation", "channel_delivery")
CONVERSATION_TTL_S = 30.0
REPEAT_S = 2.0  # the same typing state of one socket and ticket, published again at most
CALL_TIMEOUT_S = 5.0
CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a push is for: the operators who see `inbox_id` ("" administrators only)."""

    tenant_id: str
    inbox_id: str
    body: dict[str, Any]


@dataclass(slots=True)
class _Conversation:
    conversation_id: str
    inbox_id: str
    at: float


def message_body(p: events_pb2.ChannelMessage) -> dict[str, Any]:
    return {
        "type": "channel.message",
        "ticket_id": p.ticket_id or None,
        "conversation_id": p.conversation_id,
        "channel": p.kind,
        "seq": p.seq,
        "direction": p.direction,
        "text": p.text,
        "author_name": p.author_name,
        "sender_name": p.sender_name,
        "created_at": None,
        "message_id": p.message_id or None,
        "attachment_count": p.attachment_count,
    }


def visitor_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """What operators are told of a visitor's `sb.live.chat` event (None: nothing)."""
    kind = event.get("event")
    common = {
        "ticket_id": event.get("ticket_id") or None,
        "conversation_id": str(event.get("conversation_id") or ""),
    }
    if kind in ("typing", "idle"):
        return {"type": "chat.typing", **common, "who": "visitor", "typing": kind == "typing"}
    if kind in ("online", "offline"):
        return {"type": "chat.visitor", **common, "online": kind == "online"}
    return None


class LiveChat:
    """Channel events and typing for the live hub (gateway/live.py)."""

    def __init__(self, stub: ingestion_channels_pb2_grpc.ChannelsServiceStub) -> None:
        self._stub = stub
        self._nc: NatsClient | None = None
        self._conversations: dict[tuple[str, str], _Conversation] = {}  # (tenant, ticket)
        self._channel_inbox: dict[tuple[str, str], str] = {}  # (tenant, channel) → inbox
        self._last: dict[tuple[int, str], tuple[bool, float]] = {}  # (socket, ticket)
        self._log = log.get("gateway.live_chat")

    def connected(self, nc: NatsClient) -> None:
        self._nc = nc

    # -- events to push ------------------------------------------------------------------

    async def audience(self, env: events_pb2.EventEnvelope) -> Audience | None:
        kind = env.WhichOneof("payload")
        tenant = env.tenant_id
        if kind == "channel_message":
            p: Any = env.channel_message
            self._learn(tenant, p.channel_id, p.inbox_id)
            body = message_body(p)
            body["created_at"] = env.occurred_at.ToJsonString() if env.occurred_at.seconds else None
            return Audience(tenant, p.inbox_id, body)
        if kind == "channel_conversation":
            p = env.channel_conversation
            self._learn(tenant, p.channel_id, p.inbox_id)
            if p.ticket_id and p.inbox_id:
                self._remember(tenant, p.ticket_id, p.conversation_id, p.inbox_id)
            body = {
                "type": "channel.conversation",
                "ticket_id": p.ticket_id or None,
                "conversation_id": p.conversation_id,
                "channel": p.kind,
                "action": p.action,
            }
            return Audience(tenant, p.inbox_id, body)
        if kind == "channel_delivery":
            p = env.channel_delivery
            body = {
                "type": "channel.delivery",
                "delivery_id": p.delivery_id,
                "channel_id": p.channel_id,
                "channel": p.kind,
                "conversation_id": p.conversation_id,
                "ticket_id": p.ticket_id or None,
                "send_id": p.send_id or None,
                "state": p.state,
                "attempts": p.attempts,
                "error": p.error,
            }
            return Audience(tenant, await self._inbox_of_channel(tenant, p.channel_id), body)
        return None

    def visitor(self, data: bytes) -> Audience | None:
        """A visitor's typing or presence from `sb.live.chat` (an operator's: None)."""
        try:
            event = json.loads(data)
        except ValueError:
            return None
        if not isinstance(event, dict) or event.get("who") != "visitor":
            return None
        body = visitor_body(event)
        tenant, inbox = event.get("tenant_id"), event.get("inbox_id")
        if body is None or not isinstance(tenant, str) or not isinstance(inbox, str) or not inbox:
            return None
        return Audience(tenant, inbox, body)

    def _learn(self, tenant: str, channel_id: str, inbox_id: str) -> None:
        if channel_id and inbox_id:
            if len(self._channel_inbox) >= CACHE_MAX:
                self._channel_inbox.clear()
            self._channel_inbox[(tenant, channel_id)] = inbox_id

    async def _inbox_of_channel(self, tenant: str, channel_id: str) -> str:
        known = self._channel_inbox.get((tenant, channel_id))
        if known is not None or not channel_id:
            return known or ""
        md = Identity(tenant_id=tenant, display_name="gateway").metadata()
        try:
            channel = await self._stub.GetChannel(
                pb.GetChannelRequest(channel_id=channel_id), metadata=md, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as err:
            self._log.info("channel's inbox not known", channel_id=channel_id, code=err.code().name)
            self._channel_inbox[(tenant, channel_id)] = ""  # not asked again; learnt later
            return ""
        self._learn(tenant, channel_id, channel.inbox_id)
        return str(channel.inbox_id)

    # -- an operator's typing ------------------------------------------------------------

    async def typing(
        self, socket: int, caller: Caller, message: dict[str, Any]
    ) -> tuple[str, str, str | None] | None:
        """Publish an operator's typing; a refusal (code, message, field) or None."""
        raw, typing = message.get("ticket_id"), message.get("typing")
        if not isinstance(typing, bool):
            return ("invalid_argument", "typing must be true or false", "typing")
        try:
            ticket_id = str(uuid.UUID(str(raw)))
        except ValueError:
            return ("invalid_argument", "ticket_id is not a valid id", "ticket_id")
        now = time.monotonic()
        last = self._last.get((socket, ticket_id))
        if last is not None and last[0] == typing and now - last[1] < REPEAT_S:
            return None
        conversation = await self._conversation(caller, ticket_id)
        if conversation is None or not caller.sees_inbox(conversation.inbox_id):
            return ("not_found", "no such chat", "ticket_id")
        if len(self._last) >= CACHE_MAX:
            self._last.clear()
        self._last[(socket, ticket_id)] = (typing, now)
        event = {
            "tenant_id": caller.tenant_id,
            "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.conversation_id,
            "ticket_id": ticket_id,
            "who": "operator",
            "name": caller.display_name,
            "event": "typing" if typing else "idle",
        }
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(LIVE_CHAT, json.dumps(event, ensure_ascii=False).encode())
        return None

    def gone(self, socket: int) -> None:
        for key in [k for k in self._last if k[0] == socket]:
            del self._last[key]

    def _remember(self, tenant: str, ticket_id: str, conversation_id: str, inbox_id: str) -> None:
        if len(self._conversations) >= CACHE_MAX:
            self._conversations.clear()
        self._conversations[(tenant, ticket_id)] = _Conversation(
            conversation_id, inbox_id, time.monotonic()
        )

    async def _conversation(self, caller: Caller, ticket_id: str) -> _Conversation | None:
        key = (caller.tenant_id, ticket_id)
        cached = self._conversations.get(key)
        if cached is not None and time.monotonic() - cached.at < CONVERSATION_TTL_S:
            return cached
        try:
            conv: Message = await self._stub.GetConversation(
                pb.GetConversationRequest(ticket_id=ticket_id),
                metadata=caller.metadata(),
                timeout=CALL_TIMEOUT_S,
            )
        except (TimeoutError, grpc.aio.AioRpcError) as err:
            code = err.code().name if isinstance(err, grpc.aio.AioRpcError) else "TIMEOUT"
            self._log.info("conversation of a ticket not found", ticket_id=ticket_id, code=code)
            return None
        assert isinstance(conv, pb.Conversation)
        self._remember(caller.tenant_id, ticket_id, conv.id, conv.inbox_id)
        return self._conversations[key]


def administrators_only(caller: Caller) -> bool:
    return caller.may(permissions.MANAGE_INBOXES)
