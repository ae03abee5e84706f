"""The assigner's part of TicketsService (issue 18, RTE-2): routing assigns a ticket only
if nobody changed its assignee meanwhile, so that two routing replicas, or an operator
and the assigner, never assign one ticket twice. The change is audited and announced like
any assignment (ticket.updated, ticket.assigned), by the calling service."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import events, identity
from services.runtime.errors import InvalidArgument, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import domain
from .api_tickets import TicketsCoreApi, actor_of, assigned_pb, assignee_change
from .assign_rows import NewAssignee, locked_rows, set_assignees
from .convert import summary_pb
from .domain import FieldEdit, Status
from .records import Ticket

ASSIGNABLE = frozenset({Status.OPEN.value, Status.PENDING.value})
BATCH_MAX = 1000  # items in one AssignTickets


def _assignable(row: Ticket, expected: str) -> bool:
    """The precondition of an automatic assignment: nobody changed the assignee, and the
    ticket is open or pending and not merged."""
    current = str(row.assignee_id) if row.assignee_id else ""
    return current == expected and row.status in ASSIGNABLE and row.merged_into is None


def _checked(item: tickets_pb2.AssignTicketRequest, prefix: str = "") -> tuple[uuid.UUID, str]:
    """The request's ticket id and comment, its ids checked (fields named with `prefix`)."""
    ticket_id = parse_uuid(item.ticket_id, f"{prefix}ticket_id")
    if item.assignee_id:
        parse_uuid(item.assignee_id, f"{prefix}assignee_id")
    if item.expected_assignee_id:
        parse_uuid(item.expected_assignee_id, f"{prefix}expected_assignee_id")
    comment = domain.clean_text(
        item.comment, f"{prefix}comment", domain.COMMENT_MAX, required=False
    )
    return ticket_id, comment


def _service_caller() -> Identity:
    ident = identity.require_tenant()
    if ident.operator_id:
        raise PermissionDenied("automatic assignment is routing's call, not an operator's")
    return ident


class AssignApi(TicketsCoreApi):
    async def AssignTicket(
        self, request: tickets_pb2.AssignTicketRequest, context: Context
    ) -> tickets_pb2.AssignTicketResponse:
        ident = _service_caller()
        d = self._deps
        ticket_id, comment = _checked(request)
        operators = await d.directory.operators(ident) if request.assignee_id else None
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            if not _assignable(row, request.expected_assignee_id):
                return tickets_pb2.AssignTicketResponse(assigned=False, ticket=summary_pb(row))
            edit = FieldEdit(assignee_id=request.assignee_id)
            row, changes = await self._apply(conn, ident, row, edit, comment, operators)
        d.outbox.wake()
        return tickets_pb2.AssignTicketResponse(assigned=bool(changes), ticket=summary_pb(row))

    async def AssignTickets(
        self, request: tickets_pb2.AssignTicketsRequest, context: Context
    ) -> tickets_pb2.AssignTicketsResponse:
        ident = _service_caller()
        d = self._deps
        items = list(request.items)
        if len(items) > BATCH_MAX:
            raise InvalidArgument(f"at most {BATCH_MAX} items at once", field="items")
        ids: list[uuid.UUID] = []
        comments: list[str] = []
        for i, item in enumerate(items):
            ticket_id, comment = _checked(item, f"items[{i}].")
            ids.append(ticket_id)
            comments.append(comment)
        if len(set(ids)) != len(ids):
            raise InvalidArgument("a ticket is in the items twice", field="items")
        operators = await d.directory.operators(ident) if any(i.assignee_id for i in items) else {}
        actor = actor_of(ident)
        async with d.db.transaction() as conn:
            rows = await locked_rows(conn, ident.tenant_id, ids)
            new: list[NewAssignee] = []
            for item, ticket_id, comment in zip(items, ids, comments, strict=True):
                row = rows.get(ticket_id)
                if row is None or not ident.sees_inbox(row.inbox_id):
                    rows.pop(ticket_id, None)
                    continue
                new_op = operators.get(item.assignee_id) if item.assignee_id else None
                if (
                    not _assignable(row, item.expected_assignee_id)
                    or (item.assignee_id and new_op is None)
                    or item.assignee_id == item.expected_assignee_id
                ):
                    continue
                values, change = assignee_change(row, new_op)
                new.append(
                    NewAssignee(
                        ticket_id,
                        values["assignee_id"],
                        values["assignee_name"],
                        change,
                        comment,
                        d.ids.new(),
                    )
                )
            updated = await set_assignees(conn, ident.tenant_id, new, actor, d.clock.now())
            summaries = {i: summary_pb(r) for i, r in updated.items()}
            envs: list[events_pb2.EventEnvelope] = []
            for n in new:
                before, after, summary = (
                    rows[n.ticket_id],
                    updated[n.ticket_id],
                    summaries[n.ticket_id],
                )
                new_op = operators.get(str(n.assignee_id)) if n.assignee_id else None
                envs.append(
                    self._updated_env(ident, after, [n.change], n.comment, "update", None, summary)
                )
                envs.append(
                    self._envelope(
                        events.TICKET_ASSIGNED, ident, assigned_pb(before, after, new_op, summary)
                    )
                )
            await d.outbox.add_many(conn, envs)
        if envs:
            d.outbox.wake()
        resp = tickets_pb2.AssignTicketsResponse()
        for ticket_id in ids:
            result = resp.results.add()
            if ticket_id in summaries:
                result.assigned = True
                result.ticket.CopyFrom(summaries[ticket_id])
            elif ticket_id in rows:
                result.ticket.CopyFrom(summary_pb(rows[ticket_id]))
        return resp
