"""JSON shapes of approval (issue 17; documented in gateway/openapi.yaml): a request
with what the caller may do with it, policies and their write bodies, operator flags,
and what the live socket pushes — `approval.changed` to the inbox's operators,
notifications to the current stage's approvers and to the author. Who is an approver
is the approval service's rule (`services.approval.stages.may_decide`), asked here
with the socket's caller, never restated."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from switchboard.v1 import approval_pb2, events_pb2

from services.approval.convert import facts_of_pb
from services.approval.stages import Decider, may_decide
from services.runtime.ticket_names import STATUS_NAMES

from .auth import Caller
from .views import actor, iso, operator

A = approval_pb2
STATES = {
    A.REQUEST_STATE_PENDING: "pending",
    A.REQUEST_STATE_APPROVED: "approved",
    A.REQUEST_STATE_SENT_BACK: "sent_back",
    A.REQUEST_STATE_CANCELLED: "cancelled",
    A.REQUEST_STATE_VOIDED: "voided",
    A.REQUEST_STATE_SENT: "sent",
}
VERDICTS = {
    A.VERDICT_APPROVE: "approve",
    A.VERDICT_APPROVE_AND_SEND: "approve_and_send",
    A.VERDICT_SEND_BACK: "send_back",
}
VERDICT_VALUES = {name: value for value, name in VERDICTS.items()}
APPROVER_KINDS = {
    A.Approver.KIND_OPERATOR: "operator",
    A.Approver.KIND_ROLE: "role",
    A.Approver.KIND_INBOX_MEMBERS: "inbox_members",
}
APPROVER_VALUES = {name: value for value, name in APPROVER_KINDS.items()}
CONDITION_KINDS = {
    A.Condition.KIND_RECIPIENT_DOMAIN_NOT_IN: "recipient_domain_not_in",
    A.Condition.KIND_WORDS: "words",
    A.Condition.KIND_ATTACHMENT: "attachment",
    A.Condition.KIND_RECIPIENTS_MORE_THAN: "recipients_more_than",
    A.Condition.KIND_TICKET_LABEL: "ticket_label",
    A.Condition.KIND_TICKET_PRIORITY: "ticket_priority",
}
CONDITION_VALUES = {name: value for value, name in CONDITION_KINDS.items()}


def _approver(a: approval_pb2.Approver) -> dict[str, str]:
    return {"kind": APPROVER_KINDS.get(a.kind, "operator"), "id": a.id}


def stage(s: approval_pb2.Stage) -> dict[str, Any]:
    return {
        "name": s.name,
        "approvers": [_approver(a) for a in s.approvers],
        "required": s.required or 1,
        "deadline_minutes": s.deadline_minutes,
    }


def approval(r: approval_pb2.ApprovalRequest, *, for_caller: bool = True) -> dict[str, Any]:
    """A request; `can_decide` and `can_cancel` (the approval service's answer for the
    caller) unless it is pushed to many (`for_caller=False`)."""
    out: dict[str, Any] = {
        "id": r.id,
        "draft_id": r.draft_id,
        "ticket_id": r.ticket_id or None,
        "inbox_id": r.inbox_id,
        "subject": r.subject,
        "author": operator(r.author),
        "state": STATES.get(r.state, "pending"),
        "stage": r.stage,
        "stages": [stage(s) for s in r.stages],
        "revision": r.revision,
        "submitted_revision": r.submitted_revision or r.revision,
        "note": r.note,
        "send_at": iso(r.send_at),
        "status_after": STATUS_NAMES.get(r.status_after),
        "without_survey": r.without_survey,
        "requested_at": iso(r.requested_at),
        "stage_started_at": iso(r.stage_started_at),
        "finished_at": iso(r.finished_at),
        "finished_by": operator(r.finished_by) if r.finished_by.id else None,
        "late": r.late,
        "decisions": [
            {
                "stage": d.stage,
                "approver": operator(d.approver),
                "verdict": VERDICTS.get(d.verdict, "approve"),
                "comment": d.comment,
                "revision": d.revision,
                "decided_at": iso(d.decided_at),
            }
            for d in r.decisions
        ],
    }
    if for_caller:
        out["can_decide"] = r.caller_may_decide
        out["can_cancel"] = r.caller_may_cancel
    return out


# -- policies and flags ------------------------------------------------------------------


def policy(p: approval_pb2.ApprovalPolicy) -> dict[str, Any]:
    return {
        "id": p.id or None,
        "inbox_id": p.inbox_id or None,
        "name": p.name,
        "stages": [stage(s) for s in p.stages],
        "conditions": [
            {
                "kind": CONDITION_KINDS.get(c.kind, "words"),
                "values": list(c.values),
                "count": c.count,
            }
            for c in p.conditions
        ],
        "skip": [_approver(a) for a in p.skip],
        "allow_self_approval": p.allow_self_approval,
        "version": p.version,
        "builtin": p.builtin,
        "updated_at": iso(p.updated_at),
    }


def _approver_pb(a: dict[str, Any]) -> approval_pb2.Approver:
    return A.Approver(kind=APPROVER_VALUES[a["kind"]], id=a.get("id") or "")


def policy_write(body: dict[str, Any], policy_id: str = "") -> approval_pb2.ApprovalPolicy:
    """A body its schema accepted (ApprovalPolicyWrite); the approval service validates
    the rest and names the field (`stages`, `stages[1].approvers`, …)."""
    return A.ApprovalPolicy(
        id=policy_id,
        inbox_id=body.get("inbox_id") or "",
        name=body.get("name") or "",
        stages=[
            A.Stage(
                name=s.get("name") or "",
                approvers=[_approver_pb(a) for a in s.get("approvers", [])],
                required=s.get("required") or 0,
                deadline_minutes=s.get("deadline_minutes") or 0,
            )
            for s in body.get("stages", [])
        ],
        conditions=[
            A.Condition(
                kind=CONDITION_VALUES[c["kind"]],
                values=c.get("values", []),
                count=c.get("count") or 0,
            )
            for c in body.get("conditions", [])
        ],
        skip=[_approver_pb(a) for a in body.get("skip", [])],
        allow_self_approval=body.get("allow_self_approval", False),
        version=body.get("version") or 0,
    )


def flag(f: approval_pb2.OperatorFlag) -> dict[str, Any]:
    return {
        "operator_id": f.operator_id,
        "until": iso(f.until),
        "set_by": operator(f.set_by) if f.set_by.id else None,
    }


# -- live --------------------------------------------------------------------------------


def decider(caller: Caller) -> Decider:
    """The caller as the approval service's stage rules see them."""
    return Decider(
        caller.operator_id,
        caller.display_name,
        frozenset(caller.roles),
        caller.permissions,
        None if caller.all_inboxes else frozenset(caller.inbox_ids),
    )


