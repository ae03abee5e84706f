"""ApprovalService, the operators' side: whether a draft needs approval (outbound's
guard asks before every send), requests bound to one revision and its content hash,
the approvers' queue, stage decisions serialised by the request's row lock, and
cancelling. Every change and its `approval.*` event are one transaction (the outbox)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from switchboard.v1 import approval_pb2, common_pb2, composition_pb2

from services.runtime import events, identity, log
from services.runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.events import EventType
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import convert, policy, stages
from .api_policies import PoliciesApi
from .drafts import facts_of, hash_of, ticket_facts
from .records import Decision, Request
from .stages import Outcome, State, Verdict

_log = log.get("approval.api")

MAX_NOTE = 4000
MAX_AHEAD = timedelta(days=366)
_STATUSES = {
    common_pb2.TICKET_STATUS_UNSPECIFIED,
    common_pb2.TICKET_STATUS_OPEN,
    common_pb2.TICKET_STATUS_PENDING,
    common_pb2.TICKET_STATUS_RESOLVED,
    common_pb2.TICKET_STATUS_NO_ACTION,
}


def _decider(ident: Identity) -> stages.Decider:
    return stages.Decider(
        ident.operator_id,
        ident.display_name,
        frozenset(ident.roles),
        ident.permissions,
        ident.inboxes,
    )


class ApprovalApi(PoliciesApi):
    # -- helpers -----------------------------------------------------------------------

    async def _policy_for(self, tenant: str, inbox_id: str) -> policy.Policy:
        stored = await self._d.repo.policies(self._d.repo.pool, tenant)
        return policy.choose([sp.policy for sp in stored], inbox_id)

    async def _visible(
        self, ident: Identity, raw_id: str, conn: Any = None, *, lock: bool = False
    ) -> Request:
        found = await self._d.repo.request(
            conn or self._d.repo.pool, ident.tenant_id, parse_uuid(raw_id, "request_id"), lock=lock
        )
        if found is None or not ident.sees_inbox(found.inbox_id):
            raise NotFound("no such approval request", field="request_id")
        return found

    async def _emit(
        self, conn: asyncpg.Connection, ident: Identity, etype: EventType, payload: Any
    ) -> None:
        actor = (
            identity.operator_actor(ident) if ident.operator_id else events.system_actor("approval")
        )
        env = events.envelope(
            etype,
            event_id=self._d.ids.new_str(),
            tenant_id=ident.tenant_id,
            occurred_at=self._d.clock.now(),
            payload=payload,
            actor=actor,
            correlation_id=ident.correlation_id,
        )
        await self._d.outbox.add(conn, env)

    async def _pbs(
        self, ident: Identity, rows: list[Request]
    ) -> list[approval_pb2.ApprovalRequest]:
        """The requests with their decisions, as answered."""
        found = await self._d.repo.decisions_by_request(
            self._d.repo.pool, ident.tenant_id, [r.id for r in rows]
        )
        now = self._d.clock.now()
        who = _decider(ident)
        return [convert.request_pb(r, found[r.id], now, who) for r in rows]

    async def _pb(self, ident: Identity, r: Request) -> approval_pb2.ApprovalRequest:
        return (await self._pbs(ident, [r]))[0]

    async def _void(self, ident: Identity, r: Request, reason: str) -> None:
        """The approved revision changed: the approval no longer holds (approval.voided)."""
        async with self._d.db.transaction() as conn:
            locked = await self._d.repo.request(conn, ident.tenant_id, uuid.UUID(r.id), lock=True)
            if locked is None or locked.state is not State.APPROVED:
                return
            now = self._d.clock.now()
            voided = replace(
                locked, state=State.VOIDED, finished_at=now, finished_by="", finished_by_name=""
            )
            await self._d.repo.update_request(conn, ident.tenant_id, voided)
            past = await self._d.repo.decisions_by_request(conn, ident.tenant_id, [voided.id])
            payload = convert.changed_pb(voided, decisions=past[voided.id], now=now, reason=reason)
            await self._emit(conn, ident, events.APPROVAL_VOIDED, payload)
        self._d.outbox.wake()

    # -- evaluating --------------------------------------------------------------------

    async def Evaluate(
        self, request: approval_pb2.EvaluateRequest, context: Context
    ) -> approval_pb2.Evaluation:
        ident = identity.require_operator()
        d = self._d
        md = ident.metadata()
        draft = await d.peers.draft(md, str(parse_uuid(request.draft_id, "draft_id")))
        chosen = await self._policy_for(ident.tenant_id, draft.inbox_id)
        ticket = None  # asked only when a condition looks at it
        if draft.ticket_id and policy.looks_at_ticket(chosen):
            ticket = await d.peers.ticket(md, draft.ticket_id)
        flag = await d.repo.flag(d.repo.pool, ident.tenant_id, ident.operator_id)
        author = policy.Author(ident.operator_id, frozenset(ident.roles), ident.permissions)
        reasons = policy.needs_approval(
            chosen,
            author,
            facts_of(draft.current),
            ticket_facts(ticket),
            requested=request.requested,
            flagged_until=flag.until if flag else None,
            now=d.clock.now(),
        )
        digest = hash_of(draft.current)
        last = await d.repo.last_request(d.repo.pool, ident.tenant_id, draft.id)
        approved = False
        if last is not None and last.state is State.APPROVED:
            if (last.revision, last.content_hash) == (draft.current.revision, digest):
                approved = True
            else:
                await self._void(
                    ident,
                    last,
                    f"the draft changed after approval (revision {last.revision} approved, "
                    f"now {draft.current.revision})",
                )
        return approval_pb2.Evaluation(
            needs_approval=bool(reasons),
            reasons=list(reasons),
            revision=draft.current.revision,
            content_hash=digest,
            approved=approved,
            request_id=last.id if last else "",
            policy_id=chosen.id,
        )

    # -- requesting --------------------------------------------------------------------

    def _send_at(self, request: approval_pb2.RequestApprovalRequest) -> datetime | None:
        if not request.HasField("send_at"):
            return None
        now = self._d.clock.now()
        at = request.send_at.ToDatetime(tzinfo=UTC)
        if at < now - timedelta(minutes=1) or at > now + MAX_AHEAD:
            raise InvalidArgument(
                "send_at is in the past or more than a year ahead", field="send_at"
            )
        return at

    async def RequestApproval(
        self, request: approval_pb2.RequestApprovalRequest, context: Context
    ) -> approval_pb2.ApprovalRequest:
        ident = identity.require_operator()
        d = self._d
        policy.no_nul(request.note, "note")
        if len(request.note) > MAX_NOTE:
            raise InvalidArgument(f"a note is at most {MAX_NOTE} characters", field="note")
        if request.status_after not in _STATUSES:
            raise InvalidArgument(
                "status_after must be open, pending, resolved or no_action", field="status_after"
            )
        send_at = self._send_at(request)
        md = ident.metadata()
        draft = await d.peers.draft(md, str(parse_uuid(request.draft_id, "draft_id")))
        if draft.author.id != ident.operator_id:
            raise PermissionDenied("only the draft's author asks for its approval")
        replaces = await self._stale_hold(ident, draft)
        chosen = await self._policy_for(ident.tenant_id, draft.inbox_id)
        now = d.clock.now()
        new = Request(
            id=d.ids.new_str(),
            draft_id=draft.id,
            revision=draft.current.revision,
            content_hash=hash_of(draft.current),
            ticket_id=draft.ticket_id,
            inbox_id=draft.inbox_id,
            author_id=ident.operator_id,
            author_name=ident.display_name,
            subject=draft.current.subject[:500],
            policy_id=chosen.id,
            stages=chosen.stages,
            allow_self_approval=chosen.allow_self_approval,
            state=State.PENDING,
            stage=0,
            note=request.note.strip(),
            send_at=send_at,
            status_after=request.status_after,
            without_survey=request.without_survey
            and request.status_after == common_pb2.TICKET_STATUS_RESOLVED,
            requested_at=now,
            stage_started_at=now,
            finished_at=None,
            finished_by="",
            finished_by_name="",
            submitted_revision=draft.current.revision,
        )
        # the draft is frozen for its author before the request exists (refused if it was
        # saved since it was read), and opened again if the request is not committed
        await d.peers.hold(md, draft.id, new.id, new.revision, replaces)
        try:
            async with d.db.transaction() as conn:
                row = await d.repo.insert_request(conn, ident.tenant_id, new)
                payload = convert.changed_pb(row, now=now)
                await self._emit(conn, ident, events.APPROVAL_REQUESTED, payload)
        except BaseException:
            await self._release_draft(ident, draft_id=draft.id, request_id=new.id)
            raise
        d.outbox.wake()
        if draft.ticket_id:  # the author's reply lock goes: an approver may take it
            try:
                await d.peers.release_own_lock(md, draft.ticket_id, ident.operator_id)
            except DomainError as err:
                _log.warning(
                    "could not release the author's reply lock (it expires)", error=str(err)
                )
        return convert.request_pb(row, [], now, _decider(ident))

    async def _stale_hold(self, ident: Identity, draft: composition_pb2.Draft) -> str:
        """A draft awaiting approval already: refused while its request is live; a hold
        whose request ended (or never committed) is replaced — its id, or ""."""
        if draft.state == "open":
            return ""
        if draft.state != "in_approval":
            raise FailedPrecondition(f"the draft is {draft.state}", field="draft_id")
        last = await self._d.repo.last_request(self._d.repo.pool, ident.tenant_id, draft.id)
        if last is not None and last.state in stages.LIVE:
            raise AlreadyExists(
                "the draft is awaiting approval already (cancel that request first)",
                field="draft_id",
            )
        return draft.approval_request_id

    async def _release_draft(self, ident: Identity, *, draft_id: str, request_id: str) -> None:
        """Open the draft again for its author (the request ended or was never made);
        when composition cannot be reached, its `composition__approvals` consumer does it
        from the event."""
        try:
            await self._d.peers.release(ident.metadata(), draft_id, request_id)
        except DomainError as err:
            _log.warning(
                "could not release the draft (the event will)",
                draft_id=draft_id,
                request_id=request_id,
                error=str(err),
            )

    # -- reading -----------------------------------------------------------------------

    async def GetRequest(
        self, request: approval_pb2.GetRequestRequest, context: Context
    ) -> approval_pb2.ApprovalRequest:
        ident = identity.require_operator()
        return await self._pb(ident, await self._visible(ident, request.request_id))

    async def ListQueue(
        self, request: approval_pb2.ListQueueRequest, context: Context
    ) -> approval_pb2.ListQueueResponse:
        """The pending requests whose current stage the caller may decide, oldest first."""
        ident = identity.require_operator()
        d = self._d
        if not 0 <= request.limit <= 500:
            raise InvalidArgument("limit is 0 (100) to 500", field="limit")
        inboxes = ident.inbox_filter()
        if request.inbox_id:
            wanted = str(parse_uuid(request.inbox_id, "inbox_id"))
            if not ident.sees_inbox(wanted):
                raise NotFound("no such inbox", field="inbox_id")
            inboxes = [wanted]
        rows = await d.repo.pending(d.repo.pool, ident.tenant_id, inboxes, 2000)
        who = _decider(ident)
        # those whose stage names the caller, then without the stages they decided already
        named = [r for r in rows if stages.may_decide(r.facts(), (), who)]
        past = await d.repo.decisions_by_request(
            d.repo.pool, ident.tenant_id, [r.id for r in named]
        )
        now = d.clock.now()
        mine = [
            convert.request_pb(r, past[r.id], now, who)
            for r in named
            if stages.may_decide(r.facts(), [p.past() for p in past[r.id]], who)
        ]
        return approval_pb2.ListQueueResponse(requests=mine[: request.limit or 100])

    async def ListHistory(
        self, request: approval_pb2.ListHistoryRequest, context: Context
    ) -> approval_pb2.ListHistoryResponse:
        ident = identity.require_operator()
        d = self._d
        draft = await d.peers.draft(ident.metadata(), str(parse_uuid(request.draft_id, "draft_id")))
        rows = await d.repo.history(d.repo.pool, ident.tenant_id, draft.id)
        return approval_pb2.ListHistoryResponse(requests=await self._pbs(ident, rows))

    # -- deciding ----------------------------------------------------------------------

    async def Decide(
        self, request: approval_pb2.DecideRequest, context: Context
    ) -> approval_pb2.ApprovalRequest:
        ident = identity.require_operator()
        d = self._d
        verdict = convert.VERDICT.get(request.verdict)
        if verdict is None:
            raise InvalidArgument(
                "verdict is approve, approve_and_send or send_back", field="verdict"
            )
        policy.no_nul(request.comment, "comment")
        r = await self._visible(ident, request.request_id)
        draft: composition_pb2.Draft = await d.peers.draft(ident.metadata(), r.draft_id)
        if draft.state not in ("open", "in_approval") and r.state is State.PENDING:
            raise FailedPrecondition(
                f"the draft is {draft.state}: there is nothing left to decide", field="request_id"
            )
        if request.revision != draft.current.revision:
            raise FailedPrecondition(
                f"the draft changed since you opened it (revision {draft.current.revision}, "
                f"not {request.revision}): look at it again",
                field="revision",
            )
        digest = hash_of(draft.current)
        async with d.db.transaction() as conn:
            locked = await self._visible(ident, r.id, conn, lock=True)
            past = (await d.repo.decisions_by_request(conn, ident.tenant_id, [r.id]))[r.id]
            outcome = stages.decide(
                locked.facts(),
                [p.past() for p in past],
                _decider(ident),
                verdict,
                request.comment,
                request.stage,
            )
            now = d.clock.now()
            decision = Decision(
                locked.stage,
                ident.operator_id,
                ident.display_name,
                verdict,
                request.comment.strip(),
                draft.current.revision,
                now,
            )
            await d.repo.insert_decision(conn, ident.tenant_id, r.id, decision)
            updated = self._after(locked, outcome, ident, draft.current.revision, digest, now)
            updated = await d.repo.update_request(conn, ident.tenant_id, updated)
            decided = [*past, decision]
            await self._announce(
                conn, ident, locked, updated, decided, outcome, verdict, decision.comment
            )
        d.outbox.wake()
        if outcome in (Outcome.SENT_BACK, Outcome.FINAL):
            # back to its author (approve_and_send: outbound submits it, open or held)
            await self._release_draft(ident, draft_id=r.draft_id, request_id=r.id)
        return convert.request_pb(updated, decided, d.clock.now(), _decider(ident))

    @staticmethod
    def _after(
        r: Request, outcome: Outcome, ident: Identity, revision: int, digest: str, now: datetime
    ) -> Request:
        """The request after a decision; it binds the revision decided on."""
        bound = replace(r, revision=revision, content_hash=digest)
        if outcome is Outcome.WAITING:
            return bound
        if outcome is Outcome.NEXT_STAGE:
            return replace(bound, stage=r.stage + 1, stage_started_at=now)
        state = State.APPROVED if outcome is Outcome.FINAL else State.SENT_BACK
        return replace(
            bound,
            state=state,
            finished_at=now,
            finished_by=ident.operator_id,
            finished_by_name=ident.display_name,
        )

    async def _announce(
        self,
        conn: asyncpg.Connection,
        ident: Identity,
        before: Request,
        after: Request,
        decided: list[Decision],
        outcome: Outcome,
        verdict: Verdict,
        comment: str,
    ) -> None:
        who = (ident.operator_id, ident.display_name)
        now = self._d.clock.now()
        if outcome is Outcome.SENT_BACK:
            payload = convert.changed_pb(
                after,
                decisions=decided,
                now=now,
                approver=who,
                stage=before.stage,
                comment=comment,
            )
            await self._emit(conn, ident, events.APPROVAL_SENT_BACK, payload)
        elif outcome in (Outcome.NEXT_STAGE, Outcome.FINAL):
            payload = convert.changed_pb(
                after,
                decisions=decided,
                now=now,
                approver=who,
                stage=before.stage,
                final=outcome is Outcome.FINAL,
                send=verdict is Verdict.APPROVE_AND_SEND,
                comment=comment,
            )
            await self._emit(conn, ident, events.APPROVAL_APPROVED, payload)

    async def CancelRequest(
        self, request: approval_pb2.CancelRequestRequest, context: Context
    ) -> approval_pb2.ApprovalRequest:
        ident = identity.require_operator()
        d = self._d
        async with d.db.transaction() as conn:
            locked = await self._visible(ident, request.request_id, conn, lock=True)
            if not stages.may_cancel(locked.facts(), _decider(ident)):
                raise PermissionDenied(
                    "only its author, or someone who may take over reply locks, cancels a request"
                )
            past = await d.repo.decisions_by_request(conn, ident.tenant_id, [locked.id])
            if locked.state not in stages.LIVE:
                stages.refuse_settled(locked.facts(), [p.past() for p in past[locked.id]])
            now = d.clock.now()
            cancelled = replace(
                locked,
                state=State.CANCELLED,
                finished_at=now,
                finished_by=ident.operator_id,
                finished_by_name=ident.display_name,
            )
            cancelled = await d.repo.update_request(conn, ident.tenant_id, cancelled)
            payload = convert.changed_pb(
                cancelled,
                decisions=past[locked.id],
                now=now,
                approver=(ident.operator_id, ident.display_name),
            )
            await self._emit(conn, ident, events.APPROVAL_CANCELLED, payload)
        d.outbox.wake()
        await self._release_draft(ident, draft_id=cancelled.draft_id, request_id=cancelled.id)
        return await self._pb(ident, cancelled)
