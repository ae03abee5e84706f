"""Who is calling (SEC-1…5): a session cookie (browsers, with a CSRF token for every
state-changing request) or `Authorization: Bearer <token>` (API clients and personal API
tokens), resolved by accounts and cached in Redis for a short time shared by all replicas
(keyed by the token's hash, never the token). A change of who may see what drops the
cached sessions it concerns at once (SEC-9: `invalidate`), and a resolution that began
before such a change is not cached after it. The real client address comes from a
trusted proxy's header only."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import grpc
import redis.asyncio as aioredis
from aiohttp import web
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc

from services.runtime import log, permissions
from services.runtime.identity import MD_SESSION, Identity
from services.runtime.netaddr import address_allowed as address_allowed  # re-exported
from services.runtime.netaddr import ip_of

from .errors import ApiError

CACHE_PREFIX = "sb:gw:session:"
TENANT_SESSIONS = "sb:gw:tenant-sessions:"  # the cached session keys of a tenant (to purge)
OPERATOR_SESSIONS = "sb:gw:operator-sessions:"  # … and of an operator
# When (Redis' clock, ms) the access of an operator, or of a whole tenant, last changed:
# a resolution that began before then is not cached.
OPERATOR_CHANGED = "sb:gw:operator-changed:"
TENANT_CHANGED = "sb:gw:tenant-changed:"
CHANGE_MARK_S = 60  # longer than any resolution takes (its timeout is 5 s)
SESSION_COOKIE = "sb_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    operator_id: str
    login: str
    display_name: str
    roles: tuple[str, ...]
    permissions: frozenset[str] = field(default_factory=frozenset)
    inbox_ids: tuple[str, ...] = ()
    all_inboxes: bool = False
    session_id: str = ""
    kind: str = "session"  # or "token"
    csrf_hash: str = ""  # hex
    password_change_required: str = ""
    ip_allowlist: tuple[str, ...] = ()  # the operator's
    tenant_ip_allowlist: tuple[str, ...] = ()
    language: str = "ja"
    time_zone: str = ""
    tenant_addresses: frozenset[str] = frozenset()  # ours: never masked
    expires_at: float = 0.0  # the session's end (POSIX seconds); 0: unknown

    @classmethod
    def from_principal(cls, p: accounts_pb2.Principal) -> Caller:
        op = p.operator
        return cls(
            tenant_id=op.tenant_id,
            operator_id=op.id,
            login=op.login,
            display_name=op.display_name,
            roles=tuple(op.roles),
            permissions=frozenset(op.permissions),
            inbox_ids=tuple(op.inbox_ids),
            all_inboxes=op.all_inboxes,
            session_id=p.session_id,
            kind=p.kind,
            csrf_hash=p.csrf_hash.hex(),
            password_change_required=p.password_change_required,
            ip_allowlist=tuple(op.ip_allowlist),
            tenant_ip_allowlist=tuple(p.tenant_ip_allowlist),
            language=op.language,
            time_zone=op.time_zone or p.tenant_time_zone,
            tenant_addresses=frozenset(p.tenant_addresses),
            expires_at=p.expires_at.ToDatetime(tzinfo=UTC).timestamp()
            if p.HasField("expires_at")
            else 0.0,
        )

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def sees_addresses(self) -> bool:
        return self.may(permissions.SEE_CUSTOMER_ADDRESSES)

    def sees_inbox(self, inbox_id: str) -> bool:
        return self.all_inboxes or inbox_id in self.inbox_ids

    def identity(self, correlation_id: str = "") -> Identity:
        return Identity(
            self.tenant_id,
            self.operator_id,
            self.roles,
            correlation_id,
            self.display_name,
            permissions=self.permissions,
            inboxes=None if self.all_inboxes else frozenset(self.inbox_ids),
            time_zone=self.time_zone,
            language=self.language,
        )

    def metadata(self, correlation_id: str = "") -> list[tuple[str, str]]:
        md = self.identity(correlation_id).metadata()
        if self.session_id:
            md.append((MD_SESSION, self.session_id))
        return md

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.operator_id,
            "tenant_id": self.tenant_id,
            "login": self.login,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "permissions": sorted(self.permissions),
            "inbox_ids": list(self.inbox_ids),
            "all_inboxes": self.all_inboxes,
            "language": self.language,
            "time_zone": self.time_zone,
            "password_change_required": self.password_change_required or None,
        }

    def csrf_ok(self, token: str) -> bool:
        if not self.csrf_hash or not token or len(token) > 200:
            return False
        given = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(given, self.csrf_hash)

    def _dump(self) -> str:
        data = asdict(self)
        data["permissions"] = sorted(self.permissions)
        data["tenant_addresses"] = sorted(self.tenant_addresses)
        return json.dumps(data)

    @classmethod
    def _load(cls, raw: str | bytes) -> Caller:
        data = json.loads(raw)
        for name in ("roles", "inbox_ids", "ip_allowlist", "tenant_ip_allowlist"):
            data[name] = tuple(data[name])
        data["permissions"] = frozenset(data["permissions"])
        data["tenant_addresses"] = frozenset(data.get("tenant_addresses", ()))
        return cls(**data)


WS_PROTOCOL = "switchboard.v1"
WS_BEARER_PREFIX = "bearer."


@dataclass(frozen=True)
class Credential:
    token: str
    via_cookie: bool


def credential(request: web.Request) -> Credential | None:
    """The session token: `Authorization: Bearer <token>`; or — for browsers, whose
    WebSocket API cannot set headers — a `bearer.<token>` entry of `Sec-WebSocket-Protocol`
    (kept out of URLs, so out of access logs); or the session cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return Credential(token.strip(), False)
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WS_BEARER_PREFIX) and len(proto) > len(WS_BEARER_PREFIX):
            return Credential(proto[len(WS_BEARER_PREFIX) :], False)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        return Credential(cookie, True)
    return None


