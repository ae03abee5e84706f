"""The assigner's part of TicketsService (issue 18, RTE-2): routing assigns a ticket only
if nobody changed its assignee meanwhile, so that two routing replicas, or an operator
and the assigner, never assign one ticket twice. The change is audited and announced like
any assignment (ticket.updated, ticket.assigned), by the calling service."""

from __future__ import annotations

from switchboard.v1 import tickets_pb2

from services.runtime import identity
from services.runtime.errors import PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import domain
from .api_tickets import TicketsCoreApi
from .domain import FieldEdit, Status
from .repo import summary_pb

ASSIGNABLE = frozenset({Status.OPEN.value, Status.PENDING.value})


class AssignApi(TicketsCoreApi):
    async def AssignTicket(
        self, request: tickets_pb2.AssignTicketRequest, context: Context
    ) -> tickets_pb2.AssignTicketResponse:
        ident = identity.require_tenant()
        if ident.operator_id:
            raise PermissionDenied("automatic assignment is routing's call, not an operator's")
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        if request.assignee_id:
            parse_uuid(request.assignee_id, "assignee_id")
        if request.expected_assignee_id:
            parse_uuid(request.expected_assignee_id, "expected_assignee_id")
        comment = domain.clean_text(request.comment, "comment", domain.COMMENT_MAX, required=False)
        operators = await d.directory.operators(ident) if request.assignee_id else None
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            current = str(row.assignee_id) if row.assignee_id else ""
            if (
                current != request.expected_assignee_id
                or row.status not in ASSIGNABLE
                or row.merged_into is not None
            ):
                return tickets_pb2.AssignTicketResponse(assigned=False, ticket=summary_pb(row))
            edit = FieldEdit(assignee_id=request.assignee_id)
            row, changes = await self._apply(conn, ident, row, edit, comment, operators)
        d.outbox.wake()
        return tickets_pb2.AssignTicketResponse(assigned=bool(changes), ticket=summary_pb(row))
