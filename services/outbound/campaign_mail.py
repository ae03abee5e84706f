"""A campaign's mails (issue 20, OUT-6): each recipient's mail rendered and written as an
outbox item of kind `campaign` (many in one statement, with their `send.changed`), the
sends' outcomes carried back to their recipients (`sent`, `failed`) in batches, and the
mail ingestion receives that concerns a campaign: a reply to one of its mails marks the
recipient `replied`, a hard bounce `bounced`. The reply itself becomes a ticket in the
campaign's inbox by routing's normal path (its To is the inbox's address)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from email.header import Header
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.bus import Delivery
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument
from services.runtime.periodic import PeriodicTask

from . import campaign_domain as cd
from .api import Deps
from .automatic import ACTOR
from .campaign_domain import Person
from .campaign_repo import Campaign, CampaignRepo
from .changes import send_changed
from .records import Send, send_of
from .repo import NewSend
from .suppression import UnsubscribeConfig, unsubscribe_headers, unsubscribe_url

# Bulk mail (RFC 2076 Precedence, RFC 3834 Auto-Submitted): auto-responders stay quiet
CAMPAIGN_HEADERS = (
    ("Precedence", "bulk"),
    ("Auto-Submitted", "auto-generated"),
    ("X-Auto-Response-Suppress", "OOF, AutoReply"),
)
MESSAGE_ID_PREFIX = "campaign."
_CRLF = compat32.clone(linesep="\r\n", max_line_length=998)  # no fold in a URL
FINISH_BATCH = 500

# the campaign, the sends' new states (sent/failed/unknown → the recipient's)
Touched = Callable[[Sequence[uuid.UUID]], Awaitable[None]]


def message_id(recipient_id: uuid.UUID, domain: str) -> str:
    """Unique, and recognisable as a campaign's when a reply names it."""
    return f"{MESSAGE_ID_PREFIX}{recipient_id.hex}.{secrets.token_hex(4)}@{domain}"


def unsubscribe_for(
    config: UnsubscribeConfig | None, c: Campaign, row: asyncpg.Record, language: str
) -> tuple[str, Sequence[tuple[str, str]]]:
    """The one-click unsubscribe URL and the RFC 8058 headers of this recipient's mail;
    InvalidArgument when no unsubscribe key is configured (no campaign mail without)."""
    what: dict[str, Any] = {
        "tenant_id": str(c.tenant_id),
        "address": row["address"],
        "campaign_id": str(c.id),
        "recipient_id": str(row["id"]),
        "language": language,
    }
    try:
        if config is None:
            raise ValueError("no config")
        return unsubscribe_url(config, **what), unsubscribe_headers(config, **what)
    except ValueError:
        raise InvalidArgument(
            "no unsubscribe key is configured (SB_UNSUBSCRIBE_SECRET or SB_SECRET_KEY)",
            field="unsubscribe",
        ) from None


def render_mail(
    d: Deps,
    c: Campaign,
    row: asyncpg.Record,
    *,
    unsubscribe: UnsubscribeConfig | None,
    inbox_name: str,
    inbox_address: str,
    now: datetime,
) -> NewSend:
    """The recipient's mail as an outbox item, From the campaign's inbox."""
    language = row["language"] or c.language or "ja"
    url, list_headers = unsubscribe_for(unsubscribe, c, row, language)
    raw_custom = row["custom"]
    custom = raw_custom if isinstance(raw_custom, dict) else _json(raw_custom)
    person = Person(address=row["address"], name=row["name"], custom=custom)
    tz = cd.zone(row["time_zone"], c.tenant_zone)
    today = cd.local_date(now, tz)
    subject = cd.render(c.subject, person, inbox_name=inbox_name, today=today, unsubscribe_url=url)
    text = cd.render(c.body, person, inbox_name=inbox_name, today=today, unsubscribe_url=url)
    mid = message_id(row["id"], cd.domain_of(inbox_address))
    raw = build_bulk(
        sender=(inbox_name, inbox_address),
        to=(row["name"], row["address"]),
        subject=subject,
        text=text,
        message_id=mid,
        date=now,
        headers=(*CAMPAIGN_HEADERS, *list_headers),
    )
    return NewSend(
        id=d.ids.new(),
        tenant_id=c.tenant_id,
        kind="campaign",
        draft_id=None,
        draft_revision=0,
        ticket_id=None,
        inbox_id=c.inbox_id,
        operator_id=None,
        operator_name="",
        operator_md=(),
        fence=0,
        lock_held=False,
        status_after=0,
        message_id=mid,
        subject=_one_line(subject),
        envelope_from=inbox_address,
        recipients=[row["address"]],
        raw=raw,
        dkim_signed=False,
        send_at=now,
        max_attempts=d.max_attempts,
        route_name="",
    )


