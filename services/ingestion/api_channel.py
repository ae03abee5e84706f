"""The API channel (issue 21; docs/channels.md "API channel"): a customer's bridge to any
messaging service, in a few lines of code.

In: `POST /api/v1/channel-hooks/{public_key}/messages` with `X-Switchboard-Timestamp` and
`X-Switchboard-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` (the same
signing as the rule webhooks, services/runtime/signing.py); a timestamp more than 300 s
off, or a bad signature, is refused. Body: `{"messages": [{"id", "conversation",
"sender": {"id", "name"}, "text", "sent_at"?, "attachments": [{"name", "content_type",
"content_base64"}]}]}`, at most 100 messages.

Out: each reply is POSTed, signed the same way plus `X-Switchboard-Delivery`, to the
channel's `webhook_url` as `{"type": "message", "delivery_id", "channel_id",
"conversation", "text", "author": {"name"}, "sent_at", "ticket_id"}`; a 2xx is delivered.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from services.runtime import signing
from services.runtime.errors import InvalidArgument
from services.runtime.webhook_http import WebhookPoster

from .channel_model import (
    ChannelRow,
    ConversationRow,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    SendResult,
)

MAX_MESSAGES = 100


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(node: dict[str, Any], key: str, field: str, *, required: bool = False) -> str:
    value = node.get(key, "")
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool) and key in ("id",):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidArgument("a string", field=field)
    if required and not value.strip():
        raise InvalidArgument(f"{field} is required", field=field)
    return value


def _attachment(node: Any, field: str) -> InboundAttachment:
    if not isinstance(node, dict):
        raise InvalidArgument("an object", field=field)
    name = _str(node, "name", f"{field}.name")
    ctype = _str(node, "content_type", f"{field}.content_type") or "application/octet-stream"
    data = _str(node, "content_base64", f"{field}.content_base64", required=True)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("not base64", field=f"{field}.content_base64") from None
    return InboundAttachment(name=name or "attachment", content_type=ctype, content=content)


def _message(node: Any, n: int) -> InboundMessage:
    at = f"messages[{n}]"
    if not isinstance(node, dict):
        raise InvalidArgument("an object", field=at)
    sender = node.get("sender") or {}
    if not isinstance(sender, dict):
        raise InvalidArgument("an object", field=f"{at}.sender")
    sent_at = None
    raw_at = _str(node, "sent_at", f"{at}.sent_at")
    if raw_at:
        try:
            sent_at = datetime.fromisoformat(raw_at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument("an ISO 8601 time", field=f"{at}.sent_at") from None
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
    attachments = node.get("attachments") or []
    if not isinstance(attachments, list):
        raise InvalidArgument("a list", field=f"{at}.attachments")
    sender_id = _str(sender, "id", f"{at}.sender.id")
    return InboundMessage(
        external_id=_str(node, "conversation", f"{at}.conversation", required=True),
        sender_id=sender_id,
        sender_name=_str(sender, "name", f"{at}.sender.name") or sender_id,
        text=_str(node, "text", f"{at}.text"),
        key=_str(node, "id", f"{at}.id", required=True),
        sent_at=sent_at,
        attachments=tuple(
            _attachment(a, f"{at}.attachments[{i}]") for i, a in enumerate(attachments)
        ),
    )


class ApiParser:
    """The API channel's SignedParser."""

    kind = "api"

    def verify(
        self, secret: str, body: bytes, signature: str, timestamp: str, now: datetime
    ) -> bool:
        return signing.fresh(timestamp, now.timestamp()) and signing.verify(
            secret, timestamp, body, signature
        )

    def parse(self, body: bytes, now: datetime) -> list[InboundMessage]:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidArgument("the body is not JSON (UTF-8)", field="body") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            raise InvalidArgument("a list of messages is required", field="messages")
        items = doc["messages"]
        if not items or len(items) > MAX_MESSAGES:
            raise InvalidArgument(f"1 to {MAX_MESSAGES} messages", field="messages")
        return [_message(m, n) for n, m in enumerate(items)]


def reply_body(
    channel: ChannelRow, conversation: ConversationRow, message: OutboundMessage, now: datetime
) -> bytes:
    doc = {
        "type": "message",
        "delivery_id": str(message.delivery_id),
        "channel_id": str(channel.id),
        "conversation": conversation.external_id,
        "text": message.text,
        "author": {"name": message.author_name},
        "sent_at": _iso(now),
        "ticket_id": str(message.ticket_id or ""),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class ApiSender:
    """The API channel's ChannelSender: the signed POST to the channel's webhook_url."""

    kind = "api"

    def __init__(self, poster: WebhookPoster) -> None:
        self._poster = poster

    async def send(
        self,
        channel: ChannelRow,
        secret: str | None,
        token: str | None,
        conversation: ConversationRow,
        message: OutboundMessage,
        now: datetime,
    ) -> SendResult:
        url = str(channel.settings.get("webhook_url") or "")
        if not url:
            return SendResult(False, retry=False, error="the channel has no webhook_url")
        if not secret:
            return SendResult(False, retry=False, error="the channel has no secret")
        body = reply_body(channel, conversation, message, now)
        headers = signing.headers(secret, str(message.delivery_id), int(now.timestamp()), body)
        outcome = await self._poster.post(url, body, headers)
        return SendResult(outcome.ok, retry=not outcome.final, error=outcome.error)
