"""A channel conversation's customer as an address (issue 21, docs/channels.md): every
service that meets an address — ingestion synthesising a channel's mail, composition
addressing a reply, outbound delivering it — tells a conversation's pseudo-address
`<conversation id>@<kind>.channels.invalid` from a mailbox here. Pure: no I/O.

A reply goes either to mailboxes (by SMTP) or to exactly one conversation (through the
channel, `ChannelsService.Deliver`); never to both, never to two conversations at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from services.runtime.errors import FailedPrecondition

KINDS = ("chat", "api", "line")
PSEUDO_DOMAIN = "channels.invalid"  # RFC 2606: never resolves, never mailed
MIXED_RECIPIENTS = "channel_mixed_recipients"  # a refusal's reason (409)


def pseudo_address(conversation_id: uuid.UUID | str, kind: str) -> str:
    """The conversation's customer as an address: `<conversation id>@<kind>.channels.invalid`.
    Contacts, routing rules, threading and outbound see an address like any other;
    outbound delivers a reply to such an address through the channel, never by SMTP."""
    return f"{conversation_id}@{kind}.{PSEUDO_DOMAIN}"


def parse_pseudo_address(address: str) -> tuple[uuid.UUID, str] | None:
    """(conversation id, kind) of a pseudo-address, or None for any other address.
    A display name around it (`"Taro" <…>`) is allowed."""
    text = address.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    local, sep, domain = text.strip().lower().rpartition("@")
    if not sep:
        return None
    kind, dot, rest = domain.partition(".")
    if not dot or rest != PSEUDO_DOMAIN or kind not in KINDS:
        return None
    try:
        return uuid.UUID(local), kind
    except ValueError:
        return None


def is_pseudo_address(address: str) -> bool:
    return parse_pseudo_address(address) is not None


@dataclass(frozen=True)
class ChannelTarget:
    """The one conversation a reply goes to."""

    conversation_id: uuid.UUID
    kind: str
    address: str  # the pseudo-address, as written canonically


def channel_target(recipients: Iterable[str], *, field: str = "to") -> ChannelTarget | None:
    """None when every recipient is a mailbox (a mail); the conversation when every one is
    the same conversation's pseudo-address. Mailboxes and a conversation together, or
    two conversations, are refused (FailedPrecondition `channel_mixed_recipients`): a
    chat message cannot be copied to a mailbox, nor a mail to a chat."""
    found: dict[uuid.UUID, str] = {}
    mailboxes: list[str] = []
    for raw in recipients:
        parsed = parse_pseudo_address(raw)
        if parsed is None:
            if raw.strip():
                mailboxes.append(raw.strip())
        else:
            found[parsed[0]] = parsed[1]
    if not found:
        return None
    if mailboxes:
        raise FailedPrecondition(
            "a reply through a channel (chat, API, LINE) goes to its conversation only: "
            f"remove the mail recipients ({', '.join(mailboxes[:3])}) or send them a "
            "separate mail",
            field=field,
            reason=MIXED_RECIPIENTS,
        )
    if len(found) > 1:
        raise FailedPrecondition(
            "a reply through a channel goes to one conversation: send each its own reply",
            field=field,
            reason=MIXED_RECIPIENTS,
        )
    conversation_id, kind = next(iter(found.items()))
    return ChannelTarget(conversation_id, kind, pseudo_address(conversation_id, kind))
