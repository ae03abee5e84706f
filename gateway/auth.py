"""Who is calling: `Authorization: Bearer <token>` resolved by accounts, cached in Redis
(keyed by the token's hash, never the token) for a short time shared by all replicas."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import redis.asyncio as aioredis
from aiohttp import web
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc

from services.runtime import log
from services.runtime.identity import Identity

from .errors import ApiError

CACHE_PREFIX = "sb:gw:session:"


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    operator_id: str
    login: str
    display_name: str
    roles: tuple[str, ...]

    @classmethod
    def from_operator(cls, op: accounts_pb2.Operator) -> Caller:
        return cls(op.tenant_id, op.id, op.login, op.display_name, tuple(op.roles))

    def identity(self, correlation_id: str = "") -> Identity:
        return Identity(
            self.tenant_id, self.operator_id, self.roles, correlation_id, self.display_name
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.operator_id,
            "tenant_id": self.tenant_id,
            "login": self.login,
            "display_name": self.display_name,
            "roles": list(self.roles),
        }


WS_PROTOCOL = "switchboard.v1"
WS_BEARER_PREFIX = "bearer."


def bearer_token(request: web.Request) -> str:
    """The session token from `Authorization: Bearer <token>`, or — for browsers, whose
    WebSocket API cannot set headers — from a `bearer.<token>` entry of
    `Sec-WebSocket-Protocol` (kept out of URLs, so out of access logs)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WS_BEARER_PREFIX) and len(proto) > len(WS_BEARER_PREFIX):
            return proto[len(WS_BEARER_PREFIX) :]
    raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token>")


class SessionResolver:
    def __init__(self, channel: grpc.aio.Channel, redis: aioredis.Redis, cache_s: int = 30) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)
        self._redis = redis
        self._cache_s = cache_s
        self._log = log.get("gateway.auth")

    async def resolve(self, token: str) -> Caller:
        key = CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()
        try:
            cached = await self._redis.get(key)
        except aioredis.RedisError as exc:
            self._log.warning("session cache unavailable", error=str(exc))
            cached = None
        if cached:
            data = json.loads(cached)
            return Caller(**{**data, "roles": tuple(data["roles"])})
        try:
            resp = await self._stub.ResolveSession(
                accounts_pb2.ResolveSessionRequest(token=token), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise ApiError(401, "unauthenticated", "session unknown or expired") from None
            raise
        caller = Caller.from_operator(resp.operator)
        left = resp.expires_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
        ttl = int(min(self._cache_s, left.total_seconds()))
        if ttl > 0:
            payload = json.dumps({**caller.__dict__, "roles": list(caller.roles)})
            try:
                await self._redis.set(key, payload, ex=ttl)
            except aioredis.RedisError as exc:
                self._log.warning("session cache unavailable", error=str(exc))
        return caller
