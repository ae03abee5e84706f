"""ChatService over gRPC (issue 21, ING-6): the web chat's visitor side, called by the
gateway's widget socket (public: the widget's key names the channel, the visitor token
names the visitor's conversation; nothing here tells whether a key exists beyond
NOT_FOUND). A visitor's message goes through the channels' one receive pipeline
(`ChannelIntake.receive`) and becomes a ticket of channel "chat".

Limits per visitor: `SB_CHAT_MAX_CHARS` characters a message (INVALID_ARGUMENT, field
`text`), `SB_CHAT_PER_MINUTE` messages a minute (RESOURCE_EXHAUSTED, retry after). A
chat ends when the visitor ends it or after `SB_CHAT_IDLE_END_S` without a message either
way (ChatSweeper); `channel.conversation` action "ended" then tells outbound to mail the
transcript to the address the visitor left (once per conversation).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import grpc
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2, tickets_pb2_grpc
from switchboard.v1 import ingestion_channels_pb2 as pb

from services.runtime import events, identity, log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from . import channel_views
from . import chat_domain as cd
from .channel_intake import ChannelIntake
from .channel_model import ChannelRow, ConversationRow, InboundMessage
from .channel_repo import Transcript
from .chat_repo import ChatRepo

HISTORY_MAX = 500
CHANNEL_CACHE_S = 5.0  # a disabled or deleted widget stops taking messages this soon


def conversation_pb(conv: ConversationRow, inbox_id: uuid.UUID) -> pb.Conversation:
    """The visitor's own conversation (their address unmasked: it is theirs)."""
    out = channel_views.conversation_pb(conv, "chat", inbox_id, None, True)
    out.language = conv.language
    return out


def conversation_event(
    conv: ConversationRow, inbox_id: uuid.UUID, action: str, event_id: str, now: datetime
) -> events_pb2.EventEnvelope:
    return events.envelope(
        events.CHANNEL_CONVERSATION,
        event_id=event_id,
        tenant_id=str(conv.tenant_id),
        occurred_at=now,
        payload=events_pb2.ChannelConversationChanged(
            conversation_id=str(conv.id),
            channel_id=str(conv.channel_id),
            kind="chat",
            inbox_id=str(inbox_id),
            ticket_id=str(conv.ticket_id or ""),
            action=action,
        ),
        actor=events.system_actor("ingestion"),
    )


