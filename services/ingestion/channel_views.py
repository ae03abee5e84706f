"""The protobuf forms of channels, conversations, transcript rows and deliveries
(issue 21), and the check of a channel kind's settings — shared by ChannelsService and
ChatService. Pure."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import json_format
from switchboard.v1 import ingestion_channels_pb2 as C

from services.runtime.errors import InvalidArgument
from services.runtime.ids import parse_uuid

from .channel_model import (
    CAPABILITIES,
    MAX_REPLY_WINDOW_S,
    ChannelRow,
    ConversationRow,
    pseudo_address,
    reply_window_s,
)
from .channel_repo import DeliveryRow, Transcript

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?$"
)


def ts(pb: Any, name: str, value: Any) -> None:
    if value is not None:
        getattr(pb, name).FromDatetime(value)


def capabilities_pb(kind: str, window_s: int | None = None) -> C.ChannelCapabilities:
    """The kind's capabilities; `window_s`: the channel's own reply window (api)."""
    c = CAPABILITIES[kind]
    return C.ChannelCapabilities(
        threading=c.threading,
        attachments_in=c.attachments_in,
        attachments_out=c.attachments_out,
        typing=c.typing,
        reply_window_s=c.reply_window_s if window_s is None else window_s,
        delivery_receipts=c.delivery_receipts,
    )


def channel_pb(row: ChannelRow) -> C.Channel:
    pb = C.Channel(
        id=str(row.id),
        kind=row.kind,
        inbox_id=str(row.inbox_id),
        name=row.name,
        enabled=row.enabled,
        public_key=row.public_key,
        secret_hint=row.secret_hint,
        token_set=row.token_set,
        capabilities=capabilities_pb(row.kind, reply_window_s(row.kind, row.settings)),
    )
    json_format.ParseDict(row.settings, getattr(pb, row.kind), ignore_unknown_fields=True)
    ts(pb, "created_at", row.created_at)
    ts(pb, "updated_at", row.updated_at)
    return pb


def conversation_pb(
    conv: ConversationRow, kind: str, inbox_id: uuid.UUID, window: Any, sees_addresses: bool
) -> C.Conversation:
    pb = C.Conversation(
        id=str(conv.id),
        channel_id=str(conv.channel_id),
        kind=kind,
        inbox_id=str(inbox_id),
        external_id=conv.external_id,
        sender_name=conv.sender_name,
        email=conv.email if sees_addresses or not conv.email else "***",
        ticket_id=str(conv.ticket_id or ""),
        last_seq=conv.last_seq,
        capabilities=capabilities_pb(kind),
        address=pseudo_address(conv.id, kind),
    )
    ts(pb, "last_inbound_at", conv.last_inbound_at)
    ts(pb, "ended_at", conv.ended_at)
    ts(pb, "reply_window_ends_at", window)
    return pb


def message_pb(t: Transcript) -> C.ChatMessage:
    pb = C.ChatMessage(
        seq=t.seq,
        direction=t.direction,
        text=t.text,
        author_name=t.author_name,
        key=t.key,
        attachments=[
            C.Attachment(
                name=a.get("name", ""),
                content_type=a.get("content_type", ""),
                size=int(a.get("size", 0)),
            )
            for a in t.attachments
        ],
    )
    pb.created_at.FromDatetime(t.created_at)
    return pb


def delivery_pb(d: DeliveryRow) -> C.Delivery:
    pb = C.Delivery(
        id=str(d.id),
        channel_id=str(d.channel_id),
        channel_name=d.channel_name,
        kind=d.kind,
        conversation_id=str(d.conversation_id),
        ticket_id=str(d.ticket_id or ""),
        send_id=d.send_id,
        state=d.state,
        attempts=d.attempts,
        last_error=d.last_error,
    )
    ts(pb, "created_at", d.created_at)
    if d.state == "pending":
        ts(pb, "next_attempt_at", d.next_attempt_at)
    ts(pb, "delivered_at", d.delivered_at)
    return pb


def check_settings(kind: str, pb: Any) -> dict[str, Any]:
    """A kind's settings checked (InvalidArgument naming `<kind>.<field>`), as stored."""
    if kind == "chat":
        for origin in pb.allowed_origins:
            if not _ORIGIN.match(origin) or len(origin) > 300:
                raise InvalidArgument(
                    f"{origin!r} is not an origin like https://shop.example",
                    field="chat.allowed_origins",
                )
        if pb.colour and not _COLOUR.match(pb.colour):
            raise InvalidArgument("a colour like #0b57d0", field="chat.colour")
        if pb.position not in ("", "right", "left"):
            raise InvalidArgument("right or left", field="chat.position")
        for name in ("greeting_ja", "greeting_en"):
            if len(getattr(pb, name)) > 500:
                raise InvalidArgument("at most 500 characters", field=f"chat.{name}")
        if pb.offline_form_id:
            parse_uuid(pb.offline_form_id, "chat.offline_form_id")
    elif kind == "api":
        url = pb.webhook_url
        parts = urlsplit(url)
        if url and (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or len(url) > 2000
            or any(c in url for c in "\r\n\0 \t")
        ):
            raise InvalidArgument("an http(s) URL", field="api.webhook_url")
        if not 0 <= pb.reply_window_s <= MAX_REPLY_WINDOW_S:
            raise InvalidArgument(
                f"seconds from 0 (none) to {MAX_REPLY_WINDOW_S} (30 days)",
                field="api.reply_window_s",
            )
    elif kind == "line" and len(pb.bot_user_id) > 100:
        raise InvalidArgument("at most 100 characters", field="line.bot_user_id")
    return dict(json_format.MessageToDict(pb, preserving_proto_field_name=True))
