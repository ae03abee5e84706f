"""The channel-adapter contract (issue 21, ING-6; docs/channels.md): what every channel
other than mail hands ingestion (a normalised inbound message) and what ingestion hands it
back (a reply to deliver, with a result). Pure: no I/O here.

An adapter declares its capabilities; its inbound side turns a verified webhook body into
`InboundMessage`s (`SignedParser`), its outbound side sends one `OutboundMessage` to the
customer (`ChannelSender`). Everything else — conversations, the transcript, the ticket
(through a synthesised mail announced as `message.received` with the kind as channel),
idempotency, retries and dead letters — is the same for every channel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# the pseudo-address of a conversation's customer: one copy, in the runtime (outbound and
# composition meet it too)
from services.runtime.channel_address import KINDS as KINDS
from services.runtime.channel_address import PSEUDO_DOMAIN as PSEUDO_DOMAIN
from services.runtime.channel_address import parse_pseudo_address as parse_pseudo_address
from services.runtime.channel_address import pseudo_address as pseudo_address


@dataclass(frozen=True)
class Capabilities:
    threading: bool
    attachments_in: bool
    attachments_out: bool
    typing: bool
    reply_window_s: int  # 0: none
    delivery_receipts: bool


CAPABILITIES: dict[str, Capabilities] = {
    "chat": Capabilities(True, False, False, True, 0, True),
    "api": Capabilities(True, True, False, False, 0, True),
    # LINE: replies only through the reply token (valid briefly) or the push API; the
    # window is ours (a policy an administrator would expect of a messaging app: no
    # unsolicited push a day after the customer's last message).
    "line": Capabilities(True, True, False, False, 86400, True),
}


MAX_REPLY_WINDOW_S = 30 * 86400


def reply_window_s(kind: str, settings: dict[str, Any]) -> int:
    """A channel's reply window in seconds (0: none): its kind's, else — for an API
    channel, which bridges apps with windows of their own — the administrator's."""
    fixed = CAPABILITIES[kind].reply_window_s
    if fixed or kind != "api":
        return fixed
    try:
        return max(0, min(int(settings.get("reply_window_s") or 0), MAX_REPLY_WINDOW_S))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class InboundAttachment:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class ContentRef:
    """Content an adapter must fetch before the message is stored (LINE's image content
    API); fetched by the kind's `ContentFetcher`."""

    ref: str
    name: str
    content_type: str


@dataclass(frozen=True)
class InboundMessage:
    """One customer message, normalised."""

    external_id: str  # the conversation's id in the channel (visitor id, userId …)
    sender_id: str
    sender_name: str
    text: str
    key: str  # idempotency key: the same key twice in a conversation is one message
    sent_at: datetime | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    fetch: tuple[ContentRef, ...] = ()
    reply_token: str = ""  # line
    reply_token_expires_at: datetime | None = None


@dataclass(frozen=True)
class ChannelRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    inbox_id: uuid.UUID
    name: str
    public_key: str
    settings: dict[str, Any]
    enabled: bool
    secret_hint: str
    token_set: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ConversationRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    channel_id: uuid.UUID
    external_id: str
    sender_id: str
    sender_name: str
    email: str
    language: str
    ticket_id: uuid.UUID | None
    last_inbound_at: datetime | None
    reply_token: str | None
    reply_token_expires_at: datetime | None
    last_seq: int
    ended_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class OutboundMessage:
    delivery_id: uuid.UUID
    send_id: str
    seq: int
    text: str
    author_name: str
    ticket_id: uuid.UUID | None = None
    attachments: tuple[InboundAttachment, ...] = field(default=())


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retry: bool = True  # a failure worth trying again (False: dead at once, e.g. refused)
    error: str = ""
    used_reply_token: bool = False  # line: the token is spent


class SignedParser(Protocol):
    """The inbound half of an adapter reached by a signed webhook (api, line)."""

    kind: str

    def verify(
        self, secret: str, body: bytes, signature: str, timestamp: str, now: datetime
    ) -> bool: ...

    def parse(self, body: bytes, now: datetime) -> list[InboundMessage]:
        """The messages of a verified body; InvalidArgument for a body that is not one."""
        ...


class ChannelSender(Protocol):
    """The outbound half: one reply to the conversation's customer."""

    kind: str

    async def send(
        self,
        channel: ChannelRow,
        secret: str | None,
        token: str | None,
        conversation: ConversationRow,
        message: OutboundMessage,
        now: datetime,
    ) -> SendResult: ...


class ContentFetcher(Protocol):
    kind: str

    async def fetch(
        self, channel: ChannelRow, token: str | None, ref: ContentRef
    ) -> InboundAttachment: ...


class SenderNames(Protocol):
    """Optional, per kind (LINE: the profile API): the sender's display name when an
    inbound message came without one (`sender_name` ""). "" when the channel does not
    tell; never raises, and bounds its own wait."""

    kind: str

    async def display_name(
        self, channel: ChannelRow, token: str | None, message: InboundMessage
    ) -> str: ...


LINK_RECENT_S = 60.0


def awaits_link(seq: int, first_seq: int, linked: bool, first_at: datetime, now: datetime) -> bool:
    """Whether a new message's mail waits for its conversation's ticket before it is
    routed: a later message (not the first) of a conversation not yet linked to a ticket,
    whose first message came in the last LINK_RECENT_S. Two messages of a new conversation
    in the same moment would otherwise open two tickets (routing threads the second by the
    first's Message-ID, which tickets may not have filed yet). A first message that never
    became a ticket (a rule discarded it, tickets was down for long) holds nothing."""
    return seq > first_seq and not linked and (now - first_at).total_seconds() < LINK_RECENT_S