def change(env: events_pb2.EventEnvelope) -> str:
    """`approval.requested` → `requested` (also approved, sent_back, cancelled, voided,
    sent, reminded)."""
    return env.type.split(".", 1)[1] if "." in env.type else env.type


def live_event(env: events_pb2.EventEnvelope) -> dict[str, Any]:
    """`approval.changed`, for every socket whose operator sees the request's inbox."""
    return {
        "type": "approval.changed",
        "event_id": env.event_id,
        "occurred_at": iso(env.occurred_at),
        "by": actor(env.actor),
        "change": change(env),
        "approval": approval(env.approval_changed.request, for_caller=False),
    }


# to the current stage's approvers: the request is theirs to decide (again)
_TO_APPROVERS = {"requested": "approval_requested", "reminded": "approval_reminder"}
# to the author: what became of their request. Not `sent`: a request is sent after a
# final approval the author was told of ("approved and sent"), or by the author's own
# send — one toast per decision.
_TO_AUTHOR = ("sent_back", "voided", "cancelled")


def notification(env: events_pb2.EventEnvelope, caller: Caller) -> dict[str, Any] | None:
    """The notification for this caller, if any: the approvers of the request's current
    stage when it is requested or reaches their stage, and when it is reminded (late)
    those of the next stage too; its author when it is
    finally approved, sent back (with the comment), voided or cancelled by someone
    else. Nobody is notified of their own action."""
    ch = env.approval_changed
    req = ch.request
    if not req.id or caller.operator_id == env.actor.id:
        return None
    what = change(env)
    kind = ""
    facts, decisions = facts_of_pb(req)
    if what in _TO_APPROVERS or (what == "approved" and not ch.final):
        who = decider(caller)
        # a late stage's reminder goes to the next stage's approvers too (issue 17)
        ahead = [replace(facts, stage=facts.stage + 1)] if what == "reminded" else []
        if any(may_decide(f, decisions, who) for f in [facts, *ahead]):
            kind = _TO_APPROVERS.get(what, "approval_requested")
    elif caller.operator_id == req.author.id and (
        what in _TO_AUTHOR or (what == "approved" and ch.final)
    ):
        kind = "approval_decided"
    if not kind:
        return None
    return {
        "type": "notification",
        "kind": kind,
        "change": what,
        "event_id": env.event_id,
        "occurred_at": iso(env.occurred_at),
        "by": actor(env.actor),
        "approval": approval(req, for_caller=False),
    }
