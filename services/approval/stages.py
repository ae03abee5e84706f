"""Stage decisions, free of I/O (APR-2, APR-3): who may decide the current stage, what a
decision does to a request (next stage, final, sent back), and lateness. The caller
holds the request's row lock while it asks, so the request it passes is the truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.runtime import permissions
from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied

from .policy import ApproverKind, Stage

MAX_COMMENT = 4000


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SENT_BACK = "sent_back"
    CANCELLED = "cancelled"
    VOIDED = "voided"
    SENT = "sent"


LIVE = frozenset({State.PENDING, State.APPROVED})


class Verdict(StrEnum):
    APPROVE = "approve"
    APPROVE_AND_SEND = "approve_and_send"
    SEND_BACK = "send_back"


class Outcome(StrEnum):
    WAITING = "waiting"  # counted; the stage needs more approvals
    NEXT_STAGE = "next_stage"
    FINAL = "final"
    SENT_BACK = "sent_back"


@dataclass(frozen=True, slots=True)
class Decider:
    operator_id: str
    display_name: str
    roles: frozenset[str]
    permissions: frozenset[str]
    inboxes: frozenset[str] | None  # None: every inbox


@dataclass(frozen=True, slots=True)
class PastDecision:
    stage: int
    approver_id: str
    approver_name: str
    verdict: Verdict
    at: datetime


@dataclass(frozen=True, slots=True)
class RequestFacts:
    state: State
    stage: int
    stages: tuple[Stage, ...]
    author_id: str
    inbox_id: str
    allow_self_approval: bool
    finished_by_name: str = ""
    finished_at: datetime | None = None


def is_approver(stage: Stage, who: Decider, inbox_id: str) -> bool:
    """Whether `who` decides for this stage: holds `approve` and is named by one of its
    approvers (an operator, a role of theirs, or a member of the request's inbox)."""
    if permissions.APPROVE not in who.permissions:
        return False
    for a in stage.approvers:
        if a.kind is ApproverKind.OPERATOR and a.id == who.operator_id:
            return True
        if a.kind is ApproverKind.ROLE and a.id in who.roles:
            return True
        if a.kind is ApproverKind.INBOX_MEMBERS and (
            who.inboxes is None or inbox_id in who.inboxes
        ):
            return True
    return False


def may_decide(req: RequestFacts, decisions: Sequence[PastDecision], who: Decider) -> bool:
    """Whether `who` may decide the request's current stage now: it is pending, they are
    one of the stage's approvers, not its author (unless the policy allows it), and have
    not decided this stage yet. The queue, a request's `caller_may_decide` and the
    gateway's notifications of approvers all ask this."""
    if req.state is not State.PENDING or not 0 <= req.stage < len(req.stages):
        return False
    if not is_approver(req.stages[req.stage], who, req.inbox_id):
        return False
    if who.operator_id == req.author_id and not req.allow_self_approval:
        return False
    return not any(d.stage == req.stage and d.approver_id == who.operator_id for d in decisions)


def _who(d: PastDecision) -> str:
    return f"{d.approver_name or d.approver_id} at {d.at.isoformat(timespec='seconds')}"


def refuse_settled(req: RequestFacts, decisions: Sequence[PastDecision]) -> None:
    """A request no longer pending: FAILED_PRECONDITION naming who settled it."""
    if req.state is State.PENDING:
        return
    verbs = {
        State.APPROVED: "approved",
        State.SENT: "approved and sent",
        State.SENT_BACK: "sent back",
        State.CANCELLED: "cancelled",
        State.VOIDED: "voided (the draft changed after approval)",
    }
    last = decisions[-1] if decisions else None
    if req.state in (State.CANCELLED, State.VOIDED) or last is None:
        by = req.finished_by_name or "someone"
        when = f" at {req.finished_at.isoformat(timespec='seconds')}" if req.finished_at else ""
        raise FailedPrecondition(
            f"this request was already {verbs[req.state]} by {by}{when}", field="request_id"
        )
    raise FailedPrecondition(
        f"this request was already {verbs[req.state]} by {_who(last)}", field="request_id"
    )


def decide(
    req: RequestFacts,
    decisions: Sequence[PastDecision],
    who: Decider,
    verdict: Verdict,
    comment: str,
    seen_stage: int,
) -> Outcome:
    """What `who`'s decision does to the request, or the error that refuses it.
    `decisions` are the request's, oldest first; `seen_stage` the stage the approver was
    shown (a stage decided meanwhile is a 409 naming who decided it)."""
    refuse_settled(req, decisions)
    if seen_stage != req.stage:
        earlier = [d for d in decisions if d.stage == seen_stage]
        if earlier:
            raise FailedPrecondition(
                f"stage {seen_stage + 1} was already decided by {_who(earlier[-1])}",
                field="stage",
            )
        raise FailedPrecondition(
            f"the request is at stage {req.stage + 1}, not {seen_stage + 1}", field="stage"
        )
    stage = req.stages[req.stage]
    if not is_approver(stage, who, req.inbox_id):
        raise PermissionDenied(
            f"you are not an approver of stage {req.stage + 1} "
            f"(needs the permission {permissions.APPROVE} and to be named by the stage)"
        )
    if who.operator_id == req.author_id and not req.allow_self_approval:
        raise PermissionDenied("you may not approve your own request (the policy forbids it)")
    mine = [d for d in decisions if d.stage == req.stage and d.approver_id == who.operator_id]
    if mine:
        raise FailedPrecondition(
            f"you already decided stage {req.stage + 1} at "
            f"{mine[-1].at.isoformat(timespec='seconds')}",
            field="request_id",
        )
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument(f"a comment is at most {MAX_COMMENT} characters", field="comment")
    if verdict is Verdict.SEND_BACK:
        if not comment.strip():
            raise InvalidArgument("sending back needs a comment for the author", field="comment")
        return Outcome.SENT_BACK
    last = req.stage == len(req.stages) - 1
    approvals = sum(
        1 for d in decisions if d.stage == req.stage and d.verdict is not Verdict.SEND_BACK
    )
    done = approvals + 1 >= stage.required
    if verdict is Verdict.APPROVE_AND_SEND and not (last and done):
        raise FailedPrecondition(
            "approve and send is the last stage's final decision; approve instead",
            field="verdict",
        )
    if not done:
        return Outcome.WAITING
    return Outcome.FINAL if last else Outcome.NEXT_STAGE


def is_late(stage: Stage, stage_started_at: datetime, now: datetime) -> bool:
    """Past the stage's deadline (a stage without one is never late)."""
    return bool(stage.deadline_minutes) and now > stage_started_at + timedelta(
        minutes=stage.deadline_minutes
    )


def may_cancel(req: RequestFacts, who: Decider) -> bool:
    """Its author, or someone who may take over reply locks."""
    return who.operator_id == req.author_id or permissions.TAKE_OVER_LOCKS in who.permissions
