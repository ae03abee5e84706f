"""The web chat's visitor side (issue 21, ING-6), without I/O: the visitor token, what a
visitor may send (size, key, name, address), the per-visitor rate, when a returning
visitor starts a new conversation.

A visitor token names the channel, the visitor and the visitor's current conversation
(its external id): `[channel_id, visitor_id, external_id]`, signed by ingestion with a
key derived from `SB_SECRET_KEY` (HMAC through itsdangerous, salted apart from every
other token). It does not expire: the widget keeps it in the visitor's localStorage to
come back to the same conversation; a visitor whose conversation ended (EndChat, or idle)
or whose ticket was resolved gets a new external id — a new conversation, a new ticket —
under the same visitor id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted

_SALT = "switchboard.chat-visitor"
TOKEN_MAX = 400
KEY_MAX = 100
NAME_MAX = 100
EMAIL_MAX = 254
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDR = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
LANGUAGES = ("ja", "en")
# statuses of a ticket after which a returning visitor starts a new conversation
DONE_STATUSES = frozenset({"resolved", "no_action", "trash"})


@dataclass(frozen=True)
class ChatLimits:
    max_chars: int = 2000  # one message
    per_minute: int = 20  # messages of one visitor (conversation) a minute
    idle_end_s: float = 1800.0  # a conversation quiet this long ends (its transcript goes)


@dataclass(frozen=True)
class Visitor:
    channel_id: str
    visitor_id: str
    external_id: str


def derived_secret(secret_key: str) -> str:
    """The visitor tokens' key, derived from ingestion's secret_key."""
    return hmac.new(secret_key.encode(), b"chat-visitor-tokens", hashlib.sha256).hexdigest()


def chat_secret(secret_key: str | None) -> str:
    """The visitor tokens' key; without a secret_key (a bare development process) one of
    this process only: visitors then start anew after a restart."""
    return derived_secret(secret_key or secrets.token_hex(32))


def sign_visitor(secret: str, visitor: Visitor) -> str:
    token: str = URLSafeSerializer(secret, salt=_SALT).dumps(
        [visitor.channel_id, visitor.visitor_id, visitor.external_id]
    )
    return token


def read_visitor(secret: str, token: str) -> Visitor:
    """The visitor a token names; NotFound (field visitor_token) for any token that is not
    one of ours — a stranger learns nothing more."""
    if not token or len(token) > TOKEN_MAX:
        raise NotFound("no such chat", field="visitor_token")
    try:
        got = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except BadSignature:
        raise NotFound("no such chat", field="visitor_token") from None
    if (
        not isinstance(got, list)
        or len(got) != 3
        or not all(isinstance(x, str) and 0 < len(x) <= 64 for x in got)
    ):
        raise NotFound("no such chat", field="visitor_token")
    return Visitor(got[0], got[1], got[2])


def check_text(raw: str, limits: ChatLimits) -> str:
    """A message's text: line breaks normalised, control characters dropped, not empty,
    at most `max_chars` characters — InvalidArgument naming `text` otherwise."""
    text = _CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise InvalidArgument("the message is empty", field="text")
    if len(text) > limits.max_chars:
        raise InvalidArgument(
            f"a chat message is at most {limits.max_chars} characters", field="text"
        )
    return text


def check_key(raw: str) -> str:
    """The client's id of a message (its idempotency key)."""
    if not _KEY.match(raw or ""):
        raise InvalidArgument("key is required: 1–100 letters, digits or . _ : -", field="key")
    return raw


def clean_name(raw: str) -> str:
    """A visitor's name as it may appear in a mail header and the operator's view: one
    line, no control characters, NFC, at most 100 characters (silently trimmed)."""
    name = " ".join(_ONE_LINE.sub(" ", unicodedata.normalize("NFC", raw or "")).split())
    return name[:NAME_MAX]


def check_email(raw: str) -> str:
    """A visitor's address for the transcript ("" when none)."""
    email = (raw or "").strip()
    if not email:
        return ""
    if len(email) > EMAIL_MAX or not _ADDR.match(email):
        raise InvalidArgument("not a mail address", field="email")
    return email


def language(raw: str) -> str:
    code = (raw or "").strip().lower()[:2]
    return code if code in LANGUAGES else "en"


def starts_anew(ended_at: datetime | None, ticket_status: str) -> bool:
    """Whether a returning visitor's next message starts a new conversation: the last one
    ended, or its ticket was resolved (or set aside: no action, trash)."""
    return ended_at is not None or ticket_status in DONE_STATUSES


def check_rate(sent_last_minute: int, limits: ChatLimits) -> None:
    """ResourceExhausted when the visitor sent `per_minute` messages in the last minute."""
    if sent_last_minute >= limits.per_minute:
        raise ResourceExhausted(
            f"at most {limits.per_minute} chat messages a minute; wait a moment",
            field="text",
            retry_after_s=10,
        )


def idle_before(now: datetime, limits: ChatLimits) -> datetime:
    return now - timedelta(seconds=limits.idle_end_s)
