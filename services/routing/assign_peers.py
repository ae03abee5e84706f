"""What the assigner asks other services: accounts for the tenant's active operators and
the inboxes they are members of (kept a few seconds), tickets to assign."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    common_pb2,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime.errors import Unavailable
from services.runtime.identity import Identity

CACHE_S = 10.0
PAGE = 200  # tickets in one page of tickets.ListTickets (its most)
SYSTEM_NAME = "routing"  # the actor tickets records for an automatic assignment


@dataclass(frozen=True, slots=True)
class Member:
    operator_id: str
    display_name: str
    inboxes: frozenset[str]  # the inboxes they are a member of
    all_inboxes: bool  # they see every inbox


def system(tenant: str, correlation_id: str = "") -> Identity:
    """Routing calling on its own behalf (no operator)."""
    return Identity(tenant_id=tenant, display_name=SYSTEM_NAME, correlation_id=correlation_id)


class Peers:
    def __init__(self, accounts: grpc.aio.Channel, tickets: grpc.aio.Channel) -> None:
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._members: dict[str, tuple[float, dict[str, Member]]] = {}

    async def members(self, tenant: str, *, fresh: bool = False) -> dict[str, Member]:
        """The tenant's active operators by id."""
        hit = self._members.get(tenant)
        if not fresh and hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        try:
            resp = await self._accounts.ListOperators(
                accounts_pb2.ListOperatorsRequest(), metadata=system(tenant).metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts.ListOperators: {err.code().name}") from None
        found = {
            o.id: Member(o.id, o.display_name, frozenset(o.inbox_ids), o.all_inboxes)
            for o in resp.operators
            if o.active
        }
        self._members[tenant] = (time.monotonic(), found)
        return found

    async def visible_inboxes(self, caller: Identity) -> set[str]:
        """The inboxes the calling operator may see."""
        try:
            resp = await self._accounts.ListInboxes(
                accounts_pb2.ListInboxesRequest(), metadata=caller.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts.ListInboxes: {err.code().name}") from None
        return {i.id for i in resp.inboxes}

    async def assign_many(
        self, tenant: str, items: Sequence[tickets_pb2.AssignTicketRequest]
    ) -> list[tickets_pb2.AssignTicketResponse]:
        """Assign (or with assignee_id "" take back) each ticket (at most 1,000) if its
        assignee is still `expected_assignee_id`, in one call of tickets (one transaction
        there); tickets answers each in order with the ticket as it is either way (no
        `ticket`: it does not exist)."""
        try:
            resp: tickets_pb2.AssignTicketsResponse = await self._tickets.AssignTickets(
                tickets_pb2.AssignTicketsRequest(items=items),
                metadata=system(tenant).metadata(),
                timeout=30,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"tickets.AssignTickets: {err.code().name}") from None
        return list(resp.results)

    async def open_tickets(self, tenant: str, cursor: str) -> tickets_pb2.ListTicketsResponse:
        """A page of the tenant's open and pending tickets, every inbox (`cursor` "" : the
        first; the answer's `next_cursor` "" : the last)."""
        try:
            resp: tickets_pb2.ListTicketsResponse = await self._tickets.ListTickets(
                tickets_pb2.ListTicketsRequest(
                    statuses=[common_pb2.TICKET_STATUS_OPEN, common_pb2.TICKET_STATUS_PENDING],
                    page=common_pb2.PageRequest(limit=PAGE, cursor=cursor),
                    ascending=True,
                ),
                metadata=system(tenant).metadata(),
                timeout=30,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"tickets.ListTickets: {err.code().name}") from None
        return resp
