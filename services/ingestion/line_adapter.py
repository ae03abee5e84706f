"""LINE's inbound side (issue 21, docs/channels.md "LINE"): the `SignedParser` of kind
"line". Pure: no I/O here.

LINE posts a webhook to `/hooks/line/{public_key}` with `X-Line-Signature`: the base64 of
HMAC-SHA256 over the raw body, keyed with the channel secret. The body is
`{"destination": <bot user id>, "events": [...]}`; the console's "Verify" button sends an
empty `events` list. Of the events, `message` events become `InboundMessage`s:

- the conversation is where the message came from: `source.groupId`, `source.roomId`,
  else `source.userId` (a group chat is one conversation, one ticket); the sender is
  `source.userId` (its display name comes from the profile API, line_client.py);
- the idempotency key is the message id (`m:<id>`), else the `webhookEventId`: a
  redelivered event (`deliveryContext.isRedelivery`) carries the same ids, so it is the
  same message and stored once;
- text → the text; image, video, audio and file → a `ContentRef` the content API serves
  (`contentProvider.type` "line"); an image hosted elsewhere (`external`) and stickers and
  locations become a line of text, never a fetch of a URL a customer chose;
- the reply token (one use, usable "within one minute after receiving the webhook") is
  kept with an expiry of `REPLY_TOKEN_TTL_S` after receipt (a margin below LINE's
  minute); a redelivered event's token is not kept (LINE delivered it late).

Other event types (follow, unfollow, postback, join, …) are acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from services.runtime.errors import InvalidArgument

from .channel_model import ContentRef, InboundMessage

KIND = "line"
SIGNATURE_HEADER = "X-Line-Signature"
REPLY_TOKEN_TTL_S = 50  # LINE: use a reply token within one minute of the webhook
TEXT_MAX = 5000  # LINE's limit of a text message object, in and out
MAX_EVENTS = 500  # a body with more is not LINE's

# message.type → (the attachment's name prefix, its content type until the content API
# answers with the real one)
_CONTENT = {
    "image": ("image", "image/jpeg", ".jpg"),
    "video": ("video", "video/mp4", ".mp4"),
    "audio": ("audio", "audio/m4a", ".m4a"),
    "file": ("file", "application/octet-stream", ""),
}
_NOTE = {
    "sticker": "[スタンプ / sticker]",
    "location": "[位置情報 / location]",
    # a text of only blanks: kept as a note, since a message refused here is lost for
    # good (LINE does not redeliver) and would refuse the other events of its webhook
    "blank": "[空白のみのメッセージ / a message of blanks only]",
}


def signature(secret: str, body: bytes) -> str:
    """`X-Line-Signature` of `body` for a channel secret: base64(HMAC-SHA256)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode("ascii"), header.strip().encode())


def _str(node: Any, key: str) -> str:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, str) else ""


def _sent_at(event: dict[str, Any]) -> datetime | None:
    ms = event.get("timestamp")
    if isinstance(ms, bool) or not isinstance(ms, int) or ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _body_of(message: dict[str, Any]) -> tuple[str, tuple[ContentRef, ...]]:
    kind = _str(message, "type")
    message_id = _str(message, "id")
    if kind == "text":
        text = _str(message, "text")
        return (text if text.strip() else _NOTE["blank"]), ()
    if kind in _CONTENT:
        prefix, content_type, ext = _CONTENT[kind]
        provider = message.get("contentProvider")
        provider_type = _str(provider, "type") or "line"
        if provider_type != "line":
            url = _str(provider, "originalContentUrl")
            return f"[{prefix}: {url}]" if url else f"[{prefix}]", ()
        name = _str(message, "fileName") or f"{prefix}-{message_id}{ext}"
        return "", (ContentRef(ref=message_id, name=name, content_type=content_type),)
    if kind == "location":
        parts = [_str(message, "title"), _str(message, "address")]
        lat, lon = message.get("latitude"), message.get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            parts.append(f"{lat},{lon}")
        detail = " ".join(p for p in parts if p)
        return f"{_NOTE['location']} {detail}".strip(), ()
    return _NOTE.get(kind, f"[{kind or 'message'}]"), ()


def parse_events(body: bytes, now: datetime) -> list[InboundMessage]:
    """The message events of a webhook body; InvalidArgument for a body that is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("the body is not JSON", field="body") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise InvalidArgument("the body has no events list", field="events")
    events = doc["events"]
    if len(events) > MAX_EVENTS:
        raise InvalidArgument(f"more than {MAX_EVENTS} events", field="events")
    out: list[InboundMessage] = []
    for event in events:
        if not isinstance(event, dict) or _str(event, "type") != "message":
            continue
        message = event.get("message")
        source = event.get("source")
        if not isinstance(message, dict) or not isinstance(source, dict):
            continue
        user_id = _str(source, "userId")
        external = _str(source, "groupId") or _str(source, "roomId") or user_id
        message_id = _str(message, "id")
        event_id = _str(event, "webhookEventId")
        key = f"m:{message_id}" if message_id else (f"e:{event_id}" if event_id else "")
        if not external or not key:
            continue
        text, fetch = _body_of(message)
        context = event.get("deliveryContext")
        redelivered = isinstance(context, dict) and context.get("isRedelivery") is True
        token = "" if redelivered else _str(event, "replyToken")
        out.append(
            InboundMessage(
                external_id=external,
                sender_id=user_id,
                sender_name="",  # the profile API's display name (line_client.py)
                text=text,
                key=key,
                sent_at=_sent_at(event),
                fetch=fetch,
                reply_token=token,
                reply_token_expires_at=(
                    now + timedelta(seconds=REPLY_TOKEN_TTL_S) if token else None
                ),
            )
        )
    return out


class LineParser:
    """`SignedParser` "line": the timestamp argument is unused (LINE signs the body only;
    a replayed body is a redelivery and stored once by its ids)."""

    kind = KIND

    def verify(
        self, secret: str, body: bytes, signature: str, timestamp: str, now: datetime
    ) -> bool:
        return verify_signature(secret, body, signature)

    def parse(self, body: bytes, now: datetime) -> list[InboundMessage]:
        return parse_events(body, now)
