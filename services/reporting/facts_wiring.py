"""The facts part of reporting's composition root (issue 19 §1, §2): the consumers that
make facts from every service's events, the inbox calendars they ask routing for, and the
roller that folds new facts into the rollups; and the consumer of outbound's surveys that
keeps the satisfaction ratings (issue 20, ratings_store.py)."""

from __future__ import annotations

from switchboard.v1 import routing_sla_pb2_grpc

from services.runtime import registry
from services.runtime.service import ServiceRuntime

from .facts_intake import FactsIntake
from .facts_roller import Roller
from .inbox_hours import InboxHours
from .ratings_store import RatingsIntake


async def wire(rt: ServiceRuntime, *, calendar_ttl_s: float, roll_every_s: float) -> None:
    assert rt.db is not None
    roller = Roller(rt.db, every_s=roll_every_s)
    hours = InboxHours(routing_sla_pb2_grpc.SlaServiceStub(rt.channel("routing")), calendar_ttl_s)
    intake = FactsIntake(rt.db, hours, roller.wake)
    # each fetch's events in one transaction (one by one when that fails)
    await rt.add_consumer(registry.REPORTING_TICKETS, intake.tickets, intake.tickets_batch)
    await rt.add_consumer(registry.REPORTING_SENDS, intake.sends, intake.sends_batch)
    await rt.add_consumer(registry.REPORTING_APPROVALS, intake.approvals, intake.approvals_batch)
    await rt.add_consumer(registry.REPORTING_SLA, intake.sla, intake.sla_batch)
    ratings = RatingsIntake(rt.db)  # satisfaction: one row per survey, not facts
    await rt.add_consumer(registry.REPORTING_SURVEYS, ratings.survey, ratings.surveys_batch)
    rt.add_background("reporting-roller", roller.start, roller.stop)
