"""The rule time triggers in routing's process (issue 18, RTE-1): `no_first_reply` and
`pending_until`.

- Their timers (rule_timers.py) are recomputed with the ticket's SLA, from tickets'
  events, in the same transaction (`SlaClocks.also_arm`), and live in the SLA's due-time
  index: the same claim loop (`DueTimers`, FOR UPDATE SKIP LOCKED) fires each once and
  announces `rule.timer_due`; after a restart it starts from the index.
- Saving a rule with a time trigger recomputes the tenant's open tickets in the
  background, so tickets already waiting get the new rule's timers.
- `routing__time_rules` answers `rule.timer_due` with the rules having the trigger (for
  no_first_reply: those with the timer's minutes), after checking the ticket as it is
  now — a reply of ours, a closing or a changed pending-until date since the timer was
  armed runs nothing; tickets applies the decision once per event (as sla_warning's).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.identity import Identity
from services.runtime.service import ServiceRuntime
from services.runtime.ticket_names import STATUS_NAMES

from . import rule_timers
from .rules import model
from .rules.model import RuleDef
from .rules_changes import answer, with_trigger
from .rules_intake import RulesContext
from .sla_clocks import Loaded, SlaClocks
from .sla_repo import SlaRepo


def still_due(due: events_pb2.RuleTimerDue, found: tickets_pb2.GetTicketResponse) -> bool:
    """Whether the ticket, as it is now, still answers to the timer."""
    ticket = found.ticket
    if ticket.merged_into:
        return False
    status = STATUS_NAMES.get(ticket.status, "")
    if due.trigger == model.NO_FIRST_REPLY:
        replied = any(events.answers_customer(m.channel, m.mail) for m in found.messages)
        return not replied and status in ("open", "pending")
    if due.trigger == model.PENDING_UNTIL:
        return (
            status == "pending"
            and ticket.HasField("pending_until")
            and ticket.pending_until == due.started_at
        )
    return False


class TimeRules:
    def __init__(self, ctx: RulesContext, repo: SlaRepo) -> None:
        self._c = ctx
        self._repo = repo
        self._log = log.get("routing.rules")

    async def arm(self, conn: asyncpg.Connection, tenant: str, loaded: Loaded) -> datetime | None:
        """The ticket's rule timers again (in the recompute's transaction)."""
        rules = await self._c.cache.rules(tenant)
        owed = rule_timers.timers_for(rules, loaded.ticket, loaded.facts)
        return await self._repo.replace_timers(
            conn, tenant, loaded.ticket.ticket_id, owed, rule_timers.TARGETS
        )

    async def on_due(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        due = events.payload_of(env, events.RULE_TIMER_DUE)
        loaded = with_trigger(await self._c.cache.rules(env.tenant_id), due.trigger)
        if due.trigger == model.NO_FIRST_REPLY:
            loaded = [r for r in loaded if r.definition.no_first_reply_minutes == due.minutes]
        if not loaded:
            return  # the rules changed since the timer was armed
        md = Identity(tenant_id=env.tenant_id, correlation_id=env.correlation_id).metadata()
        try:
            found = await self._c.peers.ticket(md, due.ticket_id)
        except NotFound:
            return
        if not still_due(due, found):
            self._log.info("rule timer no longer due", ticket_id=due.ticket_id, trigger=due.trigger)
            return
        ticket = found.ticket
        rules = with_trigger(loaded, due.trigger, ticket.inbox.id)
        if not rules:
            return
        try:
            await answer(self._c, env, due.trigger, rules, found, ticket, 0, md)
        except (NotFound, FailedPrecondition) as err:  # merged or gone since it was read
            self._log.info("time rules not applied", ticket_id=ticket.id, reason=str(err))


class Rearm:
    """A saved rule with a time trigger: the tenant's open tickets recomputed (in the
    background; the SLA's own recompute, which arms the rule timers too)."""

    def __init__(self, clocks: SlaClocks) -> None:
        self._clocks = clocks
        self._background: set[asyncio.Task[int]] = set()

    def saved(self, tenant: str, definition: RuleDef) -> None:
        if not any(t in model.TIME_TRIGGERS for t in definition.triggers):
            return
        task = asyncio.create_task(self._clocks.recompute_tenant(tenant))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


async def wire(rt: ServiceRuntime, ctx: RulesContext, clocks: SlaClocks, repo: SlaRepo) -> None:
    time_rules = TimeRules(ctx, repo)
    clocks.also_arm(time_rules.arm)
    rearm = Rearm(clocks)
    ctx.cache.watch(rearm.saved)
    rt.on_close(rearm.close)
    await rt.add_consumer(registry.ROUTING_TIME_RULES, time_rules.on_due)
