"""OutboundService, the operator's side: a draft becomes an outbox item (now or at a
time), and the items are listed, cancelled, rescheduled and — when left unknown —
decided. The administration methods are in `api_admin.py`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

from switchboard.v1 import common_pb2, outbound_pb2

from services.runtime import identity, permissions
from services.runtime.channel_address import channel_target
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid
from services.runtime.paging import Cursor, page, page_size

from . import domain
from .changes import send_changed
from .domain import State
from .records import Attempt, Send
from .submit import APPROVAL_REQUIRED, Deps, Submission, Submitter

__all__ = ["APPROVAL_REQUIRED", "Deps", "SendsApi", "retime", "send_pb"]

MAX_AHEAD = timedelta(days=366)
SCHEDULED_AFTER = timedelta(seconds=5)  # later than this: a scheduled send
_STATUSES = {
    common_pb2.TICKET_STATUS_UNSPECIFIED,
    common_pb2.TICKET_STATUS_OPEN,
    common_pb2.TICKET_STATUS_PENDING,
    common_pb2.TICKET_STATUS_RESOLVED,
    common_pb2.TICKET_STATUS_NO_ACTION,
}
_DATE = re.compile(rb"(?im)^Date:[^\r\n]*\r\n")
_DKIM = re.compile(rb"(?is)^DKIM-Signature:.*?\r\n(?![ \t])")


def _ts(value: datetime | None) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    if value is None:
        return None
    t = Timestamp()
    t.FromDatetime(value)
    return t


def send_pb(row: Send, attempts: list[Attempt] | None = None) -> outbound_pb2.Send:
    out = outbound_pb2.Send(
        id=str(row.id),
        kind=row.kind,
        draft_id=str(row.draft_id or ""),
        draft_revision=row.draft_revision,
        ticket_id=str(row.ticket_id or ""),
        inbox_id=str(row.inbox_id),
        state=row.state,
        message_id=row.message_id,
        subject=row.subject,
        envelope_from=row.envelope_from,
        recipients=list(row.recipients),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        status_after=cast(common_pb2.TicketStatus, row.status_after),
        route=row.route_name,
        dkim_signed=row.dkim_signed,
        size_bytes=len(row.raw),
        bounce=row.bounce,
        rejected=list(row.rejected),
        finished=row.finished_at is not None,
        after_send_problems=row.finish_error,
    )
    if row.operator_id:
        out.operator.id = str(row.operator_id)
        out.operator.display_name = row.operator_name
    for name in ("send_at", "next_attempt_at", "sent_at", "created_at", "updated_at"):
        at = getattr(row, name)
        if at is not None:
            getattr(out, name).FromDatetime(at)
    if row.last_code is not None or row.last_message:
        out.last_reply.code = row.last_code or 0
        out.last_reply.message = row.last_message
        out.last_reply.attempt = row.attempts
        out.last_reply.at.FromDatetime(row.updated_at)
    for a in attempts or []:
        reply = out.replies.add(
            code=a.code or 0, message=a.message, attempt=a.attempt, outcome=a.outcome
        )
        reply.at.FromDatetime(a.at)
    return out


def retime(raw: bytes, date: datetime) -> bytes:
    """The message with its Date header set to `date` (a rescheduled send), and without
    a DKIM signature (which covered the old Date: it is signed again)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    head += b"\r\n"
    head = _DKIM.sub(b"", head)
    stamp = b"Date: " + format_datetime(date).encode() + b"\r\n"
    head = _DATE.sub(stamp, head, count=1) if _DATE.search(head) else stamp + head
    return head[:-2] + sep + body


