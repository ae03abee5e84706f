"""approval's records as its gRPC messages and events, and a policy read from a request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from switchboard.v1 import approval_pb2, common_pb2, events_pb2

from .policy import Approver, ApproverKind, Condition, ConditionKind, Policy, Stage
from .records import Decision, Request, StoredPolicy
from .stages import (
    LIVE,
    Decider,
    PastDecision,
    RequestFacts,
    State,
    Verdict,
    is_late,
    may_cancel,
    may_decide,
)

_APPROVER = {
    approval_pb2.Approver.KIND_OPERATOR: ApproverKind.OPERATOR,
    approval_pb2.Approver.KIND_ROLE: ApproverKind.ROLE,
    approval_pb2.Approver.KIND_INBOX_MEMBERS: ApproverKind.INBOX_MEMBERS,
}
_APPROVER_PB = {v: k for k, v in _APPROVER.items()}
_CONDITION = {
    approval_pb2.Condition.KIND_RECIPIENT_DOMAIN_NOT_IN: ConditionKind.RECIPIENT_DOMAIN_NOT_IN,
    approval_pb2.Condition.KIND_WORDS: ConditionKind.WORDS,
    approval_pb2.Condition.KIND_ATTACHMENT: ConditionKind.ATTACHMENT,
    approval_pb2.Condition.KIND_RECIPIENTS_MORE_THAN: ConditionKind.RECIPIENTS_MORE_THAN,
    approval_pb2.Condition.KIND_TICKET_LABEL: ConditionKind.TICKET_LABEL,
    approval_pb2.Condition.KIND_TICKET_PRIORITY: ConditionKind.TICKET_PRIORITY,
}
_CONDITION_PB = {v: k for k, v in _CONDITION.items()}
STATE_PB = {
    State.PENDING: approval_pb2.REQUEST_STATE_PENDING,
    State.APPROVED: approval_pb2.REQUEST_STATE_APPROVED,
    State.SENT_BACK: approval_pb2.REQUEST_STATE_SENT_BACK,
    State.CANCELLED: approval_pb2.REQUEST_STATE_CANCELLED,
    State.VOIDED: approval_pb2.REQUEST_STATE_VOIDED,
    State.SENT: approval_pb2.REQUEST_STATE_SENT,
}
VERDICT = {
    approval_pb2.VERDICT_APPROVE: Verdict.APPROVE,
    approval_pb2.VERDICT_APPROVE_AND_SEND: Verdict.APPROVE_AND_SEND,
    approval_pb2.VERDICT_SEND_BACK: Verdict.SEND_BACK,
}
_VERDICT_PB = {v: k for k, v in VERDICT.items()}
_STATE = {v: k for k, v in STATE_PB.items()}


class UnknownKind(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _approver(a: approval_pb2.Approver, field: str) -> Approver:
    kind = _APPROVER.get(a.kind)
    if kind is None:
        raise UnknownKind(f"{field}.kind")
    return Approver(kind, a.id.strip())


def _stage_of(s: approval_pb2.Stage, i: int) -> Stage:
    at = f"stages[{i}].approvers"
    return Stage(
        s.name,
        tuple(_approver(a, f"{at}[{j}]") for j, a in enumerate(s.approvers)),
        s.required,
        s.deadline_minutes,
    )


def policy_from_pb(p: approval_pb2.ApprovalPolicy, policy_id: str) -> Policy:
    """The message as a policy to validate; UnknownKind names a field of unknown kind."""
    conditions = []
    for k, c in enumerate(p.conditions):
        kind = _CONDITION.get(c.kind)
        if kind is None:
            raise UnknownKind(f"conditions[{k}].kind")
        conditions.append(Condition(kind, tuple(c.values), c.count))
    return Policy(
        id=policy_id,
        inbox_id=p.inbox_id,
        name=p.name,
        stages=tuple(_stage_of(s, i) for i, s in enumerate(p.stages)),
        conditions=tuple(conditions),
        skip=tuple(_approver(a, f"skip[{j}]") for j, a in enumerate(p.skip)),
        allow_self_approval=p.allow_self_approval,
        version=p.version,
    )


def stage_pb(s: Stage) -> approval_pb2.Stage:
    return approval_pb2.Stage(
        name=s.name,
        approvers=[approval_pb2.Approver(kind=_APPROVER_PB[a.kind], id=a.id) for a in s.approvers],
        required=s.required,
        deadline_minutes=s.deadline_minutes,
    )


def policy_pb(p: Policy, updated_at: datetime | None = None) -> approval_pb2.ApprovalPolicy:
    out = approval_pb2.ApprovalPolicy(
        id=p.id,
        inbox_id=p.inbox_id,
        name=p.name,
        stages=[stage_pb(s) for s in p.stages],
        conditions=[
            approval_pb2.Condition(kind=_CONDITION_PB[c.kind], values=list(c.values), count=c.count)
            for c in p.conditions
        ],
        skip=[approval_pb2.Approver(kind=_APPROVER_PB[a.kind], id=a.id) for a in p.skip],
        allow_self_approval=p.allow_self_approval,
        version=p.version,
        builtin=p.builtin,
    )
    if updated_at is not None:
        out.updated_at.FromDatetime(updated_at)
    return out


def stored_pb(sp: StoredPolicy) -> approval_pb2.ApprovalPolicy:
    return policy_pb(sp.policy, sp.updated_at)


def _op(op_id: str, name: str) -> common_pb2.OperatorRef:
    return common_pb2.OperatorRef(id=op_id, display_name=name)


def request_pb(
    r: Request, decisions: Sequence[Decision], now: datetime, caller: Decider | None = None
) -> approval_pb2.ApprovalRequest:
    """The request as answered; `caller_may_decide` and `caller_may_cancel` for `caller`
    (None, in events: both false)."""
    facts = r.facts()
    out = approval_pb2.ApprovalRequest(
        id=r.id,
        draft_id=r.draft_id,
        revision=r.revision,
        content_hash=r.content_hash,
        ticket_id=r.ticket_id,
        inbox_id=r.inbox_id,
        author=_op(r.author_id, r.author_name),
        state=STATE_PB[r.state],
        stage=r.stage,
        stages=[stage_pb(s) for s in r.stages],
        allow_self_approval=r.allow_self_approval,
        policy_id=r.policy_id,
        note=r.note,
        status_after=cast(common_pb2.TicketStatus, r.status_after),
        late=r.state is State.PENDING and is_late(r.stages[r.stage], r.stage_started_at, now),
        subject=r.subject,
        submitted_revision=r.submitted_revision,
        without_survey=r.without_survey,
        caller_may_decide=caller is not None
        and may_decide(facts, [d.past() for d in decisions], caller),
        caller_may_cancel=caller is not None and r.state in LIVE and may_cancel(facts, caller),
    )
    for d in decisions:
        dec = out.decisions.add(
            stage=d.stage,
            approver=_op(d.approver_id, d.approver_name),
            verdict=_VERDICT_PB[d.verdict],
            comment=d.comment,
            revision=d.revision,
        )
        dec.decided_at.FromDatetime(d.decided_at)
    out.requested_at.FromDatetime(r.requested_at)
    out.stage_started_at.FromDatetime(r.stage_started_at)
    if r.send_at is not None:
        out.send_at.FromDatetime(r.send_at)
    if r.finished_at is not None:
        out.finished_at.FromDatetime(r.finished_at)
        out.finished_by.CopyFrom(_op(r.finished_by, r.finished_by_name))
    return out


def facts_of_pb(
    req: approval_pb2.ApprovalRequest,
) -> tuple[RequestFacts, list[PastDecision]]:
    """A request as answered (or as an event carries it) back as the facts the stage rules
    judge, with its decisions: the gateway asks `may_decide` with them for each operator
    it might notify. A stage or decision of an unknown kind counts for nobody."""
    stages = tuple(
        Stage(
            s.name,
            tuple(Approver(_APPROVER[a.kind], a.id) for a in s.approvers if a.kind in _APPROVER),
            s.required,
            s.deadline_minutes,
        )
        for s in req.stages
    )
    facts = RequestFacts(
        _STATE.get(req.state, State.CANCELLED),
        req.stage,
        stages,
        req.author.id,
        req.inbox_id,
        req.allow_self_approval,
        req.finished_by.display_name,
        req.finished_at.ToDatetime(tzinfo=UTC) if req.HasField("finished_at") else None,
    )
    decisions = [
        PastDecision(
            d.stage,
            d.approver.id,
            d.approver.display_name,
            VERDICT.get(d.verdict, Verdict.APPROVE),
            d.decided_at.ToDatetime(tzinfo=UTC),
        )
        for d in req.decisions
    ]
    return facts, decisions


def changed_pb(
    r: Request,
    *,
    decisions: Sequence[Decision] = (),
    now: datetime | None = None,
    approver: tuple[str, str] = ("", ""),
    stage: int | None = None,
    final: bool = False,
    send: bool = False,
    reason: str = "",
    comment: str = "",
) -> events_pb2.ApprovalChanged:
    out = events_pb2.ApprovalChanged(
        request_id=r.id,
        draft_id=r.draft_id,
        revision=r.revision,
        content_hash=r.content_hash,
        ticket_id=r.ticket_id,
        inbox_id=r.inbox_id,
        author=_op(r.author_id, r.author_name),
        stage=r.stage if stage is None else stage,
        stage_count=len(r.stages),
        final=final,
        send=send,
        status_after=cast(common_pb2.TicketStatus, r.status_after),
        without_survey=r.without_survey,
        reason=reason,
        note=r.note,
        comment=comment,
        request=request_pb(r, decisions, now or r.stage_started_at),
    )
    if approver[0]:
        out.approver.CopyFrom(_op(*approver))
    out.requested_at.FromDatetime(r.requested_at)
    if r.send_at is not None:
        out.send_at.FromDatetime(r.send_at)
    return out
