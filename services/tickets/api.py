"""TicketsService over gRPC."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import events_pb2, tickets_pb2, tickets_pb2_grpc

from services.runtime import identity
from services.runtime.errors import NotFound
from services.runtime.ids import parse_uuid

from .domain import Cursor, Status, page_size
from .repo import TicketsRepo, summary_pb


class TicketsApi(tickets_pb2_grpc.TicketsServiceServicer):
    def __init__(self, repo: TicketsRepo) -> None:
        self._repo = repo

    async def ListTickets(self, request: Any, context: Any) -> tickets_pb2.ListTicketsResponse:
        ident = identity.require_tenant()
        status = Status.from_pb(request.status)
        limit = page_size(request.page.limit)
        after = Cursor.decode(request.page.cursor) if request.page.cursor else None
        rows = await self._repo.list_tickets(ident.tenant_id, status, limit, after)
        resp = tickets_pb2.ListTicketsResponse(tickets=[summary_pb(r) for r in rows[:limit]])
        if len(rows) > limit:
            last = rows[limit - 1]
            resp.next_cursor = Cursor(last["received_at"], last["id"]).encode()
        return resp

    async def GetTicket(self, request: Any, context: Any) -> tickets_pb2.GetTicketResponse:
        ident = identity.require_tenant()
        found = await self._repo.get(ident.tenant_id, parse_uuid(request.ticket_id, "ticket_id"))
        if found is None:
            raise NotFound("no such ticket", field="ticket_id")
        row, msgs = found
        resp = tickets_pb2.GetTicketResponse(ticket=summary_pb(row))
        for m in msgs:
            tm = resp.messages.add(id=str(m["id"]), channel=m["channel"])
            tm.received_at.FromDatetime(m["received_at"])
            tm.mail.CopyFrom(events_pb2.MailSummary.FromString(bytes(m["summary"])))
        return resp
