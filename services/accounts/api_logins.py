"""Logins and sessions for administrators (SEC-1): the login history, who is logged in,
revoking a session, login locks. Each method checks the caller's permission itself."""

from __future__ import annotations

import uuid
from datetime import timedelta

from switchboard.v1 import accounts_pb2

from services.runtime import identity, log, paging, permissions
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import announce
from .api_admin import managing
from .deps import Deps

_log = log.get("accounts.admin")


class LoginsApi:
    _d: Deps

    # -- logins ------------------------------------------------------------------------

    async def ListLoginHistory(
        self, request: accounts_pb2.ListLoginHistoryRequest, context: Context
    ) -> accounts_pb2.ListLoginHistoryResponse:
        """Administrators: anyone's logins; everyone else: their own."""
        ident = identity.require_operator()
        operator_id = (
            parse_uuid(request.operator_id, "operator_id") if request.operator_id else None
        )
        if not ident.may(permissions.MANAGE_OPERATORS):
            if operator_id is not None and str(operator_id) != ident.operator_id:
                identity.require_permission(
                    ident, permissions.MANAGE_OPERATORS, "read other operators' logins"
                )
            operator_id = uuid.UUID(ident.operator_id)
        elif operator_id is not None and (
            await self._d.repo.operator(self._d.repo.pool, ident.tenant_id, operator_id) is None
        ):
            raise NotFound("no such operator", field="operator_id")
        limit = paging.page_size(request.page.limit)
        after = paging.Cursor.decode(request.page.cursor) if request.page.cursor else None
        rows = await self._d.sessions.history(
            ident.tenant_id,
            operator_id=operator_id,
            failures_only=request.failures_only,
            after=after,
            limit=limit + 1,
        )
        records, next_cursor = paging.page(rows, limit, lambda r: paging.Cursor.of(r.at, r.id))
        return accounts_pb2.ListLoginHistoryResponse(records=records, next_cursor=next_cursor)

    async def ListActiveSessions(
        self, request: accounts_pb2.ListActiveSessionsRequest, context: Context
    ) -> accounts_pb2.ListActiveSessionsResponse:
        """Who is logged in now (used within the last minutes) and their last action."""
        ident = managing()
        minutes = request.seen_within_minutes or 15
        if not 1 <= minutes <= 24 * 60:
            raise InvalidArgument(
                "seen_within_minutes must be 1 to 1440", field="seen_within_minutes"
            )
        now = self._d.clock.now()
        sessions = await self._d.sessions.active(
            ident.tenant_id, now - timedelta(minutes=minutes), now
        )
        return accounts_pb2.ListActiveSessionsResponse(sessions=sessions)

    async def RevokeSession(
        self, request: accounts_pb2.RevokeSessionRequest, context: Context
    ) -> accounts_pb2.RevokeSessionResponse:
        ident = managing()
        d = self._d
        session_id = parse_uuid(request.session_id, "session_id")
        async with d.db.transaction() as conn:
            operator_id = await d.sessions.revoke(
                conn, ident.tenant_id, session_id, operator_id=None, kind=None
            )
            await d.announce.sessions_ended(
                conn,
                tenant_id=ident.tenant_id,
                operator_id=operator_id,
                session_ids=[str(session_id)],
                reason=announce.REVOKED,
                actor=identity.operator_actor(ident),
            )
        d.announce.wake()
        return accounts_pb2.RevokeSessionResponse()

    async def ListLoginLocks(
        self, request: accounts_pb2.ListLoginLocksRequest, context: Context
    ) -> accounts_pb2.ListLoginLocksResponse:
        ident = managing()
        rows = await self._d.sessions.locks(ident.tenant_id, self._d.clock.now())
        resp = accounts_pb2.ListLoginLocksResponse()
        for r in rows:
            lock = accounts_pb2.LoginLock(kind=r.kind, key=r.key, failures=r.failures)
            lock.locked_at.FromDatetime(r.locked_at)
            lock.until.FromDatetime(r.until)
            resp.locks.append(lock)
        return resp

    async def ClearLoginLock(
        self, request: accounts_pb2.ClearLoginLockRequest, context: Context
    ) -> accounts_pb2.ClearLoginLockResponse:
        ident = managing()
        if request.kind not in ("login", "address"):
            raise InvalidArgument("kind must be login or address", field="kind")
        key = request.key.strip()
        if not key or len(key) > 254:
            raise InvalidArgument("key is required", field="key")
        if request.kind == "login":
            key = key.lower()
        await self._d.sessions.clear_lock(ident.tenant_id, request.kind, key, self._d.clock.now())
        _log.info("login lock cleared", kind=request.kind)
        return accounts_pb2.ClearLoginLockResponse()
