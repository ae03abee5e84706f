"""Automatic acknowledgements (OUT-4) and web-form confirmations, from tickets' events: a
mail filed into a ticket (ticket.created / ticket.message_added) may get the inbox's
automatic reply; a form's mail gets the inbox's form confirmation.

Never to mail flagged as automatic (ING-7) — which is what stops a loop between two
autoresponders: ours carry `Auto-Submitted: auto-replied` — nor to spam, our own
addresses or our own sent mail, nor to a stranger whose mail joined someone else's
ticket (ADR 0009); at most once per sender and inbox in the period (a
conditional upsert, so two replicas cannot both send). Imported mail is history and
gets nothing. Nor does a channel conversation (chat, API, LINE — issue 21): its
messages are not mail (their channel is not smtp/imap/form), and a sender whose address is
a conversation's pseudo-address is never answered automatically, whichever path asks.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime import mail as mime
from services.runtime.bus import Delivery
from services.runtime.channel_address import is_pseudo_address
from services.runtime.errors import DomainError, InvalidArgument, Unavailable
from services.runtime.identity import Identity
from services.runtime.outbox import first_time

from . import domain
from .api import Deps, SendsApi
from .automatic import automatic_send, queue
from .records import AutoReplySettings

REPLIES_DURABLE = registry.OUTBOUND_REPLIES.durable
LIVE_CHANNELS = frozenset({"smtp", "imap"})
AUTO_HEADERS = (("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"))


class AutoReplies:
    def __init__(self, deps: Deps, sends: SendsApi) -> None:
        self._d = deps
        self._sends = sends
        self._log = log.get("outbound.autoreply")
        self._inboxes: dict[str, tuple[float, list[Any]]] = {}

    async def _tenant_inboxes(self, tenant: str) -> list[Any]:
        hit = self._inboxes.get(tenant)
        if hit and time.monotonic() - hit[0] < 30:
            return hit[1]
        found = await self._d.peers.inboxes(Identity(tenant_id=tenant).metadata())
        self._inboxes[tenant] = (time.monotonic(), found)
        return found

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        if env.type == events.TICKET_CREATED.name:
            p = events.payload_of(env, events.TICKET_CREATED)
        else:
            p = events.payload_of(env, events.TICKET_MESSAGE_ADDED)
            if p.stranger:  # ADR 0009: nothing goes to a stranger on another's ticket
                return
        channel = p.channel
        if channel not in LIVE_CHANNELS and channel != "form":
            return
        if not p.HasField("mail"):
            return
        tenant = env.tenant_id
        inbox_id = p.ticket.inbox.id
        if not inbox_id:
            return
        settings = await self._d.repo.auto_reply(tenant, uuid.UUID(inbox_id))
        if settings is None or not settings.enabled:
            return
        with log.bound(tenant_id=tenant, ticket_id=p.ticket.id, message_id=p.message_id):
            await self._consider(env, p, settings, form=channel == "form")

    async def _consider(
        self,
        env: events_pb2.EventEnvelope,
        p: events_pb2.TicketCreated | events_pb2.TicketMessageAdded,
        settings: AutoReplySettings,
        *,
        form: bool,
    ) -> None:
        tenant = env.tenant_id
        mail = p.mail
        inboxes = await self._tenant_inboxes(tenant)
        hours = json.loads(settings.hours) if isinstance(settings.hours, str) else settings.hours
        template_id = settings.form_template_id if form else settings.template_id
        rule = domain.AutoReplyRule(
            enabled=True,
            mode="always" if form else settings.mode,
            hours=tuple(domain.Hours(**h) for h in hours),
            tz=domain.zone(settings.time_zone),
            template_id=str(template_id or ""),
            period=timedelta(hours=settings.period_hours),
        )
        await self.reply(
            env,
            p.ticket,
            p.message_id,
            mail,
            rule,
            kind="form_confirmation" if form else "auto_reply",
            once_key=REPLIES_DURABLE,
            inboxes=inboxes,
        )

    async def reply(
        self,
        env: events_pb2.EventEnvelope,
        ticket: events_pb2.TicketSummary,
        message_id: str,
        mail: events_pb2.MailSummary,
        rule: domain.AutoReplyRule,
        *,
        kind: str,
        once_key: str,
        inboxes: list[Any] | None = None,
    ) -> None:
        """Answer `mail` (filed as `message_id` into `ticket`) with `rule`'s template, if
        the loop guards allow: once per (`once_key`, event), and — but for a form's
        confirmation — at most once per sender and inbox in `rule.period`. Also a routing
        rule's auto_reply action (rule_replies.py) goes this way."""
        d = self._d
        tenant = env.tenant_id
        sender = getattr(mail, "from")
        inbox_id = ticket.inbox.id
        form = kind == "form_confirmation"
        if inboxes is None:
            inboxes = await self._tenant_inboxes(tenant)
        inbox = next((i for i in inboxes if i.id == inbox_id), None)
        if inbox is None or not inbox.addresses:
            self._log.info("no automatic reply: the inbox has no address")
            return
        if is_pseudo_address(sender.address):
            self._log.info("no automatic reply: the sender is a channel conversation")
            return
        own = frozenset(a.lower() for i in inboxes for a in i.addresses)
        now = d.clock.now()
        last = (
            None
            if form
            else await d.repo.last_auto_reply(tenant, uuid.UUID(inbox_id), sender.address)
        )
        why_not = domain.auto_reply_due(
            rule,
            now=now,
            automatic=mail.auto_submitted,
            junk=events.is_junk(mail),
            sender=sender.address,
            own_addresses=own,
            last_sent=last,
        )
        if why_not is not None:
            self._log.info("no automatic reply", why=why_not, kind=kind)
            return
        system = Identity(tenant_id=tenant).metadata()
        try:
            # the sender's name as they wrote it, made safe for a header (issue 16)
            name = "".join(c for c in mime.header_text(sender.name) if c not in '<>"\\')
            to = mime.parse_address(f"{name} <{sender.address}>" if name else sender.address, "to")
        except InvalidArgument:
            self._log.info("no automatic reply: the sender's address is not usable")
            return
        try:
            rendered = await d.peers.render_template(
                system, rule.template_id, ticket.id, message_id
            )
        except Unavailable:
            raise
        except DomainError as err:
            self._log.warning("no automatic reply: the template cannot be used", error=err.message)
            return
        from_box = mime.Mailbox(mime.header_text(inbox.name), inbox.addresses[0])
        new_message_id = await d.peers.mint_message_id(
            system, ticket.id, domain.domain_of(from_box.address)
        )
        original = mail.rfc822_message_id
        out = mime.Outgoing(
            sender=from_box,
            to=[to],
            cc=[],
            subject=rendered.subject.strip() or mime.reply_subject(mime.header_text(mail.subject)),
            text=rendered.body_text,
            html=rendered.body_html,
            # a stranger's Message-ID that would break the header threads nothing
            in_reply_to="".join(mime.usable_message_ids([original])),
            references=mime.usable_message_ids([*mail.references, original]),
            extra_headers=AUTO_HEADERS,
        )
        try:
            raw = mime.build(out, message_id=new_message_id, date=now).as_bytes()
        except InvalidArgument as err:
            self._log.warning("no automatic reply: the message cannot be built", error=err.message)
            return
        raw, signed = await self._sends.sign(tenant, raw, from_box.address)
        new = automatic_send(
            d,
            tenant=tenant,
            kind=kind,
            ticket_id=ticket.id,
            inbox_id=inbox_id,
            message_id=new_message_id,
            subject=out.subject,
            sender=from_box.address,
            recipient=to.address,
            raw=raw,
            signed=signed,
            now=now,
        )
        async with d.db.transaction() as conn:
            if not await first_time(conn, once_key, env):
                return
            if not form and not await d.repo.note_auto_reply(
                conn, tenant, uuid.UUID(inbox_id), sender.address, now, rule.period
            ):
                self._log.info("no automatic reply", why="already answered in the period")
                return
            await queue(d, conn, new, now, cause=env)
        d.outbox.wake()
        d.dispatcher.wake()
        self._log.info("automatic reply queued", send_id=str(new.id), kind=kind)