class SendsApi(Submitter):
    # -- helpers -----------------------------------------------------------------------

    async def _visible(
        self, ident: Identity, raw_id: str, conn: Any = None, lock: bool = False
    ) -> Send:
        row = await self._d.repo.get(
            conn or self._d.repo.pool, ident.tenant_id, parse_uuid(raw_id, "send_id"), lock=lock
        )
        if row is None or not ident.sees_inbox(row.inbox_id):
            raise NotFound("no such send", field="send_id")
        return row

    def _send_at(self, request: Any, field: str = "send_at") -> datetime:
        now = self._d.clock.now()
        if not request.HasField(field):
            return now
        at: datetime = getattr(request, field).ToDatetime(tzinfo=UTC)
        if at < now - timedelta(minutes=1):
            raise InvalidArgument("send_at is in the past", field=field)
        if at > now + MAX_AHEAD:
            raise InvalidArgument("send_at is more than a year ahead", field=field)
        return max(at, now)

    # -- submitting ----------------------------------------------------------------------

    async def SubmitDraft(
        self, request: outbound_pb2.SubmitDraftRequest, context: Context
    ) -> outbound_pb2.Send:
        ident = identity.require_operator()
        d = self._d
        md = ident.metadata()
        draft_id = str(parse_uuid(request.draft_id, "draft_id"))
        if request.status_after not in _STATUSES:
            raise InvalidArgument(
                "status_after must be open, pending, resolved or no_action", field="status_after"
            )
        send_at = self._send_at(request)
        scheduled = send_at > d.clock.now() + SCHEDULED_AFTER
        draft = await d.peers.get_draft(md, draft_id)
        if draft.state == "submitted":
            existing = await self._live_send(ident, draft_id, draft.current.revision)
            if existing is not None:  # the same submission again (a double click)
                return send_pb(existing)
        if draft.state != "open":
            raise FailedPrecondition(f"the draft is {draft.state}", field="draft_id")
        approval = await d.peers.evaluate(md, draft_id, requested=request.request_approval)
        if approval.needs_approval and not approval.approved:
            raise PermissionDenied(
                "this mail needs approval before it is sent ("
                + ", ".join(approval.reasons)
                + "): request approval, and send the approved revision",
                reason=APPROVAL_REQUIRED,
            )
        ticket_id = draft.ticket_id
        if ticket_id:
            if request.fence <= 0:
                raise FailedPrecondition(
                    "take the reply lock first: sending needs its fence", field="fence"
                )
            await d.peers.check_fence(md, ticket_id, request.fence)
        await self.refuse_blocked(md, draft_id, list(request.acknowledged_warnings))
        row = await self.queue(
            ident,
            Submission(
                draft_id=draft_id,
                ticket_id=ticket_id,
                from_address=draft.current.from_address,
                send_at=send_at,
                scheduled=scheduled,
                status_after=request.status_after,
                actor=identity.operator_actor(ident),
                fence=request.fence,
                approved_revision=approval.revision if approval.needs_approval else 0,
                without_survey=request.without_survey,
            ),
        )
        assert row is not None  # (None only for a consumer's event)
        if scheduled and ticket_id:
            await self._release_quietly(md, ticket_id, request.fence)
        return send_pb(row)

    async def _live_send(self, ident: Identity, draft_id: str, revision: int) -> Send | None:
        return await self._d.repo.live_send(ident.tenant_id, uuid.UUID(draft_id), revision)

    async def _release_quietly(self, md: Any, ticket_id: str, fence: int) -> None:
        try:
            await self._d.peers.release_lock(md, ticket_id, fence)
        except Exception as err:
            self._log.warning(
                "could not release the reply lock", ticket_id=ticket_id, error=repr(err)
            )

    # -- reading -------------------------------------------------------------------------

    async def GetSend(
        self, request: outbound_pb2.GetSendRequest, context: Context
    ) -> outbound_pb2.Send:
        ident = identity.require_tenant()
        row = await self._visible(ident, request.send_id)
        return send_pb(row, await self._d.repo.attempts(row.id))

    async def ListSends(
        self, request: outbound_pb2.ListSendsRequest, context: Context
    ) -> outbound_pb2.ListSendsResponse:
        ident = identity.require_tenant()
        limit = page_size(request.limit)
        states = [s for s in request.states if s]
        bad = [s for s in states if s not in {x.value for x in State}]
        if bad:
            raise InvalidArgument(f"unknown state {bad[0]!r}", field="states")
        inboxes = ident.inbox_filter()
        if request.inbox_id:
            wanted = str(parse_uuid(request.inbox_id, "inbox_id"))
            inboxes = [wanted] if inboxes is None or wanted in inboxes else []
        rows = await self._d.repo.list_sends(
            ident.tenant_id,
            ticket_id=parse_uuid(request.ticket_id, "ticket_id") if request.ticket_id else None,
            inbox_ids=[uuid.UUID(i) for i in inboxes] if inboxes is not None else None,
            states=states or None,
            limit=limit,
            cursor=Cursor.decode(request.cursor) if request.cursor else None,
        )
        if not rows and request.ticket_id:
            await self._d.peers.require_ticket(ident.metadata(), request.ticket_id)
        rows, cursor = page(rows, limit, lambda r: Cursor(r.created_at, r.id))
        return outbound_pb2.ListSendsResponse(sends=[send_pb(r) for r in rows], next_cursor=cursor)

    # -- changing ------------------------------------------------------------------------

    @staticmethod
    def _may_change(ident: Identity, row: Send) -> None:
        """Changing or cancelling a send (issue 16): the caller may send mail, and is its
        author or may take over another operator's reply (take_over_locks)."""
        if not ident.may(permissions.SEND_WITHOUT_APPROVAL):
            raise PermissionDenied(
                "you may not change or cancel a send (needs the permission "
                f"{permissions.SEND_WITHOUT_APPROVAL})"
            )
        if str(row.operator_id or "") != ident.operator_id and not ident.may(
            permissions.TAKE_OVER_LOCKS
        ):
            author = row.operator_name or "the system"
            raise PermissionDenied(
                f"only its author ({author}) may change or cancel this send, or someone with "
                f"the permission {permissions.TAKE_OVER_LOCKS}"
            )

    async def _change(
        self,
        ident: Identity,
        raw_id: str,
        allowed: frozenset[State],
        state: State,
        what: str,
        action: str,
        **changes: Any,
    ) -> Send:
        d = self._d
        now = d.clock.now()
        async with d.db.transaction() as conn:
            row = await self._visible(ident, raw_id, conn, lock=True)
            self._may_change(ident, row)
            if row.state not in allowed:
                raise FailedPrecondition(
                    f"a send that is {row.state} cannot be {what}", field="send_id"
                )
            raw = changes.pop("raw", None)
            if raw is not None:
                await conn.execute("UPDATE sends SET raw = $2 WHERE id = $1", row.id, raw)
            env = send_changed(
                d.ids,
                row,
                action=action,
                state=state,
                previous=row.state,
                at=now,
                actor=identity.operator_actor(ident),
                send_at=changes.get("send_at"),
                correlation_id=ident.correlation_id,
            )
            updated = await d.repo.set_state(conn, row, state=state, now=now, env=env, **changes)
        d.outbox.wake()
        self._log.info(what, send_id=str(row.id), state=str(state), operator_id=ident.operator_id)
        return updated

    async def _reopen(self, ident: Identity, row: Send) -> None:
        """The draft opens again, to be edited and sent anew — marked as opened by the
        operator who cancelled or gave up (its author is shown who, before sending)."""
        if row.draft_id:
            await self._d.peers.set_draft_state(
                ident.metadata(), str(row.draft_id), "open", str(row.id)
            )

    async def CancelSend(
        self, request: outbound_pb2.CancelSendRequest, context: Context
    ) -> outbound_pb2.Send:
        ident = identity.require_operator()
        row = await self._change(
            ident, request.send_id, domain.WAITING, State.CANCELLED, "cancelled", "cancelled"
        )
        await self._reopen(ident, row)
        return send_pb(row)

    async def RescheduleSend(
        self, request: outbound_pb2.RescheduleSendRequest, context: Context
    ) -> outbound_pb2.Send:
        ident = identity.require_operator()
        if not request.HasField("send_at"):
            raise InvalidArgument("send_at is required", field="send_at")
        send_at = self._send_at(request)
        current = await self._visible(ident, request.send_id)
        self._may_change(ident, current)
        target = channel_target(list(current.recipients))
        if target is not None:  # a channel reply: its window must still be open then
            await self._channels.check(ident.tenant_id, target, send_at)
        raw = retime(bytes(current.raw), send_at)
        signed = False
        if current.dkim_signed:
            raw, signed = await self.sign(ident.tenant_id, raw, current.envelope_from)
        row = await self._change(
            ident,
            request.send_id,
            domain.WAITING,
            State.SCHEDULED,
            "rescheduled",
            "rescheduled",
            send_at=send_at,
            raw=raw,
        )
        if current.dkim_signed and not signed:
            await self._d.repo.pool.execute(
                "UPDATE sends SET dkim_signed = false WHERE id = $1", row.id
            )
        self._d.dispatcher.wake()
        return send_pb(row)

    async def ResolveUnknown(
        self, request: outbound_pb2.ResolveUnknownRequest, context: Context
    ) -> outbound_pb2.Send:
        ident = identity.require_operator()
        decisions = {
            "delivered": State.SENT,
            "resend": State.RETRYING,
            "failed": State.FAILED,
        }
        if request.decision not in decisions:
            raise InvalidArgument("decision must be delivered, resend or failed", field="decision")
        state = decisions[request.decision]
        extra: dict[str, Any] = {}
        if state is State.RETRYING:
            extra = {"due_at": self._d.clock.now(), "attempts_left": True}
        row = await self._change(
            ident,
            request.send_id,
            frozenset({State.UNKNOWN}),
            state,
            f"resolved as {request.decision}",
            "resolved",
            **extra,
        )
        if state is State.FAILED:
            await self._reopen(ident, row)  # before the finisher would, as its author
        self._d.dispatcher.wake()
        return send_pb(row)
