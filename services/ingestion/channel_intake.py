"""The receive pipeline of every channel (issue 21, ING-6; docs/channels.md, ADR 0010).

`ChannelIntake.receive(channel, InboundMessage)`:

1. the conversation (channel, external id) made or found, and locked;
2. the idempotency key checked: the same key twice in a conversation is one message;
3. the transcript row appended (seq = the conversation's next) naming the stored message's
   id chosen now, and `channel.message` (direction "in") queued in ingestion's outbox in
   the same transaction — the gateway's fast path to the operators;
4. the synthesised RFC 822 mail (channel_mail.py) stored through the same intake path as
   SubmitForm and SMTP with channel = the kind, under that id → `message.received` →
   routing → tickets.

A crash between 3 and 4 is made good by the sender's retry of the same key: a duplicate
whose mail is missing is stored then. Content an adapter must fetch (LINE's images) is
fetched before the transaction, and only for a key not seen before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2, events_pb2

from services.runtime import events, identity, log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound, Unavailable
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox

from . import channel_mail
from .channel_model import (
    ChannelRow,
    ContentRef,
    ConversationRow,
    InboundAttachment,
    InboundMessage,
    awaits_link,
    pseudo_address,
)
from .channel_repo import ChannelRepo, Transcript
from .intake import IntakePipeline
from .store import Intake

MAX_TEXT = 20_000  # characters of one message
LINK_WAIT_S = 5.0  # a later message waits at most this for its conversation's ticket
LINK_POLL_S = 0.05
MAX_KEY = 200
MAX_EXTERNAL_ID = 200
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
Fetch = Callable[[ChannelRow, ContentRef], Awaitable[InboundAttachment]]
# the sender's display name the channel knows (LINE's profile API); "" when it does not
Names = Callable[[ChannelRow, InboundMessage], Awaitable[str]]


@dataclass(frozen=True)
class Received:
    conversation: ConversationRow
    seq: int
    message_id: str
    duplicate: bool


class Inboxes:
    """An inbox's name and first address, asked of accounts (their owner), cached."""

    def __init__(self, channel: grpc.aio.Channel, ttl_s: float = 60.0) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)
        self._ttl = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, str, str]] = {}

    async def get(self, tenant_id: str, inbox_id: str) -> tuple[str, str]:
        """(name, address) of the inbox; NotFound-free: a missing inbox gets a placeholder."""
        now = time.monotonic()
        hit = self._cache.get((tenant_id, inbox_id))
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        try:
            resp = await self._stub.ListInboxes(
                accounts_pb2.ListInboxesRequest(),
                metadata=identity.Identity(tenant_id=tenant_id).metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts unavailable: {err.code().name}") from err
        name, address = "", "inquiries@switchboard.invalid"
        for inbox in resp.inboxes:
            if inbox.id == inbox_id:
                name = str(inbox.name)
                if inbox.addresses:
                    address = str(inbox.addresses[0])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(tenant_id, inbox_id)] = (now + self._ttl, name, address)
        return name, address


def customer_actor(conv_address: str, name: str) -> common_pb2.Actor:
    return common_pb2.Actor(
        kind=common_pb2.Actor.KIND_CUSTOMER, id=conv_address, display=name or conv_address
    )


def message_event(
    ids: IdGenerator,
    channel: ChannelRow,
    conv: ConversationRow,
    t: Transcript,
    actor: common_pb2.Actor,
) -> events_pb2.EventEnvelope:
    """`channel.message` of a transcript row."""
    payload = events_pb2.ChannelMessage(
        channel_id=str(channel.id),
        kind=channel.kind,
        inbox_id=str(channel.inbox_id),
        conversation_id=str(conv.id),
        ticket_id=str(conv.ticket_id or ""),
        seq=t.seq,
        direction=t.direction,
        text=t.text,
        author_name=t.author_name,
        sender_name=conv.sender_name,
        key=t.key,
        message_id=str(t.message_id or ""),
        attachment_count=len(t.attachments),
    )
    return events.envelope(
        events.CHANNEL_MESSAGE,
        event_id=ids.new_str(),
        tenant_id=str(channel.tenant_id),
        occurred_at=t.created_at,
        payload=payload,
        actor=actor,
    )


