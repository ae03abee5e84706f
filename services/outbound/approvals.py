"""The hand-over of a final approval (issue 17): `approval.approved` with `final` and
`send` (an `approve_and_send`) is outbound's order to send exactly the approved revision
— now or at the time its author chose — through the same exactly-once path as an
operator's send (`submit.Submitter.queue`).

No operator's session stands behind it, so it acts for the draft's author as accounts
knows them now (asked as the author, who may read themselves): their roles, permissions
and inboxes, so composition's and tickets' own checks apply within the tenant. The send
is the author's (its operator, whose identity finishes it); its `send.changed` names the
approver who made it go.

Before queueing, approval's `Evaluate` (as the author) must say that this request's
final approval binds the draft's current revision with the approved content hash;
otherwise the approval is void (Evaluate marks the request `voided` and announces it)
and nothing is sent. The approved revision passes the guard by being the approved one.
Exactly once: a redelivered event finds the live send of (draft, revision) — the unique
index of `sends` — or its event id in `processed_events`, and changes nothing. A refusal
(a blocking pre-send check, no route, the author no longer sees the inbox) is logged
and leaves the request `approved`: the author may send the approved revision themselves
and is told why not. A channel reply is not refused for its channel here (a reply window
closed before the approval, a channel turned off): it is queued, and its delivery,
which judges both, fails it with the reason — in the ticket's outgoing mail and history,
the draft open again for its author. A peer that is down naks the event: it comes back."""

from __future__ import annotations

import uuid
from datetime import UTC

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import DomainError, Unavailable
from services.runtime.identity import Identity

from .api import SCHEDULED_AFTER, Deps, SendsApi
from .submit import Submission

APPROVALS = registry.OUTBOUND_APPROVALS
_HANDED_OVER = frozenset({"open", "in_approval"})  # in_approval: composition's frozen draft


class ApprovedSends:
    def __init__(self, deps: Deps, sends: SendsApi) -> None:
        self._d = deps
        self._sends = sends
        self._log = log.get("outbound.approvals")

    async def on_approved(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        p = events.payload_of(env, events.APPROVAL_APPROVED)
        if not (p.final and p.send):
            return
        with log.bound(tenant_id=env.tenant_id, request_id=p.request_id, draft_id=p.draft_id):
            try:
                await self._hand_over(env, p)
            except Unavailable:
                raise
            except DomainError as err:
                self._log.warning(
                    "approved mail not handed over: the author may send it themselves",
                    error=err.message,
                    field=err.field or None,
                )

    async def _author(self, env: events_pb2.EventEnvelope, author_id: str) -> Identity:
        """The author's identity as accounts knows it now, for this tenant only."""
        tenant = env.tenant_id
        op = await self._d.peers.operator(
            Identity(tenant_id=tenant, operator_id=author_id).metadata(), author_id
        )
        return Identity(
            tenant_id=tenant,
            operator_id=op.id,
            roles=tuple(op.roles),
            correlation_id=env.correlation_id or env.event_id,
            display_name=op.display_name,
            permissions=frozenset(op.permissions),
            inboxes=None if op.all_inboxes else frozenset(op.inbox_ids),
            time_zone=op.time_zone,
            language=op.language,
        )

    async def _hand_over(
        self, env: events_pb2.EventEnvelope, p: events_pb2.ApprovalChanged
    ) -> None:
        d = self._d
        tenant = env.tenant_id
        existing = await d.repo.live_send(tenant, uuid.UUID(p.draft_id), p.revision)
        if existing is not None:
            self._log.info("already handed over", send_id=str(existing.id))
            return
        ident = await self._author(env, p.author.id)
        md = ident.metadata()
        verdict = await d.peers.evaluate(md, p.draft_id)
        holds = (
            verdict.approved
            and verdict.request_id == p.request_id
            and (verdict.revision, verdict.content_hash) == (p.revision, p.content_hash)
        )
        if not holds:
            self._log.warning(
                "the approval no longer holds: not sent",
                approved=verdict.approved,
                revision=verdict.revision,
                approved_revision=p.revision,
            )
            return
        draft = await d.peers.get_draft(md, p.draft_id)
        if draft.state not in _HANDED_OVER:
            self._log.warning("the approved draft is not sendable", state=draft.state)
            return
        await self._sends.refuse_blocked(md, p.draft_id, None)
        now = d.clock.now()
        send_at = max(p.send_at.ToDatetime(tzinfo=UTC), now) if p.HasField("send_at") else now
        approver = p.approver
        row = await self._sends.queue(
            ident,
            Submission(
                draft_id=p.draft_id,
                ticket_id=draft.ticket_id,
                from_address=draft.current.from_address,
                send_at=send_at,
                scheduled=send_at > now + SCHEDULED_AFTER,
                status_after=p.status_after,
                without_survey=p.without_survey,
                actor=common_pb2.Actor(
                    kind=common_pb2.Actor.KIND_OPERATOR,
                    id=approver.id,
                    display=approver.display_name or approver.id,
                ),
                approved_revision=p.revision,
                cause=env,
                consumer=APPROVALS.durable,
                channel_judged_at_delivery=True,
            ),
        )
        if row is not None:
            self._log.info(
                "approved mail handed over",
                send_id=str(row.id),
                send_at=row.send_at.isoformat(),
                approver_id=approver.id or None,
            )
