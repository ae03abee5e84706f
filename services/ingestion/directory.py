"""Which tenant and inbox an intake address belongs to, asked of accounts (the owner of
inboxes) over gRPC, with a short cache so an SMTP burst costs one lookup per address."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2

from services.runtime.errors import Unavailable


@dataclass(frozen=True)
class Route:
    address: str
    tenant_id: str
    inbox: common_pb2.InboxRef


class AddressDirectory:
    def __init__(
        self, channel: grpc.aio.Channel, *, ttl_s: float = 30.0, miss_ttl_s: float = 5.0
    ) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)
        self._ttl = ttl_s
        self._miss_ttl = miss_ttl_s
        self._cache: dict[str, tuple[float, Route | None]] = {}

    async def resolve(self, address: str) -> Route | None:
        key = address.strip().strip("<>").lower()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            resp = await self._stub.ResolveAddresses(
                accounts_pb2.ResolveAddressesRequest(addresses=[key]), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts unavailable: {err.code().name}") from err
        route = next(
            (Route(r.address, r.tenant_id, r.inbox) for r in resp.routes if r.address == key),
            None,
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + (self._ttl if route else self._miss_ttl), route)
        return route