def check(msg: InboundMessage) -> None:
    """A normalised message an adapter handed over; InvalidArgument names the field."""
    if not msg.external_id.strip() or len(msg.external_id) > MAX_EXTERNAL_ID:
        raise InvalidArgument(
            f"a conversation id of 1 to {MAX_EXTERNAL_ID} characters", field="conversation"
        )
    if not msg.key.strip() or len(msg.key) > MAX_KEY:
        raise InvalidArgument(f"an id of 1 to {MAX_KEY} characters", field="id")
    if len(msg.text) > MAX_TEXT:
        raise InvalidArgument(f"at most {MAX_TEXT} characters", field="text")
    if len(msg.attachments) + len(msg.fetch) > MAX_ATTACHMENTS:
        raise InvalidArgument(f"at most {MAX_ATTACHMENTS} attachments", field="attachments")
    if any(len(a.content) > MAX_ATTACHMENT_BYTES for a in msg.attachments):
        raise InvalidArgument("an attachment is larger than 10 MB", field="attachments")
    if not msg.text.strip() and not msg.attachments and not msg.fetch:
        raise InvalidArgument("a message needs text or an attachment", field="text")


class ChannelIntake:
    def __init__(
        self,
        db: Database,
        repo: ChannelRepo,
        pipeline: IntakePipeline,
        outbox: Outbox,
        inboxes: Inboxes,
        clock: Clock,
        ids: IdGenerator,
        fetch: Fetch | None = None,
        names: Names | None = None,
    ) -> None:
        self._db = db
        self._repo = repo
        self._pipeline = pipeline
        self._outbox = outbox
        self._inboxes = inboxes
        self._clock = clock
        self._ids = ids
        self._fetch = fetch
        self._names = names
        self._log = log.get("ingestion.channels")

    async def receive(self, channel: ChannelRow, msg: InboundMessage) -> Received:
        check(msg)
        tenant = channel.tenant_id
        naming = self._names is not None and not msg.sender_name
        if (msg.fetch or naming) and await self._known(channel, msg) is None:
            msg = await self._complete(channel, msg, naming)
        inbox_name, inbox_address = await self._inboxes.get(str(tenant), str(channel.inbox_id))
        now = self._clock.now()
        sender_name = channel_mail.one_line(msg.sender_name, channel_mail.MAX_NAME)
        async with self._db.transaction() as conn:
            conv = await self._repo.lock_conversation(
                conn,
                new_id=self._ids.new(),
                channel=channel,
                external_id=msg.external_id,
                sender_id=msg.sender_id[:200],
                sender_name=sender_name,
                now=now,
            )
            address = pseudo_address(conv.id, channel.kind)
            known = await self._repo.message_by_key(conn, conv.id, "in", msg.key)
            first = await self._repo.first_inbound(conn, conv.id)
            if known is not None:
                row, duplicate = known, True
            else:
                row = Transcript(
                    conversation_id=conv.id,
                    seq=conv.last_seq + 1,
                    direction="in",
                    key=msg.key,
                    text=channel_mail.body_text(msg.text),
                    attachments=[
                        {"name": a.name, "content_type": a.content_type, "size": len(a.content)}
                        for a in msg.attachments
                    ],
                    author_name="",
                    message_id=self._ids.new(),
                    created_at=now,
                )
                duplicate = False
                await self._repo.append(conn, tenant, row, inbound=True)
                await self._repo.note_sender(
                    conn,
                    conv.id,
                    sender_name=sender_name,
                    reply_token=msg.reply_token,
                    reply_token_expires_at=msg.reply_token_expires_at,
                )
                conv = replace(
                    conv,
                    last_seq=row.seq,
                    last_inbound_at=now,
                    sender_name=sender_name or conv.sender_name,
                )
                actor = customer_actor(address, conv.sender_name)
                await self._outbox.add(conn, message_event(self._ids, channel, conv, row, actor))
        self._outbox.wake()
        assert row.message_id is not None
        if duplicate and await self._stored(tenant, row.message_id):
            return Received(conv, row.seq, str(row.message_id), True)
        first = first or row
        if not duplicate and awaits_link(
            row.seq, first.seq, conv.ticket_id is not None, first.created_at, now
        ):
            conv = await self._linked(tenant, conv)
        raw = channel_mail.to_mail(
            channel_mail.ChannelMail(
                kind=channel.kind,
                conversation_id=conv.id,
                seq=row.seq,
                first_seq=first.seq,
                first_text=first.text,
                sender_name=conv.sender_name,
                inbox_address=inbox_address,
                text=row.text,
                sent_at=row.created_at,
                channel_name=channel.name,
                attachments=msg.attachments,
            )
        )
        await self._pipeline.accept(
            [
                Intake(
                    tenant_id=str(tenant),
                    inbox=common_pb2.InboxRef(id=str(channel.inbox_id), name=inbox_name),
                    channel=channel.kind,
                    raw=raw,
                    envelope_from=address,
                    envelope_recipients=[inbox_address],
                    message_id=str(row.message_id),
                )
            ]
        )
        self._log.info(
            "channel message received",
            tenant_id=str(tenant),
            channel_id=str(channel.id),
            conversation_id=str(conv.id),
            seq=row.seq,
            duplicate=duplicate,
        )
        return Received(conv, row.seq, str(row.message_id), duplicate)

    async def _linked(self, tenant: uuid.UUID, conv: ConversationRow) -> ConversationRow:
        """A later message of a conversation whose first has no ticket yet waits (at most
        LINK_WAIT_S) until ingestion has linked the conversation to the ticket its first
        message opened: routing threads it by the first message's Message-ID, which tickets
        must have filed by then — else two messages of a new conversation arriving in the
        same moment (a LINE webhook with two events, a visitor's two quick lines) open two
        tickets. The transcript and its `channel.message` push (the operators' screen) do not
        wait for this, the sender's acknowledgement does; past the wait the mail goes as it
        is (threaded when it can be)."""
        deadline = time.monotonic() + LINK_WAIT_S
        while time.monotonic() < deadline:
            found = await self._repo.conversation(tenant, conv.id)
            if found is not None and found.ticket_id is not None:
                return found
            await asyncio.sleep(LINK_POLL_S)
        self._log.warning(
            "channel message stored before its conversation's first was filed",
            tenant_id=str(tenant),
            conversation_id=str(conv.id),
        )
        return conv

    async def _complete(
        self, channel: ChannelRow, msg: InboundMessage, naming: bool
    ) -> InboundMessage:
        """A new message's content fetched (LINE's images) and its sender named. Content
        that cannot be fetched leaves a note in the text instead: the customer's message
        is never lost for it (LINE does not redeliver by default)."""
        if naming and self._names is not None:
            msg = replace(msg, sender_name=await self._names(channel, msg))
        if not msg.fetch:
            return msg
        if self._fetch is None:
            raise Unavailable(f"no content fetcher for {channel.kind}")
        fetched: list[InboundAttachment] = []
        notes: list[str] = []
        for ref in msg.fetch:
            try:
                fetched.append(await self._fetch(channel, ref))
            except (Unavailable, NotFound, InvalidArgument) as err:
                self._log.warning(
                    "channel content not fetched",
                    tenant_id=str(channel.tenant_id),
                    channel_id=str(channel.id),
                    error=err.message,
                )
                notes.append(f"[{ref.name}: could not be fetched — {err.message}]")
        text = "\n".join(t for t in (msg.text, *notes) if t)
        return replace(msg, text=text, attachments=(*msg.attachments, *fetched), fetch=())

    async def _known(self, channel: ChannelRow, msg: InboundMessage) -> uuid.UUID | None:
        """The stored message of this key in its conversation, if seen before."""
        found = await self._repo.pool.fetchval(
            "SELECT m.message_id FROM channel_messages m JOIN channel_conversations c "
            "ON c.id = m.conversation_id WHERE c.channel_id = $1 AND c.external_id = $2 "
            "AND m.direction = 'in' AND m.key = $3",
            channel.id,
            msg.external_id,
            msg.key,
        )
        return found if isinstance(found, uuid.UUID) else None

    async def _stored(self, tenant: uuid.UUID, message_id: uuid.UUID) -> bool:
        return bool(
            await self._repo.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM raw_messages WHERE tenant_id = $1 AND id = $2)",
                tenant,
                message_id,
            )
        )
