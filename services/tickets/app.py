"""tickets' composition root: message.routed → a ticket (ticket.created); the API."""

from __future__ import annotations

from switchboard.v1 import events_pb2, tickets_pb2, tickets_pb2_grpc

from services.runtime import events, log
from services.runtime import settings as rt_settings
from services.runtime.bus import ConsumerSpec, Delivery
from services.runtime.outbox import first_time
from services.runtime.service import ServiceRuntime

from . import domain
from .api import TicketsApi
from .repo import TicketsRepo, summary_pb

ROUTED = ConsumerSpec(events.ROUTING, "tickets__routed", (events.MESSAGE_ROUTED.subject,))


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("tickets", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    repo = TicketsRepo(db.pool)

    async def on_routed(env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        routed = events.payload_of(env, events.MESSAGE_ROUTED)
        async with db.transaction() as conn:
            if not await first_time(conn, ROUTED.durable, env):
                return
            if await repo.message_known(conn, env.tenant_id, routed.message_id):
                return  # the same mail announced again under another event id
            now = rt.clock.now()
            new = domain.ticket_for_new_message(rt.ids.new_str(), routed)
            row = await repo.insert_ticket(conn, env.tenant_id, new, now)
            await repo.insert_message(conn, env.tenant_id, new.id, routed, new.received_at)
            created = events_pb2.TicketCreated(ticket=summary_pb(row), message_id=routed.message_id)
            await outbox.add(
                conn,
                events.caused_by(
                    events.TICKET_CREATED,
                    env,
                    event_id=rt.ids.new_str(),
                    occurred_at=now,
                    payload=created,
                    actor=events.system_actor("tickets"),
                ),
            )
        outbox.wake()
        log.get("tickets").info("ticket created", ticket_id=new.id, message_id=routed.message_id)

    await rt.add_consumer(ROUTED, on_routed)
    server = rt.grpc_server()
    server.add(
        tickets_pb2_grpc.add_TicketsServiceServicer_to_server,
        TicketsApi(repo),
        tickets_pb2.DESCRIPTOR.services_by_name["TicketsService"].full_name,
    )
    return await rt.serve()
