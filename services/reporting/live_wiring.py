"""The live figures' part of reporting's composition root (issue 19, rlive: RPT-5,
RPT-7): the consumers keeping the live rows (`reporting__live`, `reporting__live_sla`)
and the LiveReportsService."""

from __future__ import annotations

from switchboard.v1 import reporting_live_pb2, reporting_live_pb2_grpc

from services.runtime.db import Database
from services.runtime.grpc_server import GrpcServer
from services.runtime.service import ServiceRuntime

from .live_api import LiveApi
from .live_events import SLA, TICKETS, LiveEvents
from .live_peers import LivePeers
from .live_repo import LiveRepo


async def wire(rt: ServiceRuntime, db: Database, server: GrpcServer) -> None:
    repo = LiveRepo()
    consumer = LiveEvents(db, repo)
    await rt.add_consumer(TICKETS, consumer.on_ticket_event, consumer.on_ticket_events)
    await rt.add_consumer(SLA, consumer.on_sla_event, consumer.on_sla_events)
    peers = LivePeers(rt.channel("accounts"), rt.channel("tickets"))
    server.add(
        reporting_live_pb2_grpc.add_LiveReportsServiceServicer_to_server,
        LiveApi(db, repo, peers, rt.clock),
        reporting_live_pb2.DESCRIPTOR.services_by_name["LiveReportsService"].full_name,
    )
