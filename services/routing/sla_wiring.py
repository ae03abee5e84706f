"""The SLA side of routing's composition root (RTE-4): the SlaService API, the consumer
of tickets' events that keeps each ticket's SLA, and the due-time timers."""

from __future__ import annotations

from switchboard.v1 import routing_sla_pb2, routing_sla_pb2_grpc

from services.runtime import registry
from services.runtime.db import Database
from services.runtime.grpc_server import GrpcServer
from services.runtime.outbox import Outbox
from services.runtime.service import ServiceRuntime

from .sla_api import SlaApi
from .sla_clocks import DueTimers, SlaClocks
from .sla_repo import SlaRepo


async def wire(rt: ServiceRuntime, db: Database, outbox: Outbox, server: GrpcServer) -> SlaClocks:
    repo = SlaRepo(db.pool)
    due = DueTimers(db, repo, outbox, rt.clock, rt.ids)
    clocks = SlaClocks(db, repo, outbox, rt.clock, rt.ids, registry.ROUTING_SLA, due)
    api = SlaApi(db, repo, clocks, rt.clock, rt.ids)
    rt.add_background(due.name, due.start, due.stop)
    rt.on_close(api.close)
    await rt.add_consumer(registry.ROUTING_SLA, clocks.on_ticket_event)
    server.add(
        routing_sla_pb2_grpc.add_SlaServiceServicer_to_server,
        api,
        routing_sla_pb2.DESCRIPTOR.services_by_name["SlaService"].full_name,
    )
    return clocks
