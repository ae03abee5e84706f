"""Satisfaction surveys after resolution (issue 20, OUT-5), from tickets' events.

`Episodes` (the consumer `outbound__surveys`): a ticket.updated that resolves a ticket
starts a resolution episode — one row of `surveys`, due after the inbox's delay, or
skipped at once ("resolve without survey", auto-resolved with that rule on); a reopen
ends the episode, so the next resolution starts another. Once per event (processed
events), in one transaction.

`SurveySender` (a loop on every replica): claims a due row (`FOR UPDATE SKIP LOCKED`, so
one replica per row, and a row survives a restart), checks the ticket again as it is then
(still resolved, its labels, spam, the customer's mail not automatic, not our own
address, the contact's N days), and queues the survey mail through the automatic-send
path (`Auto-Submitted: auto-generated`) with `survey.sent`, in the transaction that marks
the row sent: exactly once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log, registry
from services.runtime import mail as mime
from services.runtime.bus import Delivery
from services.runtime.clock import Clock
from services.runtime.errors import DomainError, InvalidArgument, Unavailable
from services.runtime.identity import Identity
from services.runtime.outbox import first_time
from services.runtime.periodic import PeriodicTask

from . import domain, survey_domain
from .api import Deps, SendsApi
from .automatic import ACTOR, automatic_send, queue
from .survey_domain import SurveyRule
from .survey_repo import NewEpisode, Survey, SurveyRepo, questions_json

SURVEYS = registry.OUTBOUND_SURVEYS
SURVEY_HEADERS = (("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"))
# the customer's messages (a channel conversation's too: its survey goes through the
# channel as text with the links, issue 21)
CUSTOMER_CHANNELS = frozenset({"smtp", "imap", "form", "import", "chat", "api", "line"})


@dataclass(frozen=True)
class SurveyConfig:
    secret: str  # signs the links' tokens; never logged
    public_url: str  # the gateway's address as customers reach it
    link_max_age: timedelta


class Episodes:
    def __init__(self, d: Deps, repo: SurveyRepo, wake: Any) -> None:
        self._d = d
        self._repo = repo
        self._wake = wake
        self._log = log.get("outbound.surveys")

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        tenant = env.tenant_id
        if env.type == events.TICKET_MESSAGE_ADDED.name:
            added = events.payload_of(env, events.TICKET_MESSAGE_ADDED)
            if added.reopened:
                await self._reopened(env, added.ticket.id)
            return
        p = events.payload_of(env, events.TICKET_UPDATED)
        changes = [(c.field, c.old_value, c.new_value) for c in p.changes]
        if survey_domain.reopens(changes):
            await self._reopened(env, p.ticket.id)
            return
        if not survey_domain.resolves(changes) or not p.ticket.inbox.id:
            return
        found = await self._repo.settings(tenant, uuid.UUID(p.ticket.inbox.id))
        if found is None or not found[0].enabled:
            return
        rule = found[0]
        by_operator = env.actor.kind == common_pb2.Actor.KIND_OPERATOR and not p.rule_depth
        why = survey_domain.why_not_now(
            rule, without_survey=p.without_survey, auto_resolved=not by_operator
        )
        credited = (
            (env.actor.id, env.actor.display)
            if by_operator
            else (p.ticket.assignee.id, p.ticket.assignee.display_name)
        )
        now = self._d.clock.now()
        resolved_at = env.occurred_at.ToDatetime(tzinfo=now.tzinfo)
        ticket_id = uuid.UUID(p.ticket.id)
        with log.bound(tenant_id=tenant, ticket_id=p.ticket.id):
            async with self._d.db.transaction() as conn:
                if not await first_time(conn, SURVEYS.durable, env):
                    return
                if await self._repo.open_episode(conn, tenant, ticket_id):
                    return  # resolved again without a reopen: the same episode
                episode = await self._repo.add_episode(
                    conn,
                    NewEpisode(
                        tenant_id=uuid.UUID(tenant),
                        id=self._d.ids.new(),
                        ticket_id=ticket_id,
                        inbox_id=uuid.UUID(p.ticket.inbox.id),
                        resolved_at=resolved_at,
                        resolved_by=_uuid_or_none(credited[0]),
                        resolved_by_name=credited[1],
                        auto_resolved=not by_operator,
                        cause_event_id=env.event_id,
                        due_at=survey_domain.due_at(resolved_at, rule),
                        state="due" if why is None else "skipped",
                        reason=why or "",
                    ),
                )
            self._log.info("resolution episode", episode=episode, skipped=why)
        if why is None:
            self._wake()

    async def _reopened(self, env: events_pb2.EventEnvelope, ticket_id: str) -> None:
        async with self._d.db.transaction() as conn:
            if await first_time(conn, SURVEYS.durable, env):
                await self._repo.end_episodes(
                    conn, env.tenant_id, uuid.UUID(ticket_id), self._d.clock.now()
                )


class SurveySender(PeriodicTask):
    def __init__(
        self, d: Deps, sends: SendsApi, repo: SurveyRepo, config: SurveyConfig, clock: Clock
    ) -> None:
        super().__init__("surveys", 1.0)
        self._d = d
        self._sends = sends
        self._repo = repo
        self._config = config
        self._clock = clock
        self._log = log.get("outbound.surveys")

    async def step(self) -> bool:
        d = self._d
        now = self._clock.now()
        claimed: Survey | None = None
        try:
            async with d.db.transaction() as conn:
                claimed = await self._repo.claim_due(conn, now)
                if claimed is None:
                    return False
                with log.bound(tenant_id=str(claimed.tenant_id), ticket_id=str(claimed.ticket_id)):
                    await self._send(conn, claimed)
        except Unavailable as err:  # rolled back: tried again later
            self._log.warning("survey postponed", error=err.message)
            if claimed is not None:
                await self._repo.postpone(claimed.id, now + timedelta(seconds=30))
            return False
        except DomainError as err:  # a peer refused (the ticket or template is unusable)
            self._log.warning("no survey", why=err.message)
            if claimed is not None:
                async with d.db.transaction() as conn:
                    await self._repo.skip(conn, claimed.id, err.message[:200], now)
            return True
        d.outbox.wake()
        d.dispatcher.wake()
        return True

    async def _send(self, conn: Any, row: Survey) -> None:
        d = self._d
        tenant = str(row.tenant_id)
        now = self._clock.now()
        found = await self._repo.settings(tenant, row.inbox_id)
        rule: SurveyRule | None = found[0] if found else None
        system = Identity(tenant_id=tenant).metadata()
        try:
            got = await d.peers.ticket(system, str(row.ticket_id))
        except Unavailable:
            raise
        except DomainError:
            await self._repo.skip(conn, row.id, "the ticket is gone", now)
            return
        ticket = got.ticket
        inboxes = await d.peers.inboxes(system)
        inbox = next((i for i in inboxes if i.id == ticket.inbox.id), None)
        own = frozenset(a.lower() for i in inboxes for a in i.addresses)
        customer = [
            m.mail
            for m in got.messages
            if m.channel in CUSTOMER_CHANNELS and m.HasField("mail") and not m.stranger
        ]
        recipient = getattr(ticket, "from").address
        why = (
            "off"
            if rule is None
            else survey_domain.why_not_due(
                rule,
                status=_status_name(ticket.status),
                labels=list(ticket.labels),
                flags=list(ticket.flags),
                reopened=row.reopened,
                recipient=recipient,
                automatic=any(m.auto_submitted for m in customer),
                junk=any(events.is_junk(m) for m in customer),
                own_addresses=own,
            )
        )
        if why is None and (inbox is None or not inbox.addresses):
            why = "the inbox has no address"
        if why is None and not self._config.secret:
            why = "no survey secret configured"
        if why is not None or rule is None or inbox is None:
            self._log.info("no survey", why=why)
            await self._repo.skip(conn, row.id, why or "off", now)
            return
        if not await self._repo.note_contact(conn, tenant, recipient, now, rule.contact_days):
            self._log.info("no survey", why="surveyed within the contact's days")
            await self._repo.skip(conn, row.id, "contact surveyed recently", now)
            return
        language = survey_domain.language_of(ticket.language)
        question = rule.question_ja if language == "ja" else rule.question_en
        token = survey_domain.sign_token(self._config.secret, tenant, str(row.id))
        body = survey_domain.survey_mail(
            language=language,
            question=question,
            style=rule.scale_style,
            ticket_number=ticket.number,
            rating_links=survey_domain.links(self._config.public_url, token),
        )
        try:
            to = mime.parse_address(recipient, "to")
        except InvalidArgument:
            await self._repo.skip(conn, row.id, "the address is not usable", now)
            return
        from_box = mime.Mailbox(mime.header_text(inbox.name), inbox.addresses[0])
        message_id = await d.peers.mint_message_id(
            system, str(row.ticket_id), domain.domain_of(from_box.address)
        )
        last = customer[-1] if customer else None
        out = mime.Outgoing(
            sender=from_box,
            to=[to],
            cc=[],
            subject=body.subject,
            text=body.text,
            html=body.html,
            in_reply_to="".join(mime.usable_message_ids([last.rfc822_message_id])) if last else "",
            references=mime.usable_message_ids(
                [*last.references, last.rfc822_message_id] if last else []
            ),
            extra_headers=SURVEY_HEADERS,
        )
        raw = mime.build(out, message_id=message_id, date=now).as_bytes()
        raw, signed = await self._sends.sign(tenant, raw, from_box.address)
        new = automatic_send(
            d,
            tenant=tenant,
            kind="survey",
            ticket_id=str(row.ticket_id),
            inbox_id=str(row.inbox_id),
            message_id=message_id,
            subject=out.subject,
            sender=from_box.address,
            recipient=to.address,
            raw=raw,
            signed=signed,
            now=now,
        )
        send = await queue(d, conn, new, now)
        await self._repo.mark_sent(
            conn,
            row.id,
            {
                "send_id": send.id,
                "recipient": to.address,
                "language": language,
                "question": question,
                "scale_style": rule.scale_style,
                "inbox_name": inbox.name,
                "ticket_number": ticket.number,
                "questions": questions_json(rule.questions),
                "updated_at": now,
            },
        )
        payload = survey_changed(
            row, language=language, send_id=str(send.id), ticket_number=ticket.number
        )
        await announce(d, conn, events.SURVEY_SENT, row, payload, ACTOR, now)
        self._log.info("survey queued", send_id=str(send.id), episode=row.episode)


async def announce(
    d: Deps,
    conn: Any,
    etype: events.EventType,
    row: Survey,
    payload: events_pb2.SurveyChanged,
    actor: common_pb2.Actor,
    now: datetime,
) -> None:
    """survey.sent / survey.answered, on their own subject, in the caller's transaction."""
    await d.outbox.add(
        conn,
        events.envelope(
            etype,
            event_id=d.ids.new_str(),
            tenant_id=str(row.tenant_id),
            occurred_at=now,
            payload=payload,
            actor=actor,
        ),
    )


def survey_changed(row: Survey, **more: Any) -> events_pb2.SurveyChanged:
    out = events_pb2.SurveyChanged(
        survey_id=str(row.id),
        ticket_id=str(row.ticket_id),
        inbox_id=str(row.inbox_id),
        episode=row.episode,
        **more,
    )
    if row.resolved_by is not None:
        out.resolved_by.id = str(row.resolved_by)
        out.resolved_by.display_name = row.resolved_by_name
    out.resolved_at.FromDatetime(row.resolved_at)
    return out


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    """An operator's id as the event carries it; None for nobody (or not an id)."""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def _status_name(status: int) -> str:
    return common_pb2.TicketStatus.Name(status).removeprefix("TICKET_STATUS_").lower()
