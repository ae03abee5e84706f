"""The gateway's one door (SEC-1…7): every request passes `access_middleware`, which
applies the rule gateway/openapi.yaml states for its operation, before the handler runs:

- `security: []` — public (health, login, the form submissions, the document itself);
- otherwise a caller: a session cookie or a bearer token, resolved by accounts → 401;
- the client's address on the tenant's and the operator's IP allow-lists → 403;
- with the session cookie, a state-changing request carries the session's CSRF token in
  `X-CSRF-Token` → 403 (a bearer token is not sent by browsers on their own, so it needs
  none); a WebSocket opened with the cookie comes from our own origin → 403;
- while the password must be changed, only operations marked
  `x-sb-during-password-change: true` → 403 `password_change_required`;
- the permissions in `x-sb-permission` (one name or a list, all needed) → 403.

After the handler, every state-changing request of a caller is announced as
`sb.gateway.operation.performed` (SEC-7; accounts keeps the operation log), whatever its
outcome — except one its handler marks as having changed nothing (`UNCHANGED`: the UI's
presence heartbeat every 30 s, issue 18). Every answer gets the security headers. The
operation found for a request is kept in it (`RULE`), so that its body is checked against
the same operation's schema (request.py) without matching the route again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import yaml
from aiohttp import web
from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.bus import Bus
from services.runtime.identity import operator_actor
from services.runtime.ids import IdGenerator

from .auth import CSRF_HEADER, SAFE_METHODS, Caller, SessionResolver, address_allowed, credential
from .errors import ApiError, from_grpc

CALLER = web.RequestKey("caller", Caller)
CLIENT = web.RequestKey("client_address", str)
REQUEST_ID = web.RequestKey("request_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


@dataclass(frozen=True)
class Rule:
    operation_id: str
    public: bool
    permissions: tuple[str, ...]
    during_password_change: bool
    target: str | None  # the path parameter naming the resource (for the operation log)


RULE = web.RequestKey("rule", Rule)  # the operation of the request, as the document states it
# set by a handler whose request succeeded and changed nothing: not in the operation log
UNCHANGED = web.RequestKey("operation_unchanged", bool)


def load_spec(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return loaded


def rules_of(spec: dict[str, Any]) -> dict[tuple[str, str], Rule]:
    """(METHOD, path template) → the rule its operation states."""
    default_security = spec.get("security", [])
    components = spec.get("components", {}).get("parameters", {})

    def resolved(params: list[Any]) -> list[dict[str, Any]]:
        out = []
        for p in params:
            ref = p.get("$ref", "") if isinstance(p, dict) else ""
            if ref.startswith("#/components/parameters/"):
                p = components.get(ref.rsplit("/", 1)[1], {})
            if isinstance(p, dict):
                out.append(p)
        return out

    out: dict[tuple[str, str], Rule] = {}
    for path, item in spec["paths"].items():
        params = resolved(item.get("parameters", []))
        for method, op in item.items():
            if method not in METHODS:
                continue
            perm = op.get("x-sb-permission") or ()
            names = (perm,) if isinstance(perm, str) else tuple(perm)
            path_params = [
                p["name"]
                for p in params + resolved(op.get("parameters", []))
                if p.get("in") == "path"
            ]
            target = op.get("x-sb-target") or (path_params[-1] if path_params else None)
            out[(method.upper(), path)] = Rule(
                operation_id=op["operationId"],
                public=op.get("security", default_security) == [],
                permissions=names,
                during_password_change=bool(op.get("x-sb-during-password-change")),
                target=target,
            )
    return out


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def request_id_middleware(ids: IdGenerator) -> Any:
    """The caller's X-Request-Id when it is a sane token, else a new id; it becomes the
    correlation id of everything the request causes, and is echoed in the response."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        rid = given if _REQUEST_ID.match(given) else ids.new_str()
        request[REQUEST_ID] = rid
        with log.bound(request_id=rid):
            response = await handler(request)
        if not response.prepared:
            response.headers["X-Request-Id"] = rid
        return response

    return middleware


def _route_key(request: web.Request) -> tuple[str, str] | None:
    route = request.match_info.route
    resource = route.resource
    if resource is None or route.method == "*":
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, resource.canonical


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin", "")
    if not origin:
        return True  # not a browser: no ambient cookie was sent cross-site
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


