"""The ticket_changed trigger (RTE-1): routing answers every `ticket.updated` with the
rules of the ticket's inbox that have the trigger, evaluated against the ticket as that
change left it and its latest mail, and has tickets apply their decision
(ApplyRoutingDecision). A change the rules made carries its `rule_depth`; at
`MAX_DEPTH` no rule runs, so rules that trigger each other end."""

from __future__ import annotations

from datetime import UTC

from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.bus import Delivery
from services.runtime.identity import Identity

from . import rules_facts
from .rules import engine, model
from .rules_intake import RulesContext


class TicketChanges:
    def __init__(self, ctx: RulesContext) -> None:
        self._c = ctx
        self._log = log.get("routing.rules")

    async def on_updated(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        updated = events.payload_of(env, events.TICKET_UPDATED)
        ticket = updated.ticket
        tenant = env.tenant_id
        if ticket.merged_into:
            return
        rules = [
            r
            for r in await self._c.cache.rules(tenant)
            if engine.applies_to(r, ticket.inbox.id)
            and model.TICKET_CHANGED in r.definition.triggers
        ]
        if not rules:
            return
        if updated.rule_depth >= model.MAX_DEPTH:
            self._log.info("rule depth limit", ticket_id=ticket.id, depth=updated.rule_depth)
            return
        md = Identity(tenant_id=tenant, correlation_id=env.correlation_id).metadata()
        found = await self._c.peers.ticket(md, ticket.id)
        mails = rules_facts.customer_mails(found)
        latest = mails[-1] if mails else None
        details = None
        if latest is not None and engine.needs_mail_details(rules):
            details = await self._c.peers.mail_details(md, latest.id)
        facts = rules_facts.facts_of(
            latest.mail if latest else events_pb2.MailSummary(),
            channel=latest.channel if latest else "",
            received_at=(latest.received_at if latest else ticket.received_at).ToDatetime(
                tzinfo=UTC
            ),
            envelope_recipients=[],
            # the ticket as this change left it (not as it is now: a later change is
            # answered by its own event)
            ticket=rules_facts.ticket_state(ticket),
            details=details,
        )
        ran = await self._c.store.ran_on(self._c.store.pool, tenant, ticket.id)
        evaluation = engine.evaluate(
            rules,
            facts,
            model.TICKET_CHANGED,
            await self._c.hours_of(tenant),
            ran_before=ran,
            depth=updated.rule_depth,
            traced=False,
        )
        decision = evaluation.decision
        if decision.empty:
            return
        await self._c.peers.apply_decision(
            md, ticket.id, rules_facts.decision_pb(decision), updated.rule_depth + 1, env.event_id
        )
        once = [r.id for r in rules if r.definition.once_per_ticket and r.id in decision.fired]
        if once:
            await self._c.store.note_runs(
                self._c.store.pool, tenant, ticket.id, once, self._c.clock.now()
            )
        self._log.info(
            "rules applied on a change",
            ticket_id=ticket.id,
            depth=updated.rule_depth + 1,
            actions=len(decision.trace),
        )
