"""routing's composition root: message.received → (tickets.ResolveThread, for mail that
is not our own) → the rules (rules_wiring) → a new ticket's SLA (sla_intake) →
message.routed; the RoutingService API."""

from __future__ import annotations

import grpc
from switchboard.v1 import events_pb2, tickets_pb2, tickets_pb2_grpc

from services.runtime import events, registry
from services.runtime import settings as rt_settings
from services.runtime.bus import Delivery
from services.runtime.errors import Unavailable
from services.runtime.identity import Identity
from services.runtime.outbox import first_time
from services.runtime.service import ServiceRuntime

from . import assign_wiring, domain, rules_time, rules_wiring, sla_wiring, webhook_wiring
from .calendar_hours import CalendarHours
from .sla_intake import SlaAtIntake
from .sla_repo import SlaRepo

MESSAGES = registry.ROUTING_MESSAGES


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("routing", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    tickets = tickets_pb2_grpc.TicketsServiceStub(rt.channel("tickets"))
    server = rt.grpc_server()
    hours = CalendarHours(SlaRepo(db.pool), db.pool)
    rules = await rules_wiring.wire(rt, db, server, hours.of)
    clocks = await sla_wiring.wire(rt, db, outbox, server)
    sla = SlaAtIntake(SlaRepo(db.pool), clocks, rt.clock)

    async def thread_of(
        env: events_pb2.EventEnvelope, received: events_pb2.MessageReceived
    ) -> tickets_pb2.ResolveThreadResponse:
        """Ask tickets (which owns the index of Message-IDs) where a mail belongs; while
        tickets is away the event is retried later, never routed blind. With the sender's
        contact when a rule of the inbox reads one."""
        with_contact = await rules.wants_contact(env.tenant_id, received)
        md = Identity(tenant_id=env.tenant_id, correlation_id=env.correlation_id).metadata()
        try:
            resp: tickets_pb2.ResolveThreadResponse = await tickets.ResolveThread(
                tickets_pb2.ResolveThreadRequest(
                    inbox_id=received.inbox.id, mail=received.mail, with_contact=with_contact
                ),
                metadata=md,
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"tickets.ResolveThread: {err.code().name}") from None
        return resp

    async def on_received(env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        received = events.payload_of(env, events.MESSAGE_RECEIVED)
        existing = None
        contact = None
        if domain.needs_thread_lookup(received):
            thread = await thread_of(env, received)
            routed = domain.route(received, thread.ticket_id, thread.reason)
            routed.new_ticket_id = rt.ids.new_str()
            existing = thread.ticket if thread.HasField("ticket") else None
            contact = thread.contact if thread.HasField("contact") else None
        else:
            routed = domain.route(received)
        runs = await rules.decide(env, received, routed, existing, contact)
        new_sla = await sla.route(env.tenant_id, received, routed)
        out = events.caused_by(
            events.MESSAGE_ROUTED,
            env,
            event_id=rt.ids.new_str(),
            occurred_at=rt.clock.now(),
            payload=routed,
            actor=events.system_actor("routing"),
        )
        async with db.transaction() as conn:
            if not await first_time(conn, MESSAGES.durable, env):
                return
            await rules.note(conn, runs)
            await sla.note(conn, env.tenant_id, new_sla)
            await outbox.add(conn, out)
        outbox.wake()

    await rt.add_consumer(MESSAGES, on_received)
    await assign_wiring.wire(rt, db, outbox, server)
    await rules_time.wire(rt, rules.ctx, clocks, SlaRepo(db.pool))
    await webhook_wiring.wire(rt, db, server)
    return await rt.serve()
