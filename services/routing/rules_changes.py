"""Rules that answer something that happened to a stored ticket (RTE-1), not a mail:

- `ticket_changed`: routing answers every `ticket.updated` with the rules of the ticket's
  inbox that have the trigger, evaluated against the ticket as that change left it. A
  change the rules made carries its `rule_depth`; at `MAX_DEPTH` no rule runs, so rules
  that trigger each other end.
- `sla_warning` / `sla_breached` (rules_sla.py): the SLA clocks' `sla.warning` /
  `sla.breached`, evaluated against the ticket as it is now.

Either way the conditions read the ticket and its latest customer mail, and tickets
applies the decision (ApplyRoutingDecision) once per cause event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import events, log
from services.runtime.bus import Delivery
from services.runtime.identity import Identity

from . import rules_facts
from .peers import Metadata
from .rules import engine, model
from .rules.model import Rule
from .rules_intake import RulesContext


async def answer(
    ctx: RulesContext,
    env: events_pb2.EventEnvelope,
    trigger: str,
    rules: list[Rule],
    found: tickets_pb2.GetTicketResponse,
    state: events_pb2.TicketSummary,
    depth: int,
    md: Metadata,
    sla_target: str = "",
) -> None:
    """Evaluate `rules` (in order, of the ticket's inbox) for `trigger` against `state` and
    the ticket's latest customer mail; tickets applies what they decide, once per `env`,
    as a change at `depth + 1`."""
    tenant = env.tenant_id
    ticket_id = state.id
    mails = rules_facts.customer_mails(found)
    latest = mails[-1] if mails else None
    details = None
    if latest is not None and engine.needs_mail_details(rules):
        details = await ctx.peers.mail_details(md, latest.id)
    facts = rules_facts.facts_of(
        latest.mail if latest else events_pb2.MailSummary(),
        channel=latest.channel if latest else "",
        received_at=(latest.received_at if latest else state.received_at).ToDatetime(tzinfo=UTC),
        envelope_recipients=[],
        ticket=rules_facts.ticket_state(state),
        details=details,
        contact=found.contact if found.HasField("contact") else None,
        language=state.language,
    )
    if sla_target:
        facts = replace(facts, sla_target=sla_target)
    ran = await ctx.store.ran_on(ctx.store.pool, tenant, ticket_id)
    evaluation = engine.evaluate(
        rules,
        facts,
        trigger,
        await ctx.hours_of(tenant),
        ran_before=ran,
        depth=depth,
        traced=False,
    )
    decision = evaluation.decision
    if decision.empty:
        return
    pb = rules_facts.decision_pb(decision, trigger)
    if latest is not None and (pb.auto_replies or pb.notifies or pb.webhooks):
        # the customer mail an auto-reply answers: the ticket's latest
        pb.reply_to.message_id = latest.id
        pb.reply_to.mail.CopyFrom(latest.mail)
        pb.reply_to.channel = latest.channel
        pb.reply_to.stranger = latest.stranger
    await ctx.peers.apply_decision(md, ticket_id, pb, depth + 1, env.event_id)
    once = [r.id for r in rules if r.definition.once_per_ticket and r.id in decision.fired]
    if once:
        await ctx.store.note_runs(ctx.store.pool, tenant, ticket_id, once, ctx.clock.now())
    log.get("routing.rules").info(
        "rules applied on a ticket",
        ticket_id=ticket_id,
        trigger=trigger,
        depth=depth + 1,
        actions=len(decision.trace),
    )


def with_trigger(loaded: list[Rule], trigger: str, inbox_id: str | None = None) -> list[Rule]:
    """The rules having `trigger`, in order; of one inbox unless `inbox_id` is None."""
    return [
        r
        for r in loaded
        if trigger in r.definition.triggers and (inbox_id is None or engine.applies_to(r, inbox_id))
    ]


class TicketChanges:
    def __init__(self, ctx: RulesContext) -> None:
        self._c = ctx
        self._log = log.get("routing.rules")

    async def on_updated(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        updated = events.payload_of(env, events.TICKET_UPDATED)
        ticket = updated.ticket
        if ticket.merged_into or updated.action == events.SLA_MOVED:
            return  # the SLA's own due time moving is no change for the rules
        rules = with_trigger(
            await self._c.cache.rules(env.tenant_id), model.TICKET_CHANGED, ticket.inbox.id
        )
        if not rules:
            return
        if updated.rule_depth >= model.MAX_DEPTH:
            self._log.info("rule depth limit", ticket_id=ticket.id, depth=updated.rule_depth)
            return
        md = Identity(tenant_id=env.tenant_id, correlation_id=env.correlation_id).metadata()
        found = await self._c.peers.ticket(md, ticket.id)
        # the ticket as this change left it (not as it is now: a later change is answered
        # by its own event)
        await answer(
            self._c, env, model.TICKET_CHANGED, rules, found, ticket, updated.rule_depth, md
        )
