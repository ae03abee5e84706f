"""Threading rules (TKT-1; ADR 0006, amended by ADR 0009), free of I/O.

Which ticket a received mail belongs to, tried in this order:
1. a reference (In-Reply-To, References) to one of *our* outgoing Message-IDs. Ours are
   `sb.<ticket>.<nonce>.<mac>@<domain>`, the mac an HMAC-SHA256 over tenant, ticket and
   nonce with the service's thread key: a reply to our mail lands in its ticket, whichever
   of the tenant's inboxes it was sent to and whoever sends it (the id is unguessable; a
   forwarded copy carries it, so a sender who is not a participant is marked a
   `stranger` on the message); a forged reference (a made-up mac) is ignored;
2. a reference to a Message-ID of a mail filed in one of the tenant's tickets — only a
   ticket of the inbox the mail was sent to, and only when the sender is a participant
   of it (a Message-ID is no secret: customers forward mail and Cc others). References
   that look like ours are only ever trusted through their mac;
3. a ticket tag `[#123]` in the subject, on the same terms as 2;
4. otherwise a new ticket.
A participant of a ticket (`is_participant` in repo.py) is, compared without case: the
ticket's customer (its sender address, or an address of its contact), or a sender, To or
Cc address of a mail filed in it that is not a stranger's — the customer's mail, mail of
other participants, and the mail we sent (whom an operator chose to write to). A
stranger's mail makes nobody a participant.
A reply to a resolved / no-action ticket reopens it, unless the inbox says to start a new
ticket once the old one has been closed for more than N days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.runtime.errors import InvalidArgument

from .domain import CLOSED, Status

MAX_REFERENCES = 50
_SIGNED = re.compile(r"^sb\.([0-9a-f]{32})\.([a-z2-7]{8})\.([a-z2-7]{16})@", re.IGNORECASE)
_TAG = re.compile(r"\[#(\d{1,12})\]")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class Reason(StrEnum):
    SIGNED = "signed_reference"
    REFERENCE = "reference"
    SUBJECT_TAG = "subject_tag"
    SENT = "sent"  # a mail we sent, filed by routing in the ticket it was sent from
    NEW = ""


def thread_key(secret: str) -> bytes:
    """The HMAC key derived from the configured secret (SB_THREAD_KEY)."""
    return hashlib.sha256(b"switchboard/thread-message-id/v1\0" + secret.encode()).digest()


def _mac(key: bytes, tenant_id: str, ticket_hex: str, nonce: str) -> str:
    digest = hmac.new(key, f"{tenant_id}|{ticket_hex}|{nonce}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()  # 80 bits, 16 characters


def mint_message_id(key: bytes, tenant_id: str, ticket_id: str, nonce: bytes, domain: str) -> str:
    """A Message-ID (without <>) for a mail we send on `ticket_id`; `nonce` is 5 random
    bytes, so every mail gets its own id."""
    if not _DOMAIN.match(domain) or ".." in domain:
        raise InvalidArgument("domain is not a valid domain name", field="domain")
    if len(nonce) != 5:
        raise ValueError("the nonce is 5 bytes")
    ticket_hex = uuid.UUID(ticket_id).hex
    n = base64.b32encode(nonce).decode().lower()
    return f"sb.{ticket_hex}.{n}.{_mac(key, tenant_id, ticket_hex, n)}@{domain.lower()}"


def looks_signed(message_id: str) -> bool:
    return bool(_SIGNED.match(message_id.strip("<> ")))


def verified_ticket(key: bytes | None, tenant_id: str, message_id: str) -> uuid.UUID | None:
    """The ticket a Message-ID of ours names, when its mac is right for this tenant."""
    m = _SIGNED.match(message_id.strip("<> "))
    if m is None or key is None:
        return None
    ticket_hex, nonce, mac = (g.lower() for g in m.groups())
    if not hmac.compare_digest(_mac(key, tenant_id, ticket_hex, nonce), mac):
        return None
    return uuid.UUID(ticket_hex)


def references(in_reply_to: str, refs: list[str]) -> list[str]:
    """The mail's references, most recent first (In-Reply-To, then References from the
    end), without duplicates or empties, at most MAX_REFERENCES."""
    out: list[str] = []
    for r in [in_reply_to, *reversed(refs)]:
        r = r.strip().strip("<>").strip()
        if r and r not in out and len(r) <= 998:
            out.append(r)
    return out[:MAX_REFERENCES]


def subject_tag(subject: str) -> int | None:
    """The ticket number of the last `[#123]` tag in a subject."""
    found = _TAG.findall(subject)
    return int(found[-1]) if found else None


def tag_for(number: int) -> str:
    return f"[#{number}]"


@dataclass(frozen=True, slots=True)
class Found:
    """A ticket a received mail may belong to, as a lookup found it (after merges)."""

    ticket_id: uuid.UUID
    inbox_id: uuid.UUID  # the ticket's inbox now
    reason: Reason  # SIGNED, REFERENCE or SUBJECT_TAG: how it was found
    sender_is_participant: bool


def may_join(found: Found, inbox_id: uuid.UUID | None) -> bool:
    """Whether the mail, received by `inbox_id`, may join the ticket found for it: through
    our signed Message-ID always (any inbox of the tenant); through a plain reference or a
    subject tag only a ticket of the same inbox, and only from a participant."""
    if found.reason is Reason.SIGNED:
        return True
    if found.reason in (Reason.REFERENCE, Reason.SUBJECT_TAG):
        return found.inbox_id == inbox_id and found.sender_is_participant
    return False


def is_stranger(*, channel: str, joined: bool, sender_is_participant: bool) -> bool:
    """Whether a filed mail is marked as a stranger's: a received mail that joined an
    existing ticket although its sender is not a participant (only our signed id lets
    it). The first mail of a ticket is its customer's; a mail we sent is ours."""
    return joined and channel != "sent" and not sender_is_participant


class Join(StrEnum):
    APPEND = "append"  # file the mail in the ticket as it is
    REOPEN = "reopen"  # file it and set the ticket back to open
    NEW = "new"  # the old ticket is closed too long: start a new one


def join_existing(
    status: Status,
    closed_at: datetime | None,
    now: datetime,
    new_ticket_after_days: int,
    *,
    mail_is_junk: bool,
) -> Join:
    """What a customer's reply does to the ticket it belongs to: every customer reply
    lands in open (TKT-2), except junk (spam / blocked) which changes no status; a ticket
    closed longer than the inbox's limit gives way to a new one."""
    if mail_is_junk:
        return Join.APPEND
    if status in CLOSED and new_ticket_after_days > 0 and closed_at is not None:
        if now - closed_at > timedelta(days=new_ticket_after_days):
            return Join.NEW
    if status is Status.OPEN:
        return Join.APPEND
    return Join.REOPEN
