"""The operators and inboxes of a tenant, as accounts knows them (asked over gRPC, kept
for a few seconds): who may be assigned or @mentioned, and which inboxes the caller may
transfer to (accounts answers with the inboxes the caller can see)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2

from services.runtime.errors import Unavailable
from services.runtime.identity import Identity

CACHE_S = 10.0


@dataclass(frozen=True)
class OperatorInfo:
    id: str
    login: str
    display_name: str

    def ref(self) -> common_pb2.OperatorRef:
        return common_pb2.OperatorRef(id=self.id, display_name=self.display_name)


class Directory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)
        self._ops: dict[str, tuple[float, dict[str, OperatorInfo]]] = {}

    async def operators(self, ident: Identity) -> dict[str, OperatorInfo]:
        """The tenant's active operators by id."""
        hit = self._ops.get(ident.tenant_id)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        try:
            resp = await self._stub.ListOperators(
                accounts_pb2.ListOperatorsRequest(), metadata=ident.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts did not answer: {err.code().name}") from None
        ops = {o.id: OperatorInfo(o.id, o.login, o.display_name) for o in resp.operators}
        self._ops[ident.tenant_id] = (time.monotonic(), ops)
        return ops

    async def inboxes(self, ident: Identity) -> dict[str, str]:
        """The inboxes the caller can see, id → name (never cached: access matters)."""
        try:
            resp = await self._stub.ListInboxes(
                accounts_pb2.ListInboxesRequest(), metadata=ident.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts did not answer: {err.code().name}") from None
        return {i.id: i.name for i in resp.inboxes}
