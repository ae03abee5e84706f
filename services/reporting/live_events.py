"""The live rows from the events: tickets' ticket.created / updated / assigned /
message_added (`reporting__live`) and routing's sla.changed / sla.warning
(`reporting__live_sla`; JetStream consumers follow one stream each). Each event is applied
once (`processed_events`, in the same transaction as its effect); an older state never
overwrites a newer one (live_repo.py), so redeliveries and any order are safe."""

from __future__ import annotations

from datetime import UTC

from switchboard.v1 import events_pb2

from services.runtime import events, registry
from services.runtime.bus import Delivery
from services.runtime.db import Database
from services.runtime.errors import Poison
from services.runtime.outbox import first_time

from .live_model import change_of
from .live_repo import LiveRepo

TICKETS = registry.REPORTING_LIVE
SLA = registry.REPORTING_LIVE_SLA


class LiveEvents:
    def __init__(self, db: Database, repo: LiveRepo) -> None:
        self._db = db
        self._repo = repo

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        change = change_of(env)
        async with self._db.transaction() as conn:
            if not await first_time(conn, TICKETS.durable, env):
                return
            await self._repo.apply_ticket(conn, env.tenant_id, change)

    async def on_sla_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        field = env.WhichOneof("payload")
        occurred = env.occurred_at.ToDatetime(tzinfo=UTC)
        async with self._db.transaction() as conn:
            if not await first_time(conn, SLA.durable, env):
                return
            if field == events.SLA_CHANGED.payload_field:
                changed = events.payload_of(env, events.SLA_CHANGED)
                if not changed.ticket_id:
                    raise Poison("sla.changed without a ticket id")
                due = (
                    changed.next_due_at.ToDatetime(tzinfo=UTC)
                    if changed.HasField("next_due_at")
                    else None
                )
                await self._repo.apply_sla(
                    conn, env.tenant_id, changed.ticket_id, changed.state, due, occurred
                )
            elif env.type == events.SLA_WARNING.name:
                alert = events.payload_of(env, events.SLA_WARNING)
                if not alert.ticket_id:
                    raise Poison("sla.warning without a ticket id")
                await self._repo.apply_warning(
                    conn,
                    env.tenant_id,
                    alert.ticket_id,
                    alert.due_at.ToDatetime(tzinfo=UTC),
                    occurred,
                )
            else:
                raise Poison(f"reporting's live rows do not follow {env.type!r}")
