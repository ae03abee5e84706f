"""A routing rule's `auto_reply` action (issue 18): outbound answers `ticket.rule_actions`
(`outbound__rule_replies`) through the same loop-safe path as the inbox's automatic
acknowledgement (autoreply.py): never to mail flagged automatic, spam (or a ticket the
rules put in the trash), our own addresses or a stranger on someone else's ticket; at
most one automatic mail per sender and inbox in the inbox's period (24 hours when the
inbox has no automatic-reply settings), whichever sends first; the mail carries
`Auto-Submitted: auto-replied`. Each rule's reply is queued once per event (a
processed-events key per rule, in the transaction that queues it), so two replicas or a
redelivery send it once."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery

from . import domain
from .autoreply import LIVE_CHANNELS, AutoReplies
from .repo import OutboundRepo

DURABLE = registry.OUTBOUND_RULE_REPLIES.durable
DEFAULT_PERIOD = timedelta(hours=24)


class RuleReplies:
    def __init__(self, repo: OutboundRepo, replies: AutoReplies) -> None:
        self._repo = repo
        self._replies = replies
        self._log = log.get("outbound.rule_replies")

    async def on_rule_actions(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        actions = events.payload_of(env, events.TICKET_RULE_ACTIONS)
        if not actions.auto_replies:
            return
        ticket = actions.ticket
        to = actions.reply_to
        with log.bound(tenant_id=env.tenant_id, ticket_id=ticket.id, message_id=to.message_id):
            if not to.message_id or not to.HasField("mail"):
                self._log.info("no rule auto-reply: no customer mail to answer")
                return
            if ticket.status == common_pb2.TICKET_STATUS_TRASH:  # e.g. a rule's mark_spam
                self._log.info("no rule auto-reply: the ticket is in the trash")
                return
            if to.stranger:  # ADR 0009: nothing goes to a stranger on another's ticket
                self._log.info("no rule auto-reply: the mail's sender is a stranger")
                return
            if to.channel not in LIVE_CHANNELS and to.channel != "form":
                self._log.info("no rule auto-reply", why=f"channel {to.channel or 'none'}")
                return
            settings = await self._repo.auto_reply(env.tenant_id, uuid.UUID(ticket.inbox.id))
            period = timedelta(hours=settings.period_hours) if settings else DEFAULT_PERIOD
            for wanted in actions.auto_replies:
                rule = domain.AutoReplyRule(
                    enabled=True,
                    mode="always",
                    hours=(),
                    tz=zoneinfo.ZoneInfo("UTC"),
                    template_id=wanted.template_id,
                    period=period,
                )
                with log.bound(rule_id=wanted.rule_id):
                    await self._replies.reply(
                        env,
                        ticket,
                        to.message_id,
                        to.mail,
                        rule,
                        kind="auto_reply",
                        once_key=f"{DURABLE}:{wanted.rule_id}",
                    )
