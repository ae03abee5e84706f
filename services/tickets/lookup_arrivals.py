"""The customer-data lookup for a new ticket (issue 21, RTE-3): on `ticket.created`, when
the tenant's lookup maps a customer value, its contact's answer is fetched in the
background, so the value — and with it routing's priority — is there while the ticket
waits in the queue, not only once an operator opens it.

The consumer never waits for the tenant's system: each lookup runs as a task (at most
`MAX_INFLIGHT` at once in a process; beyond that a new ticket's lookup is skipped and
happens when an operator opens it), and the event is acknowledged at once. A lookup lost
in a restart is the same: the panel asks when the ticket is opened. Failures are logged
and change nothing (the ticket is never blocked)."""

from __future__ import annotations

import asyncio

from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.bus import Delivery

from .api_lookup import CustomerLookupApi

MAX_INFLIGHT = 16

_log = log.get("tickets.lookup_arrivals")


class LookupOnArrival:
    def __init__(self, lookups: CustomerLookupApi, max_inflight: int = MAX_INFLIGHT) -> None:
        self._lookups = lookups
        self._max = max_inflight
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_created(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        created = events.payload_of(env, events.TICKET_CREATED)
        contact_id = created.ticket.contact_id
        if not contact_id or created.ticket.merged_into:
            return
        if len(self._tasks) >= self._max:
            _log.info(
                "customer lookup on arrival skipped: too many in flight",
                tenant_id=env.tenant_id,
                ticket_id=created.ticket.id,
            )
            return
        task = asyncio.create_task(self._run(env, created.ticket.id, contact_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, env: events_pb2.EventEnvelope, ticket_id: str, contact_id: str) -> None:
        try:
            outcome = await self._lookups.prefetch(env.tenant_id, contact_id, env.correlation_id)
        except Exception as exc:  # never blocks anything; the panel asks again
            _log.warning(
                "customer lookup on arrival failed",
                tenant_id=env.tenant_id,
                ticket_id=ticket_id,
                contact_id=contact_id,
                error=type(exc).__name__,
            )
            return
        if outcome not in ("no_lookup", "no_value"):
            _log.info(
                "customer lookup on arrival",
                tenant_id=env.tenant_id,
                ticket_id=ticket_id,
                contact_id=contact_id,
                outcome=outcome,
            )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
