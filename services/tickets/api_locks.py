"""The reply-lock part of TicketsService (TKT-3); the work is in `locks.ReplyLocks`."""

from __future__ import annotations

from datetime import UTC

from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import identity
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from .deps import Deps
from .lock_rules import checked_fence


class LocksApi:
    _deps: Deps

    async def AcquireReplyLock(
        self, request: tickets_pb2.ReplyLockRequest, context: Context
    ) -> tickets_pb2.AcquireReplyLockResponse:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        acquired, lock = await self._deps.locks.acquire(ident, ticket_id)
        return tickets_pb2.AcquireReplyLockResponse(acquired=acquired, lock=lock)

    async def RenewReplyLock(
        self, request: tickets_pb2.ReplyLockRequest, context: Context
    ) -> events_pb2.ReplyLock:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        return await self._deps.locks.renew(ident, ticket_id, checked_fence(request.fence))

    async def ReleaseReplyLock(
        self, request: tickets_pb2.ReplyLockRequest, context: Context
    ) -> tickets_pb2.ReleaseReplyLockResponse:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        again = (
            request.unless_reacquired_after.ToDatetime(tzinfo=UTC)
            if request.HasField("unless_reacquired_after")
            else None
        )
        released = await self._deps.locks.release(
            ident, ticket_id, checked_fence(request.fence), again
        )
        return tickets_pb2.ReleaseReplyLockResponse(released=released)

    async def TakeOverReplyLock(
        self, request: tickets_pb2.ReplyLockRequest, context: Context
    ) -> events_pb2.ReplyLock:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        return await self._deps.locks.take_over(ident, ticket_id)

    async def GetReplyLock(
        self, request: tickets_pb2.ReplyLockRequest, context: Context
    ) -> events_pb2.ReplyLock:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        return await self._deps.locks.get(ident, ticket_id)

    async def CheckFence(
        self, request: tickets_pb2.CheckFenceRequest, context: Context
    ) -> tickets_pb2.CheckFenceResponse:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        lock = await self._deps.locks.check_fence(ident, ticket_id, checked_fence(request.fence))
        return tickets_pb2.CheckFenceResponse(lock=lock)
