"""Login, sessions, API tokens and the caller's own password (SEC-1, SEC-2, SEC-3)."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime, timedelta

from switchboard.v1 import accounts_pb2

from services.runtime import identity, log
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import announce, domain
from .deps import Deps, end_sessions, operator_pb
from .repo import Tenant
from .sessions import TOKENS_ENDING_WITH_PASSWORD, SessionRow

TOKEN_DEFAULT_DAYS = 90
TOKEN_MAX_DAYS = 365
TOKENS_PER_OPERATOR = 20
_log = log.get("accounts.auth")


def principal_pb(row: SessionRow, now: datetime) -> accounts_pb2.Principal:
    tenant = row.tenant
    p = accounts_pb2.Principal(
        operator=operator_pb(row.operator),
        session_id=row.id,
        kind=row.kind,
        csrf_hash=row.csrf_hash,
        password_change_required=domain.password_change_required(row.operator, tenant.policy, now),
        tenant_ip_allowlist=list(tenant.ip_allowlist),
        tenant_time_zone=tenant.time_zone,
        tenant_name=tenant.name,
        tenant_addresses=list(tenant.addresses),
    )
    p.expires_at.FromDatetime(row.expires_at)
    return p


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


class AuthApi:
    _d: Deps

    async def Authenticate(
        self, request: accounts_pb2.AuthenticateRequest, context: Context
    ) -> accounts_pb2.AuthenticateResponse:
        d = self._d
        domain.check_credentials_input(request.login, request.password)
        login, client = request.login.strip(), request.client_address
        now = d.clock.now()

        async def record(op: domain.OperatorRecord | None, result: str) -> None:
            await d.sessions.record_login(
                id=d.ids.new(),
                op=op,
                login=login,
                result=result,
                client_address=client,
                user_agent=request.user_agent,
                at=now,
            )

        op = await d.repo.operator_by_login(login)
        lock = await d.sessions.active_lock(login=login, client=client, now=now)
        if lock is not None:
            await record(op, "locked")
            _log.info("login refused while locked", kind=lock.kind, client=client)
            raise ResourceExhausted(
                "too many failed logins: this login is locked for a while",
                retry_after_s=_retry_after(lock.until, now),
            )
        t = d.throttle
        recent = await d.sessions.recent_failures(
            login=login,
            client=client,
            since=now - t.window,
            now=now,
            limit=max(t.lock_after, t.address_lock_after),
        )
        by_login = t.counted(recent.by_login, now=now, lock_ended=recent.login_lock_ended)
        by_address = t.counted(recent.by_address, now=now, lock_ended=recent.address_lock_ended)
        delay = t.wait(by_login, by_address)
        if delay:
            await asyncio.sleep(delay)  # repeated failures: each attempt takes longer
        ok = await asyncio.to_thread(
            domain.verify_password, op.password_hash if op else None, request.password
        )
        if ok and op is not None and not op.active:
            await record(op, "inactive")
            raise Unauthenticated("wrong login or password")
        if ok and op is not None:
            tenant = await d.repo.tenant(d.repo.pool, op.tenant_id)
            if not (
                domain.address_allowed(client, tenant.ip_allowlist)
                and domain.address_allowed(client, op.ip_allowlist)
            ):
                await record(op, "address_not_allowed")
                _log.info("login refused: address not allowed", operator_id=op.id, client=client)
                raise PermissionDenied("logging in from this address is not allowed")
            await record(op, "ok")
            return await self._open_session(op, tenant, request, now)
        await record(op, "wrong_password")
        await self._maybe_lock(op, login, client, by_login + 1, by_address + 1, now)
        _log.info("login refused", client=client)
        raise Unauthenticated("wrong login or password")

    async def _maybe_lock(
        self,
        op: domain.OperatorRecord | None,
        login: str,
        client: str,
        by_login: int,
        by_address: int,
        now: datetime,
    ) -> None:
        t = self._d.throttle
        tenant_id = op.tenant_id if op else None
        lock_login, lock_address = t.locks_after_failure(by_login, by_address)
        if lock_login:
            await self._d.sessions.lock(
                kind="login",
                key=login.lower(),
                tenant_id=tenant_id,
                failures=by_login,
                now=now,
                until=now + t.lock_for,
            )
            _log.warning("login locked", failures=by_login, operator_id=op.id if op else None)
        if lock_address and client:
            await self._d.sessions.lock(
                kind="address",
                key=client,
                tenant_id=tenant_id,
                failures=by_address,
                now=now,
                until=now + t.lock_for,
            )
            _log.warning("client address locked", failures=by_address, client=client)

    async def _open_session(
        self,
        op: domain.OperatorRecord,
        tenant: Tenant,
        request: accounts_pb2.AuthenticateRequest,
        now: datetime,
    ) -> accounts_pb2.AuthenticateResponse:
        d = self._d
        token, token_hash = domain.new_secret()
        csrf, csrf_hash = domain.new_secret()
        expires = now + d.session_ttl
        session_id = d.ids.new()
        await d.sessions.create(
            id=session_id,
            kind="session",
            token_hash=token_hash,
            csrf_hash=csrf_hash,
            op=op,
            created_at=now,
            expires_at=expires,
            client_address=request.client_address,
            user_agent=request.user_agent,
        )
        _log.info("login", operator_id=op.id, tenant_id=op.tenant_id)
        row = SessionRow(str(session_id), "session", csrf_hash, expires, op, tenant)
        principal = principal_pb(row, now)
        resp = accounts_pb2.AuthenticateResponse(
            token=token, operator=principal.operator, csrf_token=csrf, principal=principal
        )
        resp.expires_at.FromDatetime(expires)
        return resp

    async def ResolveSession(
        self, request: accounts_pb2.ResolveSessionRequest, context: Context
    ) -> accounts_pb2.ResolveSessionResponse:
        if not request.token or len(request.token) > 200:
            raise Unauthenticated("no valid session token")
        now = self._d.clock.now()
        found = await self._d.sessions.resolve(domain.token_hash(request.token), now)
        if found is None:
            raise Unauthenticated("session unknown or expired")
        principal = principal_pb(found, now)
        resp = accounts_pb2.ResolveSessionResponse(operator=principal.operator, principal=principal)
        resp.expires_at.FromDatetime(found.expires_at)
        return resp

    async def EndSession(
        self, request: accounts_pb2.EndSessionRequest, context: Context
    ) -> accounts_pb2.EndSessionResponse:
        if not request.token or len(request.token) > 200:
            raise InvalidArgument("token is required", field="token")
        d = self._d
        async with d.db.transaction() as conn:
            ended = await d.sessions.end(conn, domain.token_hash(request.token))
            if ended is not None:
                await d.announce.sessions_ended(
                    conn,
                    tenant_id=ended.tenant_id,
                    operator_id=ended.operator_id,
                    session_ids=[ended.id],
                    reason=announce.LOGOUT,
                    actor=announce.operator_ref(ended.operator_id),
                )
        d.announce.wake()
        return accounts_pb2.EndSessionResponse(ended=ended is not None)

    async def GetMe(
        self, request: accounts_pb2.GetMeRequest, context: Context
    ) -> accounts_pb2.Principal:
        ident = identity.require_operator()
        d = self._d
        op = await d.repo.operator(d.repo.pool, ident.tenant_id, uuid.UUID(ident.operator_id))
        if op is None:
            raise NotFound("no such operator")
        tenant = await d.repo.tenant(d.repo.pool, ident.tenant_id)
        now = d.clock.now()
        row = SessionRow("", "", b"", now, op, tenant)
        return principal_pb(row, now)

    async def ChangePassword(
        self, request: accounts_pb2.ChangePasswordRequest, context: Context
    ) -> accounts_pb2.ChangePasswordResponse:
        """The caller's own password: the current one must be right, the new one must
        follow the tenant's rules and differ. Their other browser sessions end, and so do
        their API tokens but those made to survive a password change."""
        ident = identity.require_operator()
        d = self._d
        if not request.current_password:
            raise InvalidArgument("current_password is required", field="current_password")
        op = await d.repo.operator(d.repo.pool, ident.tenant_id, uuid.UUID(ident.operator_id))
        if op is None:
            raise NotFound("no such operator")
        tenant = await d.repo.tenant(d.repo.pool, ident.tenant_id)
        domain.check_new_password(request.new_password, tenant.policy, login=op.login)
        if not await asyncio.to_thread(
            domain.verify_password, op.password_hash, request.current_password
        ):
            raise PermissionDenied("the current password is wrong", field="current_password")
        if await asyncio.to_thread(domain.verify_password, op.password_hash, request.new_password):
            raise InvalidArgument(
                "the new password must differ from the current one", field="new_password"
            )
        new_hash = await asyncio.to_thread(domain.hash_password, request.new_password)
        now = d.clock.now()
        async with d.db.transaction() as conn:
            await d.repo.update_operator(
                conn,
                ident.tenant_id,
                uuid.UUID(op.id),
                {
                    "password_hash": new_hash,
                    "must_change_password": False,
                    "password_changed_at": now,
                    "updated_at": now,
                },
            )
            ended = await end_sessions(
                d,
                conn,
                ident.tenant_id,
                uuid.UUID(op.id),
                keep=request_session_id(context),
                tokens=TOKENS_ENDING_WITH_PASSWORD,
                reason=announce.PASSWORD_CHANGED,
                actor=identity.operator_actor(ident),
            )
        d.announce.wake()
        _log.info("password changed", operator_id=op.id, sessions_ended=ended)
        resp = accounts_pb2.ChangePasswordResponse()
        resp.password_changed_at.FromDatetime(now)
        return resp

    # -- personal API tokens -----------------------------------------------------------

    async def CreateApiToken(
        self, request: accounts_pb2.CreateApiTokenRequest, context: Context
    ) -> accounts_pb2.CreateApiTokenResponse:
        ident = identity.require_operator()
        d = self._d
        name = domain.clean_name(request.name, "name", limit=100)
        days = request.expires_in_days or TOKEN_DEFAULT_DAYS
        if not 1 <= days <= TOKEN_MAX_DAYS:
            raise InvalidArgument(
                f"expires_in_days must be 1 to {TOKEN_MAX_DAYS}", field="expires_in_days"
            )
        now = d.clock.now()
        if await d.sessions.count_tokens(ident.tenant_id, ident.operator_id, now) >= (
            TOKENS_PER_OPERATOR
        ):
            raise FailedPrecondition(
                f"at most {TOKENS_PER_OPERATOR} API tokens per operator; revoke one first"
            )
        op = await d.repo.operator(d.repo.pool, ident.tenant_id, uuid.UUID(ident.operator_id))
        if op is None:
            raise NotFound("no such operator")
        secret, secret_hash = domain.new_secret()
        token_id = d.ids.new()
        expires = now + timedelta(days=days)
        await d.sessions.create(
            id=token_id,
            kind="token",
            token_hash=secret_hash,
            csrf_hash=None,
            op=op,
            created_at=now,
            expires_at=expires,
            name=name,
            survives_password_change=request.survives_password_change,
        )
        _log.info("api token created", token_id=str(token_id))
        token = accounts_pb2.ApiToken(
            id=str(token_id),
            name=name,
            survives_password_change=request.survives_password_change,
        )
        token.created_at.FromDatetime(now)
        token.expires_at.FromDatetime(expires)
        return accounts_pb2.CreateApiTokenResponse(token=token, secret=secret)

    async def ListApiTokens(
        self, request: accounts_pb2.ListApiTokensRequest, context: Context
    ) -> accounts_pb2.ListApiTokensResponse:
        ident = identity.require_operator()
        tokens = await self._d.sessions.tokens(
            ident.tenant_id, ident.operator_id, self._d.clock.now()
        )
        return accounts_pb2.ListApiTokensResponse(tokens=tokens)

    async def RevokeApiToken(
        self, request: accounts_pb2.RevokeApiTokenRequest, context: Context
    ) -> accounts_pb2.RevokeApiTokenResponse:
        ident = identity.require_operator()
        token_id = parse_uuid(request.token_id, "token_id")
        d = self._d
        async with d.db.transaction() as conn:
            await d.sessions.revoke(
                conn, ident.tenant_id, token_id, operator_id=ident.operator_id, kind="token"
            )
            await d.announce.sessions_ended(
                conn,
                tenant_id=ident.tenant_id,
                operator_id=ident.operator_id,
                session_ids=[str(token_id)],
                reason=announce.TOKEN_REVOKED,
                actor=identity.operator_actor(ident),
            )
        d.announce.wake()
        return accounts_pb2.RevokeApiTokenResponse()


def request_session_id(context: Context) -> str:
    """The session the caller's request came with (the gateway sends x-sb-session-id)."""
    for key, value in context.invocation_metadata() or ():
        if key == identity.MD_SESSION:
            return value if isinstance(value, str) else value.decode()
    return ""
