"""What the reports ask other services (never their tables): accounts for the inboxes the
viewer may see, the operators' names and the tenant's time zone (its day rollups' zone),
tickets for the inboxes' elapsed-time thresholds (TKT-14). Names, zones and thresholds are
kept CACHE_S seconds per tenant, the zone ZONE_CACHE_S."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, tickets_pb2, tickets_pb2_grpc

from services.runtime.errors import Unavailable
from services.runtime.identity import Identity

CACHE_S = 30.0
ZONE_CACHE_S = 10.0  # a changed tenant zone reaches the reports (and their day rows) soon


def _system(tenant: str) -> list[tuple[str, str]]:
    return Identity(tenant_id=tenant, display_name="reporting").metadata()


class ReportPeers:
    def __init__(self, accounts: grpc.aio.Channel, tickets: grpc.aio.Channel) -> None:
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._names: dict[str, tuple[float, dict[str, str]]] = {}
        self._thresholds: dict[tuple[str, str], tuple[float, tuple[tuple[int, str], ...]]] = {}
        self._zones: dict[str, tuple[float, str]] = {}

    async def tenant_zone(self, tenant: str) -> str:
        """The tenant's time zone (TenantSettings.time_zone), "" when accounts does not
        answer (the reports then read the hourly rollups)."""
        hit = self._zones.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < ZONE_CACHE_S:
            return hit[1]
        try:
            resp = await self._accounts.GetTenantSettings(
                accounts_pb2.GetTenantSettingsRequest(), metadata=_system(tenant), timeout=5
            )
        except grpc.aio.AioRpcError:
            return ""
        self._zones[tenant] = (time.monotonic(), resp.time_zone)
        return str(resp.time_zone)

    async def visible_inboxes(self, viewer: Identity) -> list[tuple[str, str]]:
        """(id, name) of the inboxes the viewer may see, by name."""
        try:
            resp = await self._accounts.ListInboxes(
                accounts_pb2.ListInboxesRequest(), metadata=viewer.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts.ListInboxes: {err.code().name}") from None
        return sorted(((i.id, i.name) for i in resp.inboxes), key=lambda i: (i[1], i[0]))

    async def operator_names(self, tenant: str) -> dict[str, str]:
        hit = self._names.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        try:
            resp = await self._accounts.ListOperators(
                accounts_pb2.ListOperatorsRequest(),  # active ones: inactive need an admin
                metadata=_system(tenant),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts.ListOperators: {err.code().name}") from None
        found = {o.id: o.display_name for o in resp.operators}
        self._names[tenant] = (time.monotonic(), found)
        return found

    async def thresholds(
        self, tenant: str, inbox_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[int, str], ...]]:
        """Each inbox's elapsed-time thresholds: (after minutes, colour), ascending."""
        got = await asyncio.gather(*(self._thresholds_of(tenant, i) for i in inbox_ids))
        return dict(zip(inbox_ids, got, strict=True))

    async def _thresholds_of(self, tenant: str, inbox_id: str) -> tuple[tuple[int, str], ...]:
        hit = self._thresholds.get((tenant, inbox_id))
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        try:
            resp = await self._tickets.GetInboxSettings(
                tickets_pb2.GetInboxSettingsRequest(inbox_id=inbox_id),
                metadata=_system(tenant),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise Unavailable(f"tickets.GetInboxSettings: {err.code().name}") from None
            found: tuple[tuple[int, str], ...] = ()  # an inbox gone since: kept as none
        else:
            found = tuple(sorted((t.after_minutes, t.color) for t in resp.thresholds))
        self._thresholds[(tenant, inbox_id)] = (time.monotonic(), found)
        return found