class ChatApi:
    def __init__(
        self,
        repo: ChatRepo,
        db: Database,
        outbox: Outbox,
        intake: ChannelIntake,
        tickets: grpc.aio.Channel,
        clock: Clock,
        ids: IdGenerator,
        secret: str,
        limits: cd.ChatLimits,
    ) -> None:
        self._repo = repo
        self._db = db
        self._outbox = outbox
        self._intake = intake
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)  # type: ignore[no-untyped-call,unused-ignore]
        self._clock = clock
        self._ids = ids
        self._secret = secret
        self._limits = limits
        self._log = log.get("ingestion.chat")
        self._channels: dict[str, tuple[float, ChannelRow | None]] = {}

    # -- lookups ---------------------------------------------------------------------------

    async def _channel(self, public_key: str) -> ChannelRow:
        channel = await self._repo.channel_by_key(public_key) if public_key else None
        if channel is None:
            raise NotFound("no such chat widget", field="public_key")
        return channel

    async def _visitor(self, token: str) -> tuple[ChannelRow, ConversationRow, cd.Visitor]:
        visitor = cd.read_visitor(self._secret, token)
        channel = await self._repo.channel_by_id(visitor.channel_id)
        conv = await self._repo.conversation(channel.id, visitor.external_id) if channel else None
        if channel is None or conv is None:
            raise NotFound("no such chat", field="visitor_token")
        return channel, conv, visitor

    async def _ticket_status(self, conv: ConversationRow) -> str:
        if conv.ticket_id is None:
            return ""
        try:
            resp = await self._tickets.GetTicket(
                tickets_pb2.GetTicketRequest(ticket_id=str(conv.ticket_id)),
                metadata=Identity(tenant_id=str(conv.tenant_id)).metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return "trash"  # gone: start anew
            self._log.warning("ticket status unknown", error=err.code().name)
            return ""
        name: str = common_pb2.TicketStatus.Name(resp.ticket.status)
        return name.removeprefix("TICKET_STATUS_").lower()

    # -- the visitor's calls ---------------------------------------------------------------

    async def GetWidget(self, request: pb.GetWidgetRequest, context: Context) -> pb.Widget:
        channel = await self._channel(request.public_key)
        return pb.Widget(
            public_key=channel.public_key,
            inbox_name=channel.name,
            settings=channel_views.channel_pb(channel).chat,
            tenant_id=str(channel.tenant_id),
        )

    async def OpenChat(self, request: pb.OpenChatRequest, context: Context) -> pb.OpenChatResponse:
        channel = await self._channel(request.public_key)
        allowed = channel_views.channel_pb(channel).chat.allowed_origins
        if request.origin and request.origin not in allowed:
            raise PermissionDenied("this site may not open the chat", field="origin")
        name = cd.clean_name(request.name)
        email = cd.check_email(request.email)
        visitor: cd.Visitor | None = None
        if request.visitor_token:
            try:
                visitor = cd.read_visitor(self._secret, request.visitor_token)
            except NotFound:
                visitor = None  # a stale or foreign token: a new visitor
            if visitor is not None and visitor.channel_id != str(channel.id):
                visitor = None
        if visitor is None:
            visitor = cd.Visitor(str(channel.id), self._ids.new_str(), self._ids.new_str())
        else:
            last = await self._repo.conversation(channel.id, visitor.external_id)
            if last is not None and cd.starts_anew(last.ended_at, await self._ticket_status(last)):
                visitor = cd.Visitor(visitor.channel_id, visitor.visitor_id, self._ids.new_str())
        conv = await self._repo.ensure_conversation(
            self._ids.new(),
            channel,
            visitor.visitor_id,
            visitor.external_id,
            name,
            email,
            cd.language(request.language) if request.language else "",
            self._clock.now(),
        )
        self._log.info(
            "chat opened",
            tenant_id=str(channel.tenant_id),
            channel_id=str(channel.id),
            conversation_id=str(conv.id),
        )
        return pb.OpenChatResponse(
            visitor_token=cd.sign_visitor(self._secret, visitor),
            conversation=conversation_pb(conv, channel.inbox_id),
        )

    async def SendChat(self, request: pb.SendChatRequest, context: Context) -> pb.SendChatResponse:
        visitor = cd.read_visitor(self._secret, request.visitor_token)
        key = cd.check_key(request.key)
        channel = await self._cached_channel(visitor.channel_id)
        now = self._clock.now()
        state = (
            await self._repo.send_state(
                channel.id, visitor.external_id, key, now - timedelta(minutes=1)
            )
            if channel is not None
            else None
        )
        if channel is None or state is None:
            raise NotFound("no such chat", field="visitor_token")
        conv, seen, recent = state
        if seen is not None:  # a resend after a lost answer: nothing new
            return pb.SendChatResponse(message=channel_views.message_pb(seen), duplicate=True)
        if conv.ended_at is not None:
            raise FailedPrecondition("the chat has ended; open it again", field="visitor_token")
        text = cd.check_text(request.text, self._limits)
        cd.check_rate(recent, self._limits)
        got = await self._intake.receive(
            channel,
            InboundMessage(
                external_id=visitor.external_id,
                sender_id=visitor.visitor_id,
                sender_name=conv.sender_name,
                text=text,
                key=key,
                sent_at=now,
            ),
        )
        line = Transcript(conv.id, got.seq, "in", key, text, [], "", None, now)
        return pb.SendChatResponse(message=channel_views.message_pb(line), duplicate=got.duplicate)

    async def _cached_channel(self, channel_id: str) -> ChannelRow | None:
        """A visitor's channel, kept a few seconds (every message of every visitor asks)."""
        hit = self._channels.get(channel_id)
        at = time.monotonic()
        if hit is not None and at - hit[0] < CHANNEL_CACHE_S:
            return hit[1]
        channel = await self._repo.channel_by_id(channel_id)
        if len(self._channels) > 10_000:
            self._channels.clear()
        self._channels[channel_id] = (at, channel)
        return channel

    async def ChatHistory(
        self, request: pb.ChatHistoryRequest, context: Context
    ) -> pb.ChatHistoryResponse:
        if request.conversation_id and not request.visitor_token:
            # a service's call (outbound's transcript mail): the tenant's, no operator
            ident = identity.require_tenant()
            if ident.operator_id:
                raise PermissionDenied("a visitor token is needed", field="visitor_token")
            conv = await self._repo.conversation_by_id(
                uuid.UUID(ident.tenant_id), parse_uuid(request.conversation_id, "conversation_id")
            )
            channel = await self._repo.channel_by_id(str(conv.channel_id)) if conv else None
            if conv is None or channel is None:
                raise NotFound("no such conversation", field="conversation_id")
        else:
            channel, conv, _ = await self._visitor(request.visitor_token)
        limit = min(max(request.limit or HISTORY_MAX, 1), HISTORY_MAX)
        lines = await self._repo.lines_after(conv.id, max(request.after_seq, 0), limit)
        return pb.ChatHistoryResponse(
            messages=[channel_views.message_pb(line) for line in lines],
            conversation=conversation_pb(conv, channel.inbox_id),
        )

    async def SetChatContact(
        self, request: pb.SetChatContactRequest, context: Context
    ) -> pb.Conversation:
        channel, conv, _ = await self._visitor(request.visitor_token)
        name = cd.clean_name(request.name) or None
        email = cd.check_email(request.email) or None
        conv = await self._repo.set_contact(conv.id, name, email)
        async with self._db.transaction() as conn:
            await self._outbox.add(
                conn,
                conversation_event(
                    conv, channel.inbox_id, "contact", self._ids.new_str(), self._clock.now()
                ),
            )
        self._outbox.wake()
        return conversation_pb(conv, channel.inbox_id)

    async def EndChat(self, request: pb.EndChatRequest, context: Context) -> pb.Conversation:
        channel, conv, _ = await self._visitor(request.visitor_token)
        now = self._clock.now()
        async with self._db.transaction() as conn:
            if await self._repo.end(conn, conv.id, now):
                await self._outbox.add(
                    conn,
                    conversation_event(conv, channel.inbox_id, "ended", self._ids.new_str(), now),
                )
        self._outbox.wake()
        self._log.info(
            "chat ended",
            tenant_id=str(conv.tenant_id),
            channel_id=str(conv.channel_id),
            conversation_id=str(conv.id),
        )
        ended = await self._repo.conversation(channel.id, conv.external_id)
        assert ended is not None
        return conversation_pb(ended, channel.inbox_id)


class ChatSweeper(PeriodicTask):
    """Ends chats quiet for `idle_end_s` (either way), announcing each (`channel.conversation`
    action "ended": outbound mails the transcript)."""

    def __init__(
        self,
        repo: ChatRepo,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        ids: IdGenerator,
        limits: cd.ChatLimits,
    ) -> None:
        super().__init__("chat-idle", max(1.0, min(60.0, limits.idle_end_s / 4)))
        self._repo = repo
        self._db = db
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._limits = limits
        self._log = log.get("ingestion.chat")

    async def step(self) -> bool:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            ended = await self._repo.end_idle(conn, cd.idle_before(now, self._limits), now, 200)
            for e in ended:
                await self._outbox.add(
                    conn,
                    conversation_event(
                        e.conversation, e.inbox_id, "ended", self._ids.new_str(), now
                    ),
                )
        if ended:
            self._outbox.wake()
            self._log.info("idle chats ended", count=len(ended))
        return len(ended) == 200
