"""aiohttp through the ConnectPolicy (hosts.py): a resolver that checks every address a
host name resolves to, so the addresses checked are the ones connected to (a second,
short-lived DNS answer cannot turn the connection elsewhere). Used by the webhook poster
(routing's rule webhooks, the API channel's replies), the LINE client and tickets'
customer-data lookup."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from .hosts import ConnectPolicy, HostRefused


class AddressRefused(OSError):
    """The URL's host leads where the policy does not allow (never worth retrying)."""


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, through the ConnectPolicy: every address of the host checked.
    An address written as the URL's host never reaches a resolver: check it with
    `ConnectPolicy.check_literal` first."""

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
