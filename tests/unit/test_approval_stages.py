"""Stage decisions (issue 17): any-of and N-of approvers, three stages in order,
self-approval, send-back comments, and refusals that name who decided first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.approval.policy import Approver, ApproverKind, Stage
from services.approval.stages import (
    Decider,
    Outcome,
    PastDecision,
    RequestFacts,
    State,
    Verdict,
    decide,
    is_late,
    may_cancel,
)
from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
APPROVE_PERMS = frozenset({"approve", "send_without_approval"})
MEMBERS = Stage("Team", (Approver(ApproverKind.INBOX_MEMBERS),))
LEADS = Stage("Leads", (Approver(ApproverKind.ROLE, "supervisor"),))
MANAGER = Stage("Manager", (Approver(ApproverKind.OPERATOR, "op-boss"),), 1, 30)


def who(
    op: str, *roles: str, perms: frozenset[str] = APPROVE_PERMS, inboxes: object = None
) -> Decider:
    return Decider(op, op.upper(), frozenset(roles), perms, inboxes)  # type: ignore[arg-type]


def req(
    *stages: Stage, stage: int = 0, state: State = State.PENDING, self_ok: bool = False
) -> RequestFacts:
    return RequestFacts(state, stage, stages, "op-author", "inbox-1", self_ok)


def past(stage: int, op: str, verdict: Verdict = Verdict.APPROVE, minutes: int = 1) -> PastDecision:
    return PastDecision(stage, op, op.upper(), verdict, T0 + timedelta(minutes=minutes))


def test_three_stages_advance_in_order_with_any_one_approver_each() -> None:
    r = req(MEMBERS, LEADS, MANAGER)
    assert decide(r, [], who("op-a"), Verdict.APPROVE, "", 0) is Outcome.NEXT_STAGE
    r2 = req(MEMBERS, LEADS, MANAGER, stage=1)
    done = [past(0, "op-a")]
    assert decide(r2, done, who("op-s", "supervisor"), Verdict.APPROVE, "", 1) is Outcome.NEXT_STAGE
    r3 = req(MEMBERS, LEADS, MANAGER, stage=2)
    done.append(past(1, "op-s"))
    assert decide(r3, done, who("op-boss"), Verdict.APPROVE_AND_SEND, "", 2) is Outcome.FINAL


def test_only_the_current_stage_s_approvers_holding_approve_decide() -> None:
    r = req(MEMBERS, LEADS, stage=1)
    with pytest.raises(PermissionDenied):
        decide(r, [past(0, "op-a")], who("op-b"), Verdict.APPROVE, "", 1)  # not a supervisor
    with pytest.raises(PermissionDenied):
        decide(
            r,
            [past(0, "op-a")],
            who("op-s", "supervisor", perms=frozenset()),
            Verdict.APPROVE,
            "",
            1,
        )
    outsider = who("op-x", inboxes=frozenset({"inbox-2"}))
    with pytest.raises(PermissionDenied):
        decide(req(MEMBERS), [], outsider, Verdict.APPROVE, "", 0)


def test_self_approval_is_refused_unless_the_policy_allows_it() -> None:
    with pytest.raises(PermissionDenied, match="your own"):
        decide(req(MEMBERS), [], who("op-author"), Verdict.APPROVE, "", 0)
    assert decide(req(MEMBERS, self_ok=True), [], who("op-author"), Verdict.APPROVE, "", 0) is (
        Outcome.FINAL
    )


def test_send_back_needs_a_comment_and_approve_and_send_only_ends_the_last_stage() -> None:
    with pytest.raises(InvalidArgument) as err:
        decide(req(MEMBERS), [], who("op-a"), Verdict.SEND_BACK, "  ", 0)
    assert err.value.field == "comment"
    assert decide(req(MEMBERS), [], who("op-a"), Verdict.SEND_BACK, "敬語を直して", 0) is (
        Outcome.SENT_BACK
    )
    with pytest.raises(FailedPrecondition) as err2:
        decide(req(MEMBERS, LEADS), [], who("op-a"), Verdict.APPROVE_AND_SEND, "", 0)
    assert err2.value.field == "verdict"


def test_n_of_waits_for_enough_distinct_approvers() -> None:
    two = Stage("Two", (Approver(ApproverKind.INBOX_MEMBERS),), 2)
    r = req(two)
    assert decide(r, [], who("op-a"), Verdict.APPROVE, "", 0) is Outcome.WAITING
    with pytest.raises(FailedPrecondition, match="you already decided"):
        decide(r, [past(0, "op-a")], who("op-a"), Verdict.APPROVE, "", 0)
    assert (
        decide(r, [past(0, "op-a")], who("op-b"), Verdict.APPROVE_AND_SEND, "", 0) is Outcome.FINAL
    )


def test_the_loser_of_a_race_is_told_who_decided() -> None:
    # the winner moved the stage on: the loser saw stage 0
    r = req(MEMBERS, LEADS, stage=1)
    with pytest.raises(FailedPrecondition, match="OP-A at 2026-12-01T09:01"):
        decide(r, [past(0, "op-a")], who("op-b"), Verdict.APPROVE, "", 0)
    # the winner approved finally, or sent back
    final = RequestFacts(State.APPROVED, 0, (MEMBERS,), "op-author", "inbox-1", False)
    with pytest.raises(FailedPrecondition, match="already approved by OP-A"):
        decide(final, [past(0, "op-a")], who("op-b"), Verdict.APPROVE, "", 0)
    back = RequestFacts(State.SENT_BACK, 0, (MEMBERS,), "op-author", "inbox-1", False)
    with pytest.raises(FailedPrecondition, match="sent back by OP-A"):
        decide(back, [past(0, "op-a", Verdict.SEND_BACK)], who("op-b"), Verdict.SEND_BACK, "no", 0)
    gone = RequestFacts(State.CANCELLED, 0, (MEMBERS,), "op-author", "inbox-1", False, "Author", T0)
    with pytest.raises(FailedPrecondition, match="cancelled by Author"):
        decide(gone, [], who("op-b"), Verdict.APPROVE, "", 0)


def test_a_stage_is_late_after_its_deadline_and_never_without_one() -> None:
    assert not is_late(MANAGER, T0, T0 + timedelta(minutes=30))
    assert is_late(MANAGER, T0, T0 + timedelta(minutes=31))
    assert not is_late(MEMBERS, T0, T0 + timedelta(days=300))


def test_the_author_or_a_lock_taker_cancels() -> None:
    r = req(MEMBERS)
    assert may_cancel(r, who("op-author", perms=frozenset()))
    assert may_cancel(r, who("op-s", perms=frozenset({"take_over_locks"})))
    assert not may_cancel(r, who("op-a"))


@given(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_approvals_reach_final_after_exactly_the_required_decisions(
    n_stages: int, required: list[int]
) -> None:
    stages = tuple(
        Stage(f"S{i}", (Approver(ApproverKind.INBOX_MEMBERS),), required[i])
        for i in range(n_stages)
    )
    decisions: list[PastDecision] = []
    stage, outcome, count = 0, Outcome.WAITING, 0
    while outcome is not Outcome.FINAL:
        op = f"op-{count}"
        outcome = decide(req(*stages, stage=stage), decisions, who(op), Verdict.APPROVE, "", stage)
        decisions.append(past(stage, op, minutes=count))
        count += 1
        if outcome is Outcome.NEXT_STAGE:
            stage += 1
    assert count == sum(required[:n_stages])
    assert stage == n_stages - 1
