"""What other services ask of composition: outbound (the exact bytes a draft becomes, and
its state as it is sent) and approval (issue 17: holding a draft while its approval is
requested, and releasing it). Each is called with the operator's identity; the rules of
holding are `holds`."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from switchboard.v1 import composition_pb2, composition_pb2_grpc

from services.runtime import identity
from services.runtime import mail as mime
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import holds
from .api import Deps
from .api_draft_attachments import DraftAttachmentsApi
from .api_draft_checks import DraftChecksApi
from .api_drafts import DraftsApi
from .records import Draft


class OutboundApi(DraftChecksApi):
    """What outbound asks of composition (with the submitting operator's identity)."""

    async def RenderDraftMime(
        self, request: composition_pb2.RenderDraftMimeRequest, context: Context
    ) -> composition_pb2.RenderDraftMimeResponse:
        ident = identity.require_operator()
        api = self
        draft, rev, atts = await api._current(ident, request.draft_id)
        if draft.state not in (holds.OPEN, holds.IN_APPROVAL):
            raise FailedPrecondition(f"the draft is {draft.state}", field="draft_id")
        out = await api.outgoing(ident, draft, rev, atts)
        if not out.to and not rev.cc_addrs and not rev.bcc_addrs:
            raise FailedPrecondition("the draft has no recipient", field="to")
        date = (
            request.date.ToDatetime(tzinfo=UTC) if request.HasField("date") else self._d.clock.now()
        )
        msg = mime.build(out, message_id=request.message_id, date=date)
        bcc = mime.parse_addresses(list(rev.bcc_addrs), "bcc")
        recipients = list(dict.fromkeys(m.address for m in [*out.to, *out.cc, *bcc]))
        return composition_pb2.RenderDraftMimeResponse(
            raw=msg.as_bytes(),
            envelope_from=rev.from_address,
            recipients=recipients,
            revision=rev.revision,
            ticket_id=str(draft.ticket_id or ""),
            inbox_id=str(draft.inbox_id),
            subject=rev.subject,
            in_reply_to=draft.in_reply_to,
            draft_kind=draft.kind,
        )

    async def SetDraftState(
        self, request: composition_pb2.SetDraftStateRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        api = self
        d = self._d
        # in_approval → submitted: an approved draft handed over by approve_and_send
        moves = {
            ("open", "submitted"),
            ("in_approval", "submitted"),
            ("submitted", "open"),
            ("submitted", "sent"),
        }
        async with d.db.transaction() as conn:
            draft = await api._draft(ident, request.draft_id, conn, lock=True)
            if (draft.state, request.state) not in moves:
                if draft.state == request.state:
                    return await api._draft_pb(ident, draft)  # already so: idempotent
                raise FailedPrecondition(
                    f"a draft that is {draft.state} cannot become {request.state}",
                    field="state",
                )
            if request.revision and request.revision != draft.revision:
                raise FailedPrecondition(
                    "the draft was saved again meanwhile; check it and send again",
                    field="revision",
                )
            send_id = parse_uuid(request.send_id, "send_id") if request.send_id else None
            await conn.execute(
                "UPDATE drafts SET state = $3, send_id = coalesce($4, send_id), updated_at = $5 "
                "WHERE tenant_id = $1 AND id = $2",
                uuid.UUID(ident.tenant_id),
                draft.id,
                request.state,
                send_id,
                d.clock.now(),
            )
            if request.state == "open":  # opened again: by whoever cancelled or gave up
                await d.repo.changed(
                    conn, ident.tenant_id, draft.id, ident, "reopened", d.clock.now()
                )
            if request.state == "open" or draft.state in ("open", "in_approval"):
                await api._draft_changed(
                    conn,
                    ident,
                    draft,
                    "open" if request.state == "open" else "closed",
                    draft.revision,
                )
            draft = await d.repo.draft(conn, ident.tenant_id, draft.id)
        d.outbox.wake()
        return await api._draft_pb(ident, draft)


class ApprovalHoldsApi(DraftsApi):
    """What approval asks (issue 17): hold a draft for a request before committing it,
    release it when the request ends. The `composition__approvals` consumer
    (`approvals.py`) does the same from the events, so a call that failed is made good."""

    async def HoldForApproval(
        self, request: composition_pb2.HoldForApprovalRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        d = self._d
        request_id = parse_uuid(request.request_id, "request_id")
        replaces = (
            parse_uuid(request.replaces_request_id, "replaces_request_id")
            if request.replaces_request_id
            else None
        )
        async with d.db.transaction() as conn:
            draft = await self._draft(ident, request.draft_id, conn, lock=True)
            if str(draft.author_id) != ident.operator_id:
                raise PermissionDenied("only the draft's author asks for its approval")
            if holds.may_hold(
                draft.state,
                draft.approval_request_id,
                request_id,
                replaces,
                revision=request.revision,
                current=draft.revision,
            ):
                draft = await d.repo.set_hold(
                    conn, ident.tenant_id, draft.id, holds.IN_APPROVAL, request_id, d.clock.now()
                )
        return await self._draft_pb(ident, draft)

    async def ReleaseFromApproval(
        self, request: composition_pb2.ReleaseFromApprovalRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        d = self._d
        request_id = parse_uuid(request.request_id, "request_id")
        async with d.db.transaction() as conn:
            draft = await self._draft(ident, request.draft_id, conn, lock=True)
            holds.check_release(
                is_author=str(draft.author_id) == ident.operator_id, granted=ident.permissions
            )
            draft = await self.release(conn, ident.tenant_id, draft, request_id)
        return await self._draft_pb(ident, draft)

    async def release(
        self, conn: Any, tenant_id: str, draft: Draft, request_id: uuid.UUID
    ) -> Draft:
        """Open again a draft held for `request_id` (else it stays as it is)."""
        if not holds.releases(draft.state, draft.approval_request_id, request_id):
            return draft
        return await self._d.repo.set_hold(
            conn, tenant_id, draft.id, holds.OPEN, request_id, self._d.clock.now()
        )


class CompositionApi(
    OutboundApi,
    ApprovalHoldsApi,
    DraftChecksApi,
    DraftAttachmentsApi,
    DraftsApi,
    composition_pb2_grpc.CompositionServiceServicer,
):
    def __init__(self, deps: Deps) -> None:
        self._d = deps


__all__ = ["CompositionApi"]
