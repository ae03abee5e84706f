"""Replies through a channel (issue 21; docs/channels.md, "Replies through channels").

A send whose recipient is a conversation's pseudo-address (`<id>@<kind>.channels.invalid`)
goes through the same outbox as any mail — approval, scheduled sends, cancelling,
exactly once, the ticket's timeline — but is handed to ingestion's
`ChannelsService.Deliver` instead of an SMTP server:

- when queued (an operator's send, an approval's hand-over), `CheckReply` at the
  sending time: a closed reply window refuses the send (409 `reply_window_closed`, the
  message naming when it closed); mailboxes and a conversation together are refused
  (`channel_mixed_recipients`, runtime.channel_address);
- when due, `Deliver` — which judges the window again, after its idempotency key (a
  scheduled send whose window closed meanwhile is refused and fails with
  `reply_window_closed: …`, worded by `CheckReply`) — with the send's id as the key, the reply's
  plain text (the text part; HTML reduced to text), the author's display name and the
  ticket: a receipt `refused` fails the send with its reason; `delivered`, `pending`
  (ingestion's deliverer retries it with back-off) and `dead` (listed for
  administrators, who retry it) mean ingestion has the reply in the conversation — the
  send is sent and filed in the ticket like any mail (RecordSent, by the finisher).
  A failed call is tried again with the outbox's back-off: Deliver is idempotent, so no
  "unknown" state is needed — a worker that dies mid-call leaves a row that is simply
  due again;
- automatic replies (the inbox's acknowledgement, a rule's auto-reply, a form's
  confirmation) never go to a channel; surveys and notifications do, as text with
  their links.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from switchboard.v1 import ingestion_channels_pb2

from services.runtime import log
from services.runtime.channel_address import ChannelTarget
from services.runtime.errors import DomainError, FailedPrecondition, Unavailable
from services.runtime.htmlsafe import html_text
from services.runtime.identity import Identity

from .changes import CHANNEL_ROUTE
from .domain import Outcome, Result, clip_reply
from .peers import Peers
from .records import Send

WINDOW_CLOSED = "reply_window_closed"  # the refusal's reason: 409 `reply_window_closed`
AUTOMATIC_KINDS = frozenset({"auto_reply", "form_confirmation"})
TEXT_MAX = 20_000  # characters of a channel message
_KIND_NAMES = {"chat": "the web chat", "api": "the API channel", "line": "LINE"}


def route_name(target: ChannelTarget) -> str:
    """What a send's `route` says for a channel reply."""
    return f"{CHANNEL_ROUTE}{target.kind}"


# Sends whose subject says what the message is (not a reply's "Re: …"): the text a
# channel's customer reads starts with it.
TITLED_KINDS = frozenset({"notification"})


def reply_text(raw: bytes, titled: bool = False) -> str:
    """The plain text of a built mail: its text part, else its HTML reduced to text;
    `titled`: after its subject as a first line."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    text = html_text(content) if part.get_content_subtype() == "html" else str(content)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    subject = " ".join(str(msg.get("Subject", "")).split())
    if titled and subject and text:
        text = f"{subject}\n\n{text}"
    return text[:TEXT_MAX]


def author_of(row: Send) -> str:
    """Who the customer sees as the reply's author: the operator, else the sender's name
    (the inbox, for a survey or a notification)."""
    if row.operator_name:
        return row.operator_name
    head = bytes(row.raw).split(b"\r\n\r\n", 1)[0]
    msg = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.default)
    return str(parseaddr(str(msg.get("From", "")))[0])


def _utc(ts: Any) -> str:
    return str(ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M UTC"))


def refusal(target: ChannelTarget, found: ingestion_channels_pb2.CheckReplyResponse) -> str:
    """Why a reply may not go, in words an operator (and an API client) can act on."""
    via = _KIND_NAMES.get(target.kind, target.kind)
    if found.reason == WINDOW_CLOSED:
        when = f" at {_utc(found.window_ends_at)}" if found.HasField("window_ends_at") else ""
        return (
            f"the conversation's reply window closed{when}: a reply can go through {via} "
            "only after the customer writes again"
        )
    return found.message or f"a reply cannot go through {via} ({found.reason or 'refused'})"


class ChannelReplies:
    def __init__(self, peers: Peers) -> None:
        self._peers = peers
        self._log = log.get("outbound.channels")

    async def check(self, tenant: str, target: ChannelTarget, at: datetime) -> None:
        """FailedPrecondition (`reply_window_closed` for a closed window) unless a reply
        may go to the conversation at `at`."""
        found = await self._peers.check_reply(
            Identity(tenant_id=tenant).metadata(), target.address, at
        )
        if not found.allowed:
            raise FailedPrecondition(
                refusal(target, found),
                field="to",
                reason=WINDOW_CLOSED if found.reason == WINDOW_CLOSED else None,
            )

    async def _why(
        self,
        tenant: str,
        target: ChannelTarget,
        now: datetime,
        receipt: ingestion_channels_pb2.DeliveryReceipt,
    ) -> str:
        """A refused delivery's reason: the window's, with its code, when that is why."""
        try:
            await self.check(tenant, target, now)
        except FailedPrecondition as err:
            return f"{err.reason}: {err.message}" if err.reason else err.message
        except DomainError:
            pass
        return receipt.error or "refused by the channel"

    async def deliver(self, row: Send, target: ChannelTarget, now: datetime) -> Result:
        """One attempt: the reply handed to the channel, which judges the reply window
        itself — after its idempotency key, so that a retry of a reply delivered before
        the window closed is that delivery, not a refusal."""
        if row.kind in AUTOMATIC_KINDS:
            return Result(Outcome.PERMANENT, 0, "automatic replies never go to a channel")
        tenant = str(row.tenant_id)
        md = Identity(tenant_id=tenant).metadata()
        text = reply_text(bytes(row.raw), titled=row.kind in TITLED_KINDS)
        if not text:
            return Result(Outcome.PERMANENT, 0, "the reply has no text to send")
        try:
            receipt = await self._peers.deliver(
                md,
                ingestion_channels_pb2.DeliverRequest(
                    send_id=str(row.id),
                    address=target.address,
                    conversation_id=str(target.conversation_id),
                    text=text,
                    author_name=author_of(row),
                    ticket_id=str(row.ticket_id or ""),
                ),
            )
        except Unavailable as err:
            return Result(Outcome.TEMPORARY, 0, clip_reply(f"the channel service: {err.message}"))
        except FailedPrecondition as err:
            why = f"{err.reason}: {err.message}" if err.reason else err.message
            return Result(Outcome.PERMANENT, 0, clip_reply(why))
        except DomainError as err:
            return Result(Outcome.PERMANENT, 0, clip_reply(err.message))
        self._log.info(
            "channel reply handed over",
            kind=target.kind,
            conversation_id=str(target.conversation_id),
            delivery_id=receipt.delivery_id,
            state=receipt.state,
            duplicate=receipt.duplicate,
        )
        if receipt.state == "refused":
            why = await self._why(tenant, target, now, receipt)
            return Result(Outcome.PERMANENT, 0, clip_reply(why))
        note = {
            "delivered": f"delivered through {target.kind} (message {receipt.seq})",
            "pending": f"handed to {target.kind}: the channel delivers it (with retries)",
            "dead": f"handed to {target.kind}: its delivery failed ({receipt.error}) — "
            "listed for administrators to retry",
        }.get(receipt.state, f"handed to {target.kind} ({receipt.state})")
        return Result(Outcome.SENT, 0, clip_reply(note))
