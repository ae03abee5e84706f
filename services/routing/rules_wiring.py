"""Wiring of the routing rules (RTE-1) into routing's process: the store and its cache,
the RoutingService API, the consumers of ticket changes (trigger ticket_changed) and of
SLA alerts (sla_warning, sla_breached), and the intake step app.py calls for every
received mail."""

from __future__ import annotations

import asyncio

from switchboard.v1 import routing_pb2, routing_pb2_grpc

from services.runtime import registry
from services.runtime.db import Database
from services.runtime.grpc_server import GrpcServer
from services.runtime.service import ServiceRuntime

from .language import LanguageDetector
from .peers import Peers
from .rule_store import RuleCache, RuleStore
from .rules_api import RoutingApi, RulesDeps
from .rules_changes import TicketChanges
from .rules_intake import HoursOf, RulesContext, RulesIntake
from .rules_sla import SlaAlerts
from .sla_repo import SlaRepo


async def wire(
    rt: ServiceRuntime, db: Database, server: GrpcServer, hours_of: HoursOf
) -> RulesIntake:
    """`hours_of(tenant)`: the business-hours lookup over the tenant's SLA calendars."""
    store = RuleStore(db.pool)
    cache = RuleCache(store)
    peers = Peers(
        rt.channel("tickets"),
        rt.channel("ingestion"),
        rt.channel("accounts"),
        rt.channel("composition"),
    )
    calendars = SlaRepo(db.pool)

    async def calendar_ids(tenant: str) -> set[str]:
        return {c.id for c in await calendars.calendars(calendars.pool, tenant)}

    deps = RulesDeps(store, cache, peers, rt.clock, rt.ids, hours_of, calendar_ids)
    server.add(
        routing_pb2_grpc.add_RoutingServiceServicer_to_server,
        RoutingApi(deps),
        routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name,
    )
    detector = await asyncio.to_thread(LanguageDetector)  # the model loads in about a second
    ctx = RulesContext(store, cache, peers, rt.clock, hours_of, detector.detect)
    await rt.add_consumer(registry.ROUTING_TICKET_CHANGES, TicketChanges(ctx).on_updated)
    await rt.add_consumer(registry.ROUTING_SLA_RULES, SlaAlerts(ctx).on_alert)
    return RulesIntake(ctx)
