"""What the live figures ask other services, kept briefly: accounts for the tenant's
inboxes (names) and operators (names), tickets for each inbox's elapsed-time thresholds
(TKT-14). Reporting never reads their tables."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, tickets_pb2, tickets_pb2_grpc

from services.runtime.errors import Unavailable
from services.runtime.identity import Identity

from .live_model import Threshold

CACHE_S = 10.0
SYSTEM_NAME = "reporting"
T = TypeVar("T")


def system(tenant: str) -> Identity:
    """Reporting calling on its own behalf (no operator: every inbox of the tenant)."""
    return Identity(tenant_id=tenant, display_name=SYSTEM_NAME)


class _Cache:
    """Per-tenant answers, each kept `CACHE_S`; one fetch at a time per tenant and kind."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], tuple[float, object]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def get(self, key: tuple[str, str], fetch: Callable[[], Awaitable[T]]) -> T:
        hit = self._hits.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]  # type: ignore[return-value]
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit = self._hits.get(key)
            if hit is not None and time.monotonic() - hit[0] < CACHE_S:
                return hit[1]  # type: ignore[return-value]
            value = await fetch()
            self._hits[key] = (time.monotonic(), value)
            return value


class LivePeers:
    def __init__(self, accounts: grpc.aio.Channel, tickets: grpc.aio.Channel) -> None:
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._cache = _Cache()

    async def inboxes(self, tenant: str) -> dict[str, str]:
        """Every inbox of the tenant, id → name."""

        async def fetch() -> dict[str, str]:
            try:
                resp = await self._accounts.ListInboxes(
                    accounts_pb2.ListInboxesRequest(), metadata=system(tenant).metadata(), timeout=5
                )
            except grpc.aio.AioRpcError as err:
                raise Unavailable(f"accounts.ListInboxes: {err.code().name}") from None
            return {i.id: i.name for i in resp.inboxes}

        return await self._cache.get((tenant, "inboxes"), fetch)

    async def operator_names(self, tenant: str) -> dict[str, str]:
        """The tenant's active operators, id → display name (a deactivated one is not
        listed to a caller without `manage_operators`: the figures then show their id)."""

        async def fetch() -> dict[str, str]:
            try:
                resp = await self._accounts.ListOperators(
                    accounts_pb2.ListOperatorsRequest(),
                    metadata=system(tenant).metadata(),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as err:
                raise Unavailable(f"accounts.ListOperators: {err.code().name}") from None
            return {o.id: o.display_name for o in resp.operators}

        return await self._cache.get((tenant, "operators"), fetch)

    async def thresholds(self, tenant: str, inbox_ids: list[str]) -> dict[str, list[Threshold]]:
        """Each inbox's elapsed-time thresholds, ascending (tickets' inbox settings)."""

        async def one(inbox_id: str) -> list[Threshold]:
            async def fetch() -> list[Threshold]:
                try:
                    resp = await self._tickets.GetInboxSettings(
                        tickets_pb2.GetInboxSettingsRequest(inbox_id=inbox_id),
                        metadata=system(tenant).metadata(),
                        timeout=5,
                    )
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.NOT_FOUND:
                        return []  # deleted meanwhile
                    raise Unavailable(f"tickets.GetInboxSettings: {err.code().name}") from None
                ordered = sorted(resp.thresholds, key=lambda t: t.after_minutes)
                return [Threshold(t.after_minutes, t.color) for t in ordered]

            return await self._cache.get((tenant, f"thresholds:{inbox_id}"), fetch)

        found = await asyncio.gather(*(one(i) for i in inbox_ids))
        return dict(zip(inbox_ids, found, strict=True))
