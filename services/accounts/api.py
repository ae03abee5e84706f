"""AccountsService over gRPC: the parts in api_auth (login, sessions, tokens, own
password), api_admin (operators, roles, inboxes, settings), api_logins (login history,
who is logged in, login locks) and api_board (notices, bulletin board, operation log),
and the lookups other services make."""

from __future__ import annotations

from switchboard.v1 import accounts_pb2, accounts_pb2_grpc

from services.runtime import identity, permissions
from services.runtime.errors import InvalidArgument
from services.runtime.grpc_server import Context

from . import domain
from .api_admin import AdminApi, inbox_pb
from .api_auth import AuthApi
from .api_board import BoardApi
from .api_logins import LoginsApi
from .deps import Deps, operator_pb

MAX_ADDRESSES = 100


class AccountsApi(
    AuthApi, AdminApi, LoginsApi, BoardApi, accounts_pb2_grpc.AccountsServiceServicer
):
    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def ResolveAddresses(
        self, request: accounts_pb2.ResolveAddressesRequest, context: Context
    ) -> accounts_pb2.ResolveAddressesResponse:
        if len(request.addresses) > MAX_ADDRESSES:
            raise InvalidArgument(f"at most {MAX_ADDRESSES} addresses", field="addresses")
        wanted = []
        for addr in request.addresses:
            try:
                wanted.append(domain.normalise_address(addr))
            except InvalidArgument:
                continue  # not an address: it resolves to nothing
        routes = await self._d.repo.resolve_addresses(wanted)
        return accounts_pb2.ResolveAddressesResponse(routes=routes)

    async def ListOperators(
        self, request: accounts_pb2.ListOperatorsRequest, context: Context
    ) -> accounts_pb2.ListOperatorsResponse:
        ident = identity.require_tenant()
        if request.include_inactive:
            identity.require_permission(
                ident, permissions.MANAGE_OPERATORS, "list inactive operators"
            )
        ops = await self._d.repo.operators(
            ident.tenant_id, include_inactive=request.include_inactive
        )
        return accounts_pb2.ListOperatorsResponse(operators=[operator_pb(op) for op in ops])

    async def ListInboxes(
        self, request: accounts_pb2.ListInboxesRequest, context: Context
    ) -> accounts_pb2.ListInboxesResponse:
        """The inboxes the caller may see (SEC-5); `all`, for administrators, every inbox
        with its members."""
        ident = identity.require_tenant()
        if request.all:
            identity.require_permission(ident, permissions.MANAGE_INBOXES, "list every inbox")
            rows = await self._d.repo.inboxes(self._d.repo.pool, ident.tenant_id)
            return accounts_pb2.ListInboxesResponse(
                inboxes=[inbox_pb(r, with_members=True) for r in rows]
            )
        only = ident.inbox_filter()
        rows = await self._d.repo.inboxes(self._d.repo.pool, ident.tenant_id, only)
        return accounts_pb2.ListInboxesResponse(
            inboxes=[inbox_pb(r, with_members=False) for r in rows]
        )
