"""What approval asks the services that own the data: composition (the draft and its
current revision), tickets (the ticket's labels and priority) and accounts (the tenant's
operators, roles and inboxes, to check a policy's names). Calls carry the caller's
identity, so the owners' own checks (tenant, inbox, permissions) apply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    composition_pb2,
    composition_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime.grpc_client import passed_on

Metadata = Sequence[tuple[str, str]]


class Peers:
    def __init__(
        self, composition: grpc.aio.Channel, tickets: grpc.aio.Channel, accounts: grpc.aio.Channel
    ) -> None:
        self.composition = composition_pb2_grpc.CompositionServiceStub(composition)
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)

    async def _call(self, service: str, method: Any, request: Any, md: Metadata) -> Any:
        try:
            return await method(request, metadata=list(md), timeout=10)
        except grpc.aio.AioRpcError as err:
            raise passed_on(err, service) from err

    async def draft(self, md: Metadata, draft_id: str) -> composition_pb2.Draft:
        found: composition_pb2.Draft = await self._call(
            "composition",
            self.composition.GetDraft,
            composition_pb2.GetDraftRequest(draft_id=draft_id),
            md,
        )
        return found

    async def ticket(self, md: Metadata, ticket_id: str) -> Any:
        found = await self._call(
            "tickets", self.tickets.GetTicket, tickets_pb2.GetTicketRequest(ticket_id=ticket_id), md
        )
        return found.ticket

    async def operator_ids(self, md: Metadata) -> set[str]:
        found = await self._call(
            "accounts",
            self.accounts.ListOperators,
            accounts_pb2.ListOperatorsRequest(include_inactive=False),
            md,
        )
        return {o.id for o in found.operators}

    async def role_names(self, md: Metadata) -> set[str]:
        found = await self._call(
            "accounts", self.accounts.ListRoles, accounts_pb2.ListRolesRequest(), md
        )
        return {r.name for r in found.roles}

    async def inbox_ids(self, md: Metadata) -> set[str]:
        found = await self._call(
            "accounts", self.accounts.ListInboxes, accounts_pb2.ListInboxesRequest(), md
        )
        return {i.id for i in found.inboxes}
