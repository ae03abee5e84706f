"""aiohttp through the ConnectPolicy (services/runtime/hosts.py): a resolver that checks
every address a host name resolves to, so that the addresses checked are the ones
connected to. Used by routing's rule webhooks and ingestion's channel deliveries (API
channel webhooks, LINE's Messaging API)."""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .hosts import ConnectPolicy, HostRefused


class AddressRefused(OSError):
    """The URL's host leads where the deployment does not allow (not retried)."""


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, through the ConnectPolicy: every address of the host checked."""

    def __init__(self, policy: ConnectPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            found = await self._policy.resolve(host, port)
        except HostRefused as err:
            if err.step == "address":
                raise AddressRefused(err.message) from None
            raise OSError(err.message) from None
        return [
            ResolveResult(
                hostname=host,
                host=str(sockaddr[0]),
                port=port,
                family=fam,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for fam, sockaddr in found
        ]

    async def close(self) -> None:
        return None


def policy_session(
    policy: ConnectPolicy, timeout_s: float, limit: int = 32
) -> aiohttp.ClientSession:
    """An aiohttp session whose connections go only where `policy` allows. Address
    literals are not resolved by aiohttp: check them with `policy.check_literal` first."""
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy), limit=limit)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    )
