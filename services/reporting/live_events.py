"""The live rows from the events: tickets' ticket.created / updated / assigned /
message_added (`reporting__live`) and routing's sla.changed / sla.warning
(`reporting__live_sla`; JetStream consumers follow one stream each). Each event is applied
once (`processed_events`, in the same transaction as its effect); an older state never
overwrites a newer one (live_repo.py), so redeliveries and any order are safe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime import events, registry
from services.runtime.bus import Delivery, Item
from services.runtime.db import Database
from services.runtime.errors import Poison
from services.runtime.outbox import first_times

from .live_model import change_of
from .live_repo import LiveRepo

TICKETS = registry.REPORTING_LIVE
SLA = registry.REPORTING_LIVE_SLA


class LiveEvents:
    """One event (`on_ticket_event`), or a fetch's events in one transaction
    (`on_ticket_events`, the consumer loop's batch handler: live_wiring.py)."""

    def __init__(self, db: Database, repo: LiveRepo) -> None:
        self._db = db
        self._repo = repo

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.on_ticket_events([(env, delivery)])

    async def on_ticket_events(self, items: Sequence[Item]) -> None:
        changes = {env.event_id: change_of(env) for env, _ in items}
        async with self._db.transaction() as conn:
            fresh = await first_times(conn, TICKETS.durable, [env for env, _ in items])
            await self._repo.apply_tickets(
                conn, [(env.tenant_id, changes[env.event_id]) for env in fresh]
            )

    async def on_sla_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.on_sla_events([(env, delivery)])

    async def on_sla_events(self, items: Sequence[Item]) -> None:
        async with self._db.transaction() as conn:
            for env in await first_times(conn, SLA.durable, [env for env, _ in items]):
                await self._apply_sla(conn, env)

    async def _apply_sla(self, conn: asyncpg.Connection, env: events_pb2.EventEnvelope) -> None:
        field = env.WhichOneof("payload")
        occurred = env.occurred_at.ToDatetime(tzinfo=UTC)
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
