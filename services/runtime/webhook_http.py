"""POSTing a signed webhook through the ConnectPolicy (routing's rule webhooks, issue 18;
the API channel's replies, issue 21): one aiohttp session whose resolver checks every
address it connects to, and one attempt's outcome — delivered, worth another try, or
final (an address the deployment does not allow). The answer's body is never read: a
receiver cannot make us hold megabytes. Secrets and bodies are never logged here."""

from __future__ import annotations

import asyncio
import socket
from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from . import signing
from .clock import Clock
from .errors import InvalidArgument
from .hosts import ConnectPolicy, HostRefused
from .periodic import PeriodicTask

Row = TypeVar("Row")


@dataclass(frozen=True)
class RetrySettings:
    """An outbox of webhook deliveries: attempts, back-off base · 2^(n-1) capped, each
    attempt's timeout, how often due rows are looked for."""

    max_attempts: int = 8
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    timeout_s: float = 10.0
    poll_s: float = 1.0


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


@dataclass(frozen=True)
class Outcome:
    ok: bool
    final: bool = False  # not worth another attempt (an address not allowed)
    error: str = ""
    status: int = 0


class WebhookPoster:
    """One lazily opened session for many POSTs; `close` at shutdown."""

    def __init__(self, policy: ConnectPolicy, timeout_s: float, limit: int = 32) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=PolicyResolver(self._policy), limit=self._limit
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """One attempt: 2xx is delivered; no redirect is followed."""
        host = urlsplit(url).hostname or ""
        try:
            # aiohttp does not ask the resolver about an address written as the host
            self._policy.check_literal(host, "url")
        except InvalidArgument as err:
            return Outcome(False, True, f"address not allowed: {err.message}")
        try:
            async with self._http().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return Outcome(True, status=resp.status)
                return Outcome(False, error=f"HTTP {resp.status}", status=resp.status)
        except aiohttp.ClientConnectorError as err:
            if isinstance(err.os_error, AddressRefused):
                return Outcome(False, True, f"address not allowed: {err.os_error}")
            return Outcome(False, error=f"no connection: {err.os_error.strerror or err.os_error}")
        except TimeoutError:
            return Outcome(False, error=f"no answer within {self._timeout_s:g} s")
        except aiohttp.ClientError as err:
            return Outcome(False, error=f"{type(err).__name__}: {err}")


class LeasedDeliverer(PeriodicTask, Generic[Row]):
    """An outbox of deliveries worked by every replica: due rows claimed under a lease
    (`claim`, FOR UPDATE SKIP LOCKED in the subclass's repository, so two replicas never
    take the same one; a lease that ran out is taken again), attempted together; after a
    failure `retry_at` says when to try again — base · 2^(n-1) s capped — or None: dead."""

    batch = 16

    def __init__(self, name: str, clock: Clock, settings: RetrySettings) -> None:
        super().__init__(name, settings.poll_s)
        self._clock = clock
        self._s = settings

    @abstractmethod
    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Row]: ...

    @abstractmethod
    async def attempt(self, row: Row) -> None: ...

    async def step(self) -> bool:
        now = self._clock.now()
        lease = timedelta(seconds=self._s.timeout_s * 3 + 5)
        due = await self.claim(now, lease, self.batch)
        if due:
            await asyncio.gather(*(self.attempt(d) for d in due))
        return len(due) == self.batch

    def retry_at(self, attempts: int, final: bool = False) -> datetime | None:
        """After the `attempts`-th failed attempt: when to try again, or None (dead)."""
        if final or attempts >= self._s.max_attempts:
            return None
        wait = signing.backoff_s(attempts, self._s.retry_base_s, self._s.retry_cap_s)
        return self._clock.now() + timedelta(seconds=wait)