def _one_line(value: str) -> str:
    return " ".join(value.split())


def build_bulk(
    *,
    sender: tuple[str, str],
    to: tuple[str, str],
    subject: str,
    text: str,
    message_id: str,
    date: datetime,
    headers: Sequence[tuple[str, str]],
) -> bytes:
    """A plain-text campaign mail's bytes (CRLF, UTF-8 in base64, RFC 2047 words in the
    headers). The email package's legacy (compat32) writer: the modern policy's header
    folding costs some 30 times as much, which for 10,000 mails is most of the sending;
    the values are one-line text and checked addresses, so nothing here needs it."""
    body = "\r\n".join(text.splitlines()) + "\r\n"
    msg = MIMEText(body, "plain", "utf-8")
    msg["From"] = _mailbox(*sender)
    msg["To"] = _mailbox(*to)
    msg["Subject"] = _words(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    for name, value in headers:
        msg[name] = _one_line(value)
    return msg.as_bytes(policy=_CRLF)


def _words(text: str) -> str:
    """One line; RFC 2047 encoded words (each under 76 characters) unless ASCII."""
    text = _one_line(text)
    return text if text.isascii() else Header(text, "utf-8").encode(linesep="")


def _mailbox(name: str, address: str) -> str:
    name = _one_line(name)
    if not name or name.isascii():
        return formataddr((name, address))
    return f"{_words(name)} <{address}>"


def _json(raw: Any) -> dict[str, str]:
    import json

    found = json.loads(raw) if raw else {}
    return {str(k): str(v) for k, v in found.items()}


async def insert_sends(
    d: Deps, conn: asyncpg.Connection, new: Sequence[NewSend], now: datetime
) -> list[Send]:
    """The outbox items in one statement, each with its `send.changed` (queued)."""
    rows = await conn.fetch(
        "INSERT INTO sends (tenant_id, id, kind, inbox_id, state, message_id, subject, "
        "envelope_from, recipients, raw, dkim_signed, send_at, next_attempt_at, max_attempts, "
        "created_at, updated_at) SELECT t.tenant_id, t.id, 'campaign', t.inbox_id, "
        "'scheduled', t.message_id, t.subject, t.sender, ARRAY[t.recipient], t.raw, t.signed, "
        "$10, $10, $11, $10, $10 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], "
        "$5::text[], $6::text[], $7::text[], $8::bytea[], $9::bool[]) AS t(tenant_id, id, "
        "inbox_id, message_id, subject, sender, recipient, raw, signed) RETURNING *",
        [s.tenant_id for s in new],
        [s.id for s in new],
        [s.inbox_id for s in new],
        [s.message_id for s in new],
        [s.subject for s in new],
        [s.envelope_from for s in new],
        [s.recipients[0] for s in new],
        [s.raw for s in new],
        [s.dkim_signed for s in new],
        now,
        d.max_attempts,
    )
    sends = [send_of(r) for r in rows]
    envs = [
        send_changed(d.ids, s, action="queued", state="scheduled", previous="", at=now, actor=ACTOR)
        for s in sends
    ]
    await conn.execute(
        "INSERT INTO outbox (event_id, tenant_id, subject, payload) SELECT * FROM "
        "unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[])",
        [uuid.UUID(e.event_id) for e in envs],
        [uuid.UUID(e.tenant_id) for e in envs],
        [events.SEND_CHANGED.subject] * len(envs),
        [e.SerializeToString() for e in envs],
    )
    return sends


class CampaignFinish(PeriodicTask):
    """The sends' outcomes on their recipients, in batches of up to 500 each second (not
    woken per mail: while a campaign sends, its bookkeeping must not compete with the
    sending): the `finished` step of a campaign's outbox items (the generic finisher
    leaves them: no ticket to file a campaign mail in). Sent → `sent`; failed →
    `failed`; unknown (the sender died in the message: never sent again on its own) →
    `failed`, with why; cancelled (an operator cancelled the send in the outbox) →
    `cancelled`, so that the campaign still completes."""

    def __init__(self, d: Deps, clock: Clock, touched: Touched) -> None:
        super().__init__("campaign-finish", 1.0)
        self._d = d
        self._clock = clock
        self._touched = touched

    async def step(self) -> bool:
        now = self._clock.now()
        async with self._d.db.transaction() as conn:
            done = await conn.fetch(
                "UPDATE sends s SET finished_at = $1 FROM (SELECT id FROM sends WHERE "
                "finished_at IS NULL AND state IN ('sent', 'failed', 'unknown', 'cancelled') "
                "AND kind = 'campaign' ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) todo "
                "WHERE s.id = todo.id RETURNING s.id, s.state, s.last_message",
                now,
                FINISH_BATCH,
            )
            if not done:
                return False
            repo = CampaignRepo(self._d.db.pool)
            touched = await repo.after_sends(
                conn,
                [r["id"] for r in done],
                [_recipient_state(r["state"]) for r in done],
                [_why(r["state"], r["last_message"]) for r in done],
                now,
            )
        await self._touched(touched)
        return len(done) == FINISH_BATCH


def _recipient_state(send_state: str) -> str:
    return send_state if send_state in ("sent", "cancelled") else "failed"


def _why(state: str, message: str) -> str:
    if state == "cancelled":
        return message[:500] or "the send was cancelled in the outbox"
    if state == "unknown":
        return "delivery unknown: the sender stopped during the transfer (not sent again)"
    return "" if state == "sent" else message[:500]


class CampaignMail:
    """Ingestion's message.received (consumer `outbound__campaign_mail`): replies and
    bounces of campaign mails. Applying one twice changes nothing (a state moves once)."""

    def __init__(self, d: Deps, repo: CampaignRepo, touched: Touched) -> None:
        self._d = d
        self._repo = repo
        self._touched = touched
        self._log = log.get("outbound.campaigns")

    async def on_received(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        received = events.payload_of(env, events.MESSAGE_RECEIVED)
        if received.channel == "sent":
            return
        mail = received.mail
        original = mail.dsn_original_message_id.strip("<>")
        if original:
            statuses = list(mail.dsn_statuses)
            if not original.startswith(MESSAGE_ID_PREFIX):
                return
            if statuses and not any(s.startswith("5") for s in statuses):
                return  # a delay notice
            await self._mark(env, [original], "bounced", ("queued", "sent", "failed"), statuses)
            return
        named = [m.strip("<>") for m in (mail.in_reply_to, *mail.references)]
        ours = [m for m in named if m.startswith(MESSAGE_ID_PREFIX)]
        if not ours or mail.auto_submitted:
            return  # not an answer to a campaign mail, or an automatic one
        await self._mark(env, ours, "replied", ("queued", "sent"), [])

    async def _mark(
        self,
        env: events_pb2.EventEnvelope,
        ids: list[str],
        state: str,
        from_states: Sequence[str],
        statuses: list[str],
    ) -> None:
        now = self._d.clock.now()
        async with self._d.db.transaction() as conn:
            rows = await self._repo.mark_by_message(
                conn, env.tenant_id, ids, state, from_states, now, ", ".join(statuses)
            )
        if rows:
            self._log.info(
                "campaign recipient " + state,
                tenant_id=env.tenant_id,
                campaign_id=str(rows[0]["campaign_id"]),
                recipient_id=str(rows[0]["id"]),
            )
            await self._touched(sorted({r["campaign_id"] for r in rows}))


class CampaignUnsubscribes:
    """outbound's own contact.unsubscribed (consumer `outbound__campaign_unsubscribes`):
    the recipient whose mail carried the link becomes `unsubscribed` — also one still
    pending (then never sent). Other campaigns' pending rows of the address are caught
    by the sender's suppression check before their mail is written."""

    def __init__(self, d: Deps, repo: CampaignRepo, touched: Touched) -> None:
        self._d = d
        self._repo = repo
        self._touched = touched

    async def on_unsubscribed(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        p = events.payload_of(env, events.CONTACT_UNSUBSCRIBED)
        if not p.campaign_id:
            return
        now = self._d.clock.now()
        async with self._d.db.transaction() as conn:
            moved = await self._repo.unsubscribed(
                conn, env.tenant_id, uuid.UUID(p.campaign_id), p.address, now
            )
        if moved:
            await self._touched([uuid.UUID(p.campaign_id)])
