"""Routing's SLA due times on the ticket (issue 18, consumer `tickets__sla`, from
sb.routing.sla.changed): routing owns the SLA; tickets keeps the soonest due time so that
lists sort by it (`sort=sla_due_at`). An event older than the one applied is ignored, so
a redelivered or late one cannot put an old due time back."""

from __future__ import annotations

import uuid
from datetime import UTC

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from .deps import Deps

SLA_DURABLE = registry.TICKETS_SLA.durable


class SlaDueTimes:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.sla")

    async def on_sla_changed(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        changed = events.payload_of(env, events.SLA_CHANGED)
        due = (
            changed.next_due_at.ToDatetime(tzinfo=UTC) if changed.HasField("next_due_at") else None
        )
        at = env.occurred_at.ToDatetime(tzinfo=UTC)
        async with self._d.db.transaction() as conn:
            if not await first_time(conn, SLA_DURABLE, env):
                return
            await conn.execute(
                "UPDATE tickets SET sla_due_at = $3, sla_changed_at = $4 "
                "WHERE tenant_id = $1 AND id = $2 "
                "AND (sla_changed_at IS NULL OR sla_changed_at <= $4)",
                uuid.UUID(env.tenant_id),
                uuid.UUID(changed.ticket_id),
                due,
                at,
            )
        self._log.debug("sla due time kept", ticket_id=changed.ticket_id, state=changed.state)
