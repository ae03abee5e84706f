"""TicketsService, routing's side: applying the decision of rules that answered a change
of a ticket (trigger ticket_changed, RTE-1). Only another service calls it; the cause
event applies once."""

from __future__ import annotations

from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import identity
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid
from services.runtime.outbox import first_time

from . import rule_decisions
from .convert import summary_pb
from .deps import Deps

APPLIED = "tickets__routing_decisions"  # processed_events name of applied decisions


class RulesApi:
    _deps: Deps

    async def ApplyRoutingDecision(
        self, request: tickets_pb2.ApplyRoutingDecisionRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_tenant()
        if ident.operator_id:
            raise PermissionDenied("only routing applies its rules' decisions")
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        cause_id = str(parse_uuid(request.cause_event_id, "cause_event_id"))
        cause = events_pb2.EventEnvelope(
            event_id=cause_id, tenant_id=ident.tenant_id, correlation_id=ident.correlation_id
        )
        names = await rule_decisions.names(d, ident.tenant_id, request.decision)
        async with d.db.transaction() as conn:
            row = await d.repo.row(conn, ident.tenant_id, ticket_id, for_update=True)
            if row is None:
                raise NotFound("no such ticket", field="ticket_id")
            if not await first_time(conn, APPLIED, cause):
                return tickets_pb2.UpdateTicketResponse(ticket=summary_pb(row))
            if row.merged_into is not None:
                raise FailedPrecondition("the ticket was merged into another", field="ticket_id")
            now = d.clock.now()
            applied = await rule_decisions.apply(
                d, conn, ident.tenant_id, row, request.decision, names, now
            )
            await rule_decisions.announce(
                d,
                conn,
                cause,
                applied,
                now,
                rule_depth=request.rule_depth,
                decision=request.decision,
            )
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(applied.row),
            changes=[
                events_pb2.FieldChange(field=c.field, old_value=c.old, new_value=c.new)
                for c in applied.changes
            ],
        )
