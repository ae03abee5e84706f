"""Assignment's part of routing's composition root (issue 18, RTE-2): the
AssignmentService API, the consumer of tickets' events (`routing__tickets`), the
assigner's passes and the backfill of tickets routing never saw."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field
from switchboard.v1 import routing_assign_pb2, routing_assign_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.db import Database
from services.runtime.grpc_server import GrpcServer
from services.runtime.outbox import Outbox
from services.runtime.service import ServiceRuntime

from .assign_api import AssignmentApi
from .assign_backfill import Backfill
from .assign_peers import Peers
from .assign_repo import AssignRepo
from .assigner import Assigner
from .ticket_events import TICKETS, TicketEvents


class AssignSettings(rt_settings.ServiceSettings):
    # how often the assigner looks again without being woken (tiers widen, presences
    # lapse, first replies come due): a widening is at most this late
    assign_every_s: float = Field(default=5.0, gt=0, le=3600)


async def wire(rt: ServiceRuntime, db: Database, outbox: Outbox, server: GrpcServer) -> None:
    settings = rt_settings.load(AssignSettings)
    repo = AssignRepo()
    peers = Peers(rt.channel("accounts"), rt.channel("tickets"))
    assigner = Assigner(db, repo, peers, rt.clock, every_s=settings.assign_every_s)
    rt.add_background(assigner.name, assigner.start, assigner.stop)
    backfill = Backfill(db, repo, peers, rt.clock, assigner.wake)
    rt.add_background(backfill.name, backfill.start, backfill.stop)
    await rt.add_consumer(TICKETS, TicketEvents(db, repo, assigner.wake).on_ticket_event)
    server.add(
        routing_assign_pb2_grpc.add_AssignmentServiceServicer_to_server,
        AssignmentApi(
            db, repo, peers, rt.clock, _both(assigner.wake, backfill.wake), outbox, rt.ids
        ),
        routing_assign_pb2.DESCRIPTOR.services_by_name["AssignmentService"].full_name,
    )


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    """Wake the assigner and the backfill (a strategy set may be a tenant's first)."""

    def wake() -> None:
        first()
        second()

    return wake