def bearer_token(request: web.Request) -> str:
    found = credential(request)
    if found is None:
        raise ApiError(401, "unauthenticated", "log in, or send Authorization: Bearer <token>")
    return found.token


def cache_key(token: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


# KEYS: the cache key, the tenant's and the operator's index, the operator's and the
# tenant's change marks. ARGV: the caller, its TTL, the indexes' TTL, when (ms) its
# resolution began. Cached only if no change was marked since.
_REMEMBER = """
local began = tonumber(ARGV[4])
for i = 4, 5 do
  local changed = redis.call('GET', KEYS[i])
  if changed and tonumber(changed) >= began then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 2, 3 do
  redis.call('SADD', KEYS[i], KEYS[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
"""

# KEYS: ARGV[1] change marks to set to now (ms), then indexes whose cached sessions are
# dropped with them. ARGV[2]: the marks' TTL (ms).
_INVALIDATE = """
local t = redis.call('TIME')
local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
local marks = tonumber(ARGV[1])
for i = 1, marks do redis.call('SET', KEYS[i], now, 'PX', ARGV[2]) end
for i = marks + 1, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return now
"""


class SessionResolver:
    def __init__(self, channel: grpc.aio.Channel, redis: aioredis.Redis, cache_s: int = 30) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
        self._redis = redis
        self._cache_s = cache_s
        self._remember = redis.register_script(_REMEMBER)
        self._invalidate = redis.register_script(_INVALIDATE)
        self._log = log.get("gateway.auth")

    async def resolve(self, token: str) -> Caller:
        if len(token) > 200:
            raise ApiError(401, "unauthenticated", "session unknown or expired")
        key = cache_key(token)
        cached: bytes | None = None
        began = 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.time()
                cached, (seconds, micros) = await pipe.execute()
            began = seconds * 1000 + micros // 1000
        except aioredis.RedisError as exc:
            self._log.warning("session cache unavailable", error=str(exc))
        if cached:
            try:
                return Caller._load(cached)
            except (ValueError, KeyError, TypeError):
                pass  # written by another version: ask accounts again
        try:
            resp = await self._stub.ResolveSession(
                accounts_pb2.ResolveSessionRequest(token=token), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise ApiError(401, "unauthenticated", "session unknown or expired") from None
            raise
        caller = Caller.from_principal(resp.principal)
        if began:
            await self.remember(
                key, caller, resp.principal.expires_at.ToDatetime(tzinfo=UTC), began
            )
        return caller

    async def remember(self, key: str, caller: Caller, expires_at: datetime, began: int) -> None:
        """Cache a caller whose resolution began at `began` (Redis' clock, ms), unless the
        access of its operator or tenant changed since then."""
        left = expires_at - datetime.now(UTC)
        ttl = int(min(self._cache_s, left.total_seconds()))
        if ttl <= 0:
            return
        try:
            await self._remember(
                keys=[
                    key,
                    TENANT_SESSIONS + caller.tenant_id,
                    OPERATOR_SESSIONS + caller.operator_id,
                    OPERATOR_CHANGED + caller.operator_id,
                    TENANT_CHANGED + caller.tenant_id,
                ],
                args=[caller._dump(), ttl, self._cache_s * 2, began],
            )
        except aioredis.RedisError as exc:
            self._log.warning("session cache unavailable", error=str(exc))

    async def forget(self, token: str) -> None:
        try:
            await self._redis.delete(cache_key(token))
        except aioredis.RedisError as exc:
            self._log.warning("session cache unavailable", error=str(exc))

    async def invalidate(
        self, tenant_id: str, operator_ids: Sequence[str] = (), *, whole_tenant: bool = False
    ) -> None:
        """The access of these operators (or of every operator of the tenant) changed, or
        a session of theirs ended: their cached sessions are dropped, and one being
        resolved at this moment is not cached (it may have read the state before)."""
        if whole_tenant:
            marks, indexes = [TENANT_CHANGED + tenant_id], [TENANT_SESSIONS + tenant_id]
        else:
            marks = [OPERATOR_CHANGED + o for o in operator_ids]
            indexes = [OPERATOR_SESSIONS + o for o in operator_ids]
        if not marks:
            return
        try:
            await self._invalidate(keys=[*marks, *indexes], args=[len(marks), CHANGE_MARK_S * 1000])
        except aioredis.RedisError as exc:
            self._log.warning("session cache unavailable", error=str(exc))

    async def forget_tenant(self, tenant_id: str) -> None:
        """After an administrator changed operators, roles, inboxes or security settings:
        every cached session of the tenant is asked of accounts again."""
        await self.invalidate(tenant_id, whole_tenant=True)


# -- the client's address (SEC-2) --------------------------------------------------------


def parse_networks(
    values: Sequence[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def client_address(
    request: web.Request,
    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    header: str,
) -> str:
    """The TCP peer, unless it is a trusted proxy: then the right-most address of the
    proxy header that is not itself a trusted proxy (what the outermost trusted proxy saw).
    A header from an untrusted peer is ignored, so a client cannot choose its address."""
    peer = request.remote or ""
    ip = ip_of(peer)
    if ip is None or not trusted or not any(ip in n for n in trusted):
        return str(ip) if ip is not None else peer
    hops = [h.strip() for h in request.headers.get(header, "").split(",") if h.strip()]
    for hop in reversed(hops):
        hop_ip = ip_of(hop)
        if hop_ip is None:
            return str(ip)  # a garbled header: the proxy itself is all we know
        if not any(hop_ip in n for n in trusted):
            return str(hop_ip)
    return str(ip)
