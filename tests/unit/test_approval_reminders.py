"""approval.reminded's payload: whom a late stage reminds — its approvers and the next
stage's (none after the last) — with the deadline and when the stage started."""

from __future__ import annotations

from datetime import UTC, datetime

from services.approval.policy import Approver, ApproverKind, Stage
from services.approval.records import Request
from services.approval.reminders import reminded_pb
from services.approval.stages import State

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STAGES = (
    Stage("first", (Approver(ApproverKind.OPERATOR, "op-1"),), deadline_minutes=30),
    Stage(
        "second", (Approver(ApproverKind.ROLE, "supervisor"), Approver(ApproverKind.INBOX_MEMBERS))
    ),
)


def request(stage: int) -> Request:
    return Request(
        id="r1",
        draft_id="d1",
        revision=2,
        submitted_revision=2,
        content_hash="ab",
        ticket_id="",
        inbox_id="i1",
        author_id="a1",
        author_name="Trainee",
        subject="Hello",
        policy_id="",
        stages=STAGES,
        allow_self_approval=False,
        state=State.PENDING,
        stage=stage,
        note="",
        send_at=None,
        status_after=0,
        requested_at=T0,
        stage_started_at=T0,
        finished_at=None,
        finished_by="",
        finished_by_name="",
    )


def test_a_late_stage_names_its_approvers_and_the_next_stage_s() -> None:
    p = reminded_pb(request(0))
    assert (p.request_id, p.stage, p.stage_count, p.deadline_minutes) == ("r1", 0, 2, 30)
    assert [(a.kind, a.id) for a in p.approvers] == [("operator", "op-1")]
    assert [(a.kind, a.id) for a in p.next_approvers] == [
        ("role", "supervisor"),
        ("inbox_members", ""),
    ]
    assert p.stage_started_at.ToDatetime(tzinfo=UTC) == T0 and p.author.id == "a1"


def test_the_last_stage_has_no_next_approvers() -> None:
    p = reminded_pb(request(1))
    assert p.stage == 1 and not p.next_approvers and len(p.approvers) == 2
