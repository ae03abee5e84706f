"""The mail a channel message becomes (issue 21, ING-6; docs/channels.md, ADR 0010). Pure.

Every inbound message of a channel (chat, api, line) is stored as an ordinary RFC 822 mail,
so routing, SLA, search, the body view, exports and reports treat it like any other:

- From: `"<sender name>" <conversation_id@<kind>.channels.invalid>` (the pseudo-address),
- To: the inbox's address,
- Subject: `Chat: <first words>` / `API: …` / `LINE: …` of the conversation's first
  message, the same for every later one,
- Message-ID `<conversation_id.seq@<kind>.channels.invalid>`; every later message carries
  the first one's in In-Reply-To and References, so routing threads them into one ticket,
- `X-Switchboard-Channel: <kind>`, a text/plain UTF-8 body, attachments as MIME parts.

The sender's name is untrusted: header values are built by the email package from parts
with every control character (CR, LF, NUL …) replaced, so nothing can reach a header line.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from .channel_model import PSEUDO_DOMAIN, InboundAttachment

SUBJECT_PREFIX = {"chat": "Chat", "api": "API", "line": "LINE"}
SUBJECT_WORDS = 60  # characters of the first message in the subject
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")


def one_line(text: str, limit: int) -> str:
    """A header-safe single line: control characters (CR, LF, NUL …) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def message_id(conversation_id: uuid.UUID | str, seq: int, kind: str) -> str:
    return f"<{conversation_id}.{seq}@{kind}.{PSEUDO_DOMAIN}>"


def subject(kind: str, first_text: str, sender_name: str = "") -> str:
    """`Chat: <first words>`; the sender's name when the first message has no text."""
    words = one_line(first_text, 10_000)
    if len(words) > SUBJECT_WORDS:
        words = words[:SUBJECT_WORDS].rstrip() + "…"
    if not words:
        words = one_line(sender_name, 80) or "(no text)"
    return f"{SUBJECT_PREFIX.get(kind, kind)}: {words}"


def body_text(text: str) -> str:
    """The body: line endings normalised, control characters other than tab dropped."""
    return _BODY_CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True)
class ChannelMail:
    kind: str
    conversation_id: uuid.UUID
    seq: int
    first_seq: int  # the conversation's first inbound message (its Message-ID threads)
    first_text: str  # … and its text (the subject)
    sender_name: str
    inbox_address: str
    text: str
    sent_at: datetime
    channel_name: str = ""
    attachments: Sequence[InboundAttachment] = ()


def to_mail(m: ChannelMail) -> bytes:
    msg = EmailMessage()
    msg["From"] = Address(
        display_name=one_line(m.sender_name, MAX_NAME),
        username=str(m.conversation_id),
        domain=f"{m.kind}.{PSEUDO_DOMAIN}",
    )
    msg["To"] = m.inbox_address
    msg["Subject"] = subject(m.kind, m.first_text, m.sender_name)
    msg["Date"] = format_datetime(m.sent_at)
    msg["Message-ID"] = message_id(m.conversation_id, m.seq, m.kind)
    if m.seq != m.first_seq:
        first = message_id(m.conversation_id, m.first_seq, m.kind)
        msg["In-Reply-To"] = first
        msg["References"] = first
    msg["X-Switchboard-Channel"] = m.kind
    if m.channel_name:
        msg["X-Switchboard-Channel-Name"] = one_line(m.channel_name, MAX_NAME)
    msg.set_content(body_text(m.text) + "\n", charset="utf-8")
    for att in m.attachments:
        ctype = att.content_type if _TYPE.match(att.content_type or "") else ""
        maintype, _, subtype = (ctype or "application/octet-stream").lower().partition("/")
        msg.add_attachment(
            att.content,
            maintype=maintype,
            subtype=subtype,
            filename=one_line(att.name, 200) or "attachment",
        )
    return msg.as_bytes()
