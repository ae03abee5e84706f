"""What approval asks the services that own the data: composition (the draft and its
current revision; holding it while a request is pending and releasing it), tickets (the
ticket's labels and priority; releasing the author's reply lock when they submit) and
accounts (the tenant's operators, roles and inboxes, to check a policy's names). Calls
carry the caller's identity, so the owners' own checks (tenant, inbox, permissions)
apply."""

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

from services.runtime.grpc_client import call_peer, passed_on

Metadata = Sequence[tuple[str, str]]


class Peers:
    def __init__(
        self, composition: grpc.aio.Channel, tickets: grpc.aio.Channel, accounts: grpc.aio.Channel
    ) -> None:
        self.composition = composition_pb2_grpc.CompositionServiceStub(composition)
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)

    async def draft(self, md: Metadata, draft_id: str) -> composition_pb2.Draft:
        found: composition_pb2.Draft = await call_peer(
            "composition",
            self.composition.GetDraft,
            composition_pb2.GetDraftRequest(draft_id=draft_id),
            md,
        )
        return found

    async def hold(
        self, md: Metadata, draft_id: str, request_id: str, revision: int, replaces: str
    ) -> composition_pb2.Draft:
        """The draft `in_approval` for this request (its author's identity)."""
        held: composition_pb2.Draft = await call_peer(
            "composition",
            self.composition.HoldForApproval,
            composition_pb2.HoldForApprovalRequest(
                draft_id=draft_id,
                request_id=request_id,
                revision=revision,
                replaces_request_id=replaces,
            ),
            md,
        )
        return held

    async def release(self, md: Metadata, draft_id: str, request_id: str) -> None:
        """The draft open again, if it is still held for this request."""
        await call_peer(
            "composition",
            self.composition.ReleaseFromApproval,
            composition_pb2.ReleaseFromApprovalRequest(draft_id=draft_id, request_id=request_id),
            md,
        )

    async def release_own_lock(self, md: Metadata, ticket_id: str, operator_id: str) -> bool:
        """The caller's reply lock on the ticket let go, whatever its fence (False when
        they hold none)."""
        try:
            lock = await self.tickets.GetReplyLock(
                tickets_pb2.ReplyLockRequest(ticket_id=ticket_id), metadata=list(md), timeout=10
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return False  # nobody is replying
            raise passed_on(err, "tickets") from err
        if lock.holder.id != operator_id:
            return False
        released = await call_peer(
            "tickets",
            self.tickets.ReleaseReplyLock,
            tickets_pb2.ReplyLockRequest(ticket_id=ticket_id, fence=lock.fence),
            md,
        )
        return bool(released.released)

    async def ticket(self, md: Metadata, ticket_id: str) -> Any:
        found = await call_peer(
            "tickets", self.tickets.GetTicket, tickets_pb2.GetTicketRequest(ticket_id=ticket_id), md
        )
        return found.ticket

    async def operator_ids(self, md: Metadata) -> set[str]:
        found = await call_peer(
            "accounts",
            self.accounts.ListOperators,
            accounts_pb2.ListOperatorsRequest(include_inactive=False),
            md,
        )
        return {o.id for o in found.operators}

    async def role_names(self, md: Metadata) -> set[str]:
        found = await call_peer(
            "accounts", self.accounts.ListRoles, accounts_pb2.ListRolesRequest(), md
        )
        return {r.name for r in found.roles}

    async def inbox_ids(self, md: Metadata) -> set[str]:
        found = await call_peer(
            "accounts", self.accounts.ListInboxes, accounts_pb2.ListInboxesRequest(), md
        )
        return {i.id for i in found.inboxes}
