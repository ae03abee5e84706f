"""The SLA's time triggers (RTE-1 / RTE-4): routing answers its own `sla.warning` and
`sla.breached` (`routing__sla_rules`) with the tenant's rules having `sla_warning` /
`sla_breached` — tenant-wide ones and those of the ticket's inbox — evaluated against the
ticket as it is now and its latest customer mail; tickets applies their decision
(escalate: raise the priority, reassign, label, notify …) once per alert, each action in
the audit trail as "rule <name>: …". A ticket merged away or gone runs nothing."""

from __future__ import annotations

from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.bus import Delivery
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.identity import Identity

from .rules import model
from .rules_changes import answer, with_trigger
from .rules_intake import RulesContext

TRIGGER_OF = {
    events.SLA_WARNING.name: model.SLA_WARNING,
    events.SLA_BREACHED.name: model.SLA_BREACHED,
}


class SlaAlerts:
    def __init__(self, ctx: RulesContext) -> None:
        self._c = ctx
        self._log = log.get("routing.rules")

    async def on_alert(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        trigger = TRIGGER_OF.get(env.type)
        if trigger is None:
            return
        alert = env.sla_alert
        loaded = with_trigger(await self._c.cache.rules(env.tenant_id), trigger)
        if not loaded:
            return  # no rule of the tenant has the trigger: the ticket is not read
        md = Identity(tenant_id=env.tenant_id, correlation_id=env.correlation_id).metadata()
        try:
            found = await self._c.peers.ticket(md, alert.ticket_id)
        except NotFound:
            return
        ticket = found.ticket
        if ticket.merged_into:
            return
        rules = with_trigger(loaded, trigger, ticket.inbox.id)
        if not rules:
            return
        try:
            await answer(self._c, env, trigger, rules, found, ticket, 0, md, alert.target)
        except (NotFound, FailedPrecondition) as err:  # merged or gone since it was read
            self._log.info("sla rules not applied", ticket_id=ticket.id, reason=str(err))