class Access:
    def __init__(
        self,
        rules: dict[tuple[str, str], Rule],
        sessions: SessionResolver,
        bus: Bus,
        ids: IdGenerator,
        client_of: Callable[[web.Request], str],
    ) -> None:
        self._rules = rules
        self._sessions = sessions
        self._bus = bus
        self._ids = ids
        self._client_of = client_of
        self._log = log.get("gateway.access")
        self._pending: set[asyncio.Task[Any]] = set()

    def rule(self, request: web.Request) -> Rule | None:
        key = _route_key(request)
        return self._rules.get(key) if key else None

    async def authenticate(self, request: web.Request, rule: Rule) -> Caller:
        found = credential(request)
        if found is None:
            raise ApiError(401, "unauthenticated", "log in, or send Authorization: Bearer <token>")
        caller = await self._sessions.resolve(found.token)
        client = request[CLIENT]
        if not (
            address_allowed(client, caller.tenant_ip_allowlist)
            and address_allowed(client, caller.ip_allowlist)
        ):
            raise ApiError(403, "address_not_allowed", "requests from this address are not allowed")
        if found.via_cookie:
            if request.method not in SAFE_METHODS and not caller.csrf_ok(
                request.headers.get(CSRF_HEADER, "")
            ):
                raise ApiError(403, "csrf", f"send the session's CSRF token in {CSRF_HEADER}")
            if request.headers.get("Upgrade", "").lower() == "websocket" and not _same_origin(
                request
            ):
                raise ApiError(403, "csrf", "a WebSocket from another origin")
        if caller.password_change_required and not rule.during_password_change:
            raise ApiError(
                403,
                "password_change_required",
                "change your password first (POST /api/v1/me/password)",
            )
        missing = [p for p in rule.permissions if not caller.may(p)]
        if missing:
            raise ApiError(
                403, "permission_denied", f"you may not do this (needs the permission {missing[0]})"
            )
        return caller

    def middleware(self) -> Any:
        @web.middleware
        async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            request[CLIENT] = self._client_of(request)
            rule = self.rule(request)
            if rule is not None:
                request[RULE] = rule  # the operation, for the body's schema (request.py)
            if rule is None or rule.public:
                return await handler(request)
            caller = await self.authenticate(request, rule)
            request[CALLER] = caller
            if request.method in SAFE_METHODS:
                return await handler(request)
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except ApiError as err:
                status = err.status
                raise
            except grpc.aio.AioRpcError as err:
                status = from_grpc(err).status
                raise
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                if not (status < 400 and request.get(UNCHANGED)):
                    self._announce(request, rule, caller, status)

        return access_middleware

    def _announce(self, request: web.Request, rule: Rule, caller: Caller, status: int) -> None:
        """sb.gateway.operation.performed, published in the background (the answer does
        not wait for it); a failure is logged with everything the log line would hold."""
        op = events_pb2.OperationPerformed(
            action=rule.operation_id,
            method=request.method,
            path=request.path[:2000],
            target=(request.match_info.get(rule.target, "") if rule.target else "")[:200],
            status=status,
            client_address=request[CLIENT],
            request_id=request.get(REQUEST_ID, ""),
        )
        env = events.envelope(
            events.OPERATION_PERFORMED,
            event_id=self._ids.new_str(),
            tenant_id=caller.tenant_id,
            occurred_at=datetime.now(UTC),
            payload=op,
            actor=operator_actor(caller.identity()),
            correlation_id=op.request_id,
        )
        task = asyncio.get_running_loop().create_task(self._publish(env, op))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(
        self, env: events_pb2.EventEnvelope, op: events_pb2.OperationPerformed
    ) -> None:
        for attempt in range(5):
            try:
                await self._bus.publish_bytes(
                    events.subject_of(env), env.SerializeToString(), env.event_id
                )
                return
            except Exception as exc:
                if attempt == 4:
                    self._log.error(
                        "operation not logged",
                        error=str(exc),
                        operator_id=env.actor.id,
                        action=op.action,
                        path=op.path,
                        status=op.status,
                        event_id=env.event_id,
                    )
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    async def drain(self) -> None:
        """Shutdown: wait (briefly) for the operation events still being published."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=5)


def security_headers(hsts: bool) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """on_response_prepare: the same headers on every answer, errors and WebSockets too."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        csp = h.get("Content-Security-Policy")
        if csp is None:
            h["Content-Security-Policy"] = (
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            )
        elif "frame-ancestors" not in csp:
            h["Content-Security-Policy"] = f"{csp}; frame-ancestors 'none'"
        if request.path.startswith("/api/"):
            h.setdefault("Cache-Control", "no-store")
        if hsts:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")

    return add
