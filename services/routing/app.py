"""routing's composition root: message.received → message.routed."""

from __future__ import annotations

from switchboard.v1 import events_pb2

from services.runtime import events
from services.runtime import settings as rt_settings
from services.runtime.bus import ConsumerSpec, Delivery
from services.runtime.outbox import first_time
from services.runtime.service import ServiceRuntime

from . import domain

MESSAGES = ConsumerSpec(events.INGEST, "routing__messages", (events.MESSAGE_RECEIVED.subject,))


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("routing", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()

    async def on_received(env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        routed = domain.route(events.payload_of(env, events.MESSAGE_RECEIVED))
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
            await outbox.add(conn, out)
        outbox.wake()

    await rt.add_consumer(MESSAGES, on_received)
    rt.grpc_server()
    return await rt.serve()
