"""AccountsService over gRPC."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2

from services.runtime import identity, log
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument, Unauthenticated
from services.runtime.ids import IdGenerator

from . import domain
from .repo import AccountsRepo

MAX_ADDRESSES = 100


def _operator_pb(op: domain.OperatorRecord) -> accounts_pb2.Operator:
    return accounts_pb2.Operator(
        id=op.id,
        tenant_id=op.tenant_id,
        login=op.login,
        display_name=op.display_name,
        roles=list(op.roles),
    )


class AccountsApi(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(
        self, repo: AccountsRepo, clock: Clock, ids: IdGenerator, session_ttl: timedelta
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._ids = ids
        self._ttl = session_ttl
        self._log = log.get("accounts.api")

    async def Authenticate(self, request: Any, context: Any) -> accounts_pb2.AuthenticateResponse:
        domain.check_credentials_input(request.login, request.password)
        op = await self._repo.operator_by_login(request.login)
        ok = await asyncio.to_thread(
            domain.verify_password, op.password_hash if op else None, request.password
        )
        ok = ok and op is not None and op.active
        now = self._clock.now()
        await self._repo.record_login(
            id=self._ids.new(),
            op=op,
            login=request.login,
            success=ok,
            client_address=request.client_address,
            user_agent=request.user_agent,
            at=now,
        )
        if not ok or op is None:
            self._log.info("login refused", client=request.client_address)
            raise Unauthenticated("wrong login or password")
        token, token_hash = domain.new_session_token()
        expires = now + self._ttl
        await self._repo.create_session(
            token_hash=token_hash,
            op=op,
            created_at=now,
            expires_at=expires,
            client_address=request.client_address,
            user_agent=request.user_agent,
        )
        self._log.info("login", operator_id=op.id, tenant_id=op.tenant_id)
        resp = accounts_pb2.AuthenticateResponse(token=token, operator=_operator_pb(op))
        resp.expires_at.FromDatetime(expires)
        return resp

    async def ResolveSession(
        self, request: Any, context: Any
    ) -> accounts_pb2.ResolveSessionResponse:
        if not request.token or len(request.token) > 200:
            raise Unauthenticated("no valid session token")
        found = await self._repo.session(domain.token_hash(request.token), self._clock.now())
        if found is None:
            raise Unauthenticated("session unknown or expired")
        op, expires = found
        resp = accounts_pb2.ResolveSessionResponse(operator=_operator_pb(op))
        resp.expires_at.FromDatetime(expires)
        return resp

    async def ResolveAddresses(
        self, request: Any, context: Any
    ) -> accounts_pb2.ResolveAddressesResponse:
        if len(request.addresses) > MAX_ADDRESSES:
            raise InvalidArgument(f"at most {MAX_ADDRESSES} addresses", field="addresses")
        wanted = []
        for addr in request.addresses:
            try:
                wanted.append(domain.normalise_address(addr))
            except InvalidArgument:
                continue  # not an address: it resolves to nothing
        rows = await self._repo.resolve_addresses(wanted)
        return accounts_pb2.ResolveAddressesResponse(
            routes=[
                accounts_pb2.AddressRoute(
                    address=r["address"],
                    tenant_id=str(r["tenant_id"]),
                    inbox=common_pb2.InboxRef(id=str(r["inbox_id"]), name=r["inbox_name"]),
                )
                for r in rows
            ]
        )

    async def ListOperators(self, request: Any, context: Any) -> accounts_pb2.ListOperatorsResponse:
        ident = identity.require_tenant()
        ops = await self._repo.operators(ident.tenant_id)
        return accounts_pb2.ListOperatorsResponse(operators=[_operator_pb(op) for op in ops])

    async def ListInboxes(self, request: Any, context: Any) -> accounts_pb2.ListInboxesResponse:
        ident = identity.require_tenant()
        rows = await self._repo.inboxes(ident.tenant_id)
        return accounts_pb2.ListInboxesResponse(
            inboxes=[accounts_pb2.Inbox(id=i, name=n, addresses=a) for i, n, a in rows]
        )
