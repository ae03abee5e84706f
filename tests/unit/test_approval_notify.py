"""Who may decide a request now (issue 17), asked the same way by the approval service
(its queue, a request's `caller_may_decide`) and by the gateway (whom a live push
notifies): `stages.may_decide`, the request carried by an `approval.*` event read back
into the rules' facts, and the notifications the gateway picks for each socket."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from switchboard.v1 import events_pb2

from gateway.auth import Caller
from gateway.views_approval import notification
from services.approval.convert import changed_pb, facts_of_pb, request_pb
from services.approval.policy import Approver, ApproverKind, Stage
from services.approval.records import Decision, Request
from services.approval.stages import Decider, PastDecision, State, Verdict, may_decide

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TEAM = Stage("Team", (Approver(ApproverKind.INBOX_MEMBERS),))
LEADS = Stage("Leads", (Approver(ApproverKind.ROLE, "lead"),), 2, 30)
APPROVE = frozenset({"approve"})


def request(stage: int = 0, state: State = State.PENDING, self_ok: bool = False) -> Request:
    return Request(
        id="req-1",
        draft_id="draft-1",
        revision=4,
        content_hash="h",
        ticket_id="",
        inbox_id="inbox-1",
        author_id="op-author",
        author_name="Author",
        subject="Your order",
        policy_id="",
        stages=(TEAM, LEADS),
        allow_self_approval=self_ok,
        state=state,
        stage=stage,
        note="",
        send_at=None,
        status_after=0,
        requested_at=T0,
        stage_started_at=T0,
        finished_at=None,
        finished_by="",
        finished_by_name="",
        submitted_revision=3,
    )


def decider(
    op: str, *roles: str, perms: frozenset[str] = APPROVE, inboxes: object = None
) -> Decider:
    return Decider(op, op, frozenset(roles), perms, inboxes)  # type: ignore[arg-type]


def test_who_may_decide_the_current_stage_now() -> None:
    r = request().facts()
    assert may_decide(r, [], decider("op-a"))
    assert not may_decide(r, [], decider("op-a", perms=frozenset()))  # no `approve`
    assert not may_decide(r, [], decider("op-a", inboxes=frozenset({"inbox-2"})))
    assert not may_decide(r, [], decider("op-author"))  # self-approval forbidden
    assert may_decide(request(self_ok=True).facts(), [], decider("op-author"))
    leads = request(stage=1).facts()
    assert not may_decide(leads, [], decider("op-a"))  # not a lead
    assert may_decide(leads, [], decider("op-l", "lead"))
    one = [PastDecision(1, "op-l", "L", Verdict.APPROVE, T0)]
    assert not may_decide(leads, one, decider("op-l", "lead"))  # decided this stage already
    assert may_decide(leads, one, decider("op-m", "lead"))  # the second of two needed
    for state in (State.APPROVED, State.SENT_BACK, State.CANCELLED, State.VOIDED, State.SENT):
        assert not may_decide(request(state=state).facts(), [], decider("op-a"))


@given(
    stage=st.integers(0, 1),
    state=st.sampled_from(list(State)),
    self_ok=st.booleans(),
    decided=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["op-a", "op-l", "op-m"]))),
)
def test_a_request_read_back_from_its_message_is_judged_the_same(
    stage: int, state: State, self_ok: bool, decided: list[tuple[int, str]]
) -> None:
    r = request(stage, state, self_ok)
    decisions = [
        Decision(s, op, op, Verdict.APPROVE, "", 4, T0 + timedelta(minutes=i))
        for i, (s, op) in enumerate(decided)
    ]
    facts, past = facts_of_pb(request_pb(r, decisions, T0))
    assert facts == r.facts()
    assert past == [d.past() for d in decisions]
    for who in (decider("op-a"), decider("op-l", "lead"), decider("op-author", "lead")):
        assert may_decide(facts, past, who) == may_decide(r.facts(), past, who)


def caller(op: str, *roles: str, perms: frozenset[str] = APPROVE) -> Caller:
    return Caller("tenant-1", op, op, op, roles, perms, ("inbox-1",))


def event(
    etype: str, r: Request, by: str, decisions: list[Decision], **kw: object
) -> events_pb2.EventEnvelope:
    env = events_pb2.EventEnvelope(type=etype, event_id="ev-1")
    env.actor.id = by
    env.approval_changed.CopyFrom(changed_pb(r, decisions=decisions, now=T0, **kw))  # type: ignore[arg-type]
    return env


def kinds(env: events_pb2.EventEnvelope, *callers: Caller) -> list[str | None]:
    return [(n or {}).get("kind") for n in (notification(env, c) for c in callers)]


def test_notifications_go_to_the_current_stage_s_approvers_and_to_the_author() -> None:
    member, lead, author = caller("op-a"), caller("op-l", "lead"), caller("op-author")
    requested = event("approval.requested", request(), "op-author", [])
    assert kinds(requested, member, lead, author) == ["approval_requested"] * 2 + [None]

    # stage 1 approved by the member: the leads are asked, the author not yet told
    moved = replace(request(), stage=1)
    first = [Decision(0, "op-a", "A", Verdict.APPROVE, "", 4, T0)]
    approved = event("approval.approved", moved, "op-a", first, approver=("op-a", "A"), stage=0)
    assert kinds(approved, member, lead, author) == [None, "approval_requested", None]
    reminded = event("approval.reminded", moved, "", first)
    assert kinds(reminded, member, lead, author) == [None, "approval_reminder", None]
    # a late first stage reminds its approvers and the next stage's
    first_a = Stage("A only", (Approver(ApproverKind.OPERATOR, "op-a"),))
    late = event("approval.reminded", replace(request(), stages=(first_a, LEADS)), "", [])
    other = caller("op-z")
    assert kinds(late, member, lead, other, author) == ["approval_reminder"] * 2 + [None] * 2

    final = replace(moved, state=State.APPROVED)
    done = event("approval.approved", final, "op-l", first, final=True, stage=1)
    assert kinds(done, member, lead, author) == [None, None, "approval_decided"]
    # handed to outbound by the approver: the author was told at the decision, not again
    gone = event("approval.sent", replace(final, state=State.SENT), "op-l", first)
    assert kinds(gone, member, lead, author) == [None, None, None]
    back = replace(request(), state=State.SENT_BACK)
    comment = [Decision(0, "op-a", "A", Verdict.SEND_BACK, "敬語で", 4, T0)]
    sent_back = notification(event("approval.sent_back", back, "op-a", comment), author)
    assert sent_back is not None and sent_back["change"] == "sent_back"
    assert sent_back["approval"]["decisions"][0]["comment"] == "敬語で"
    assert "can_decide" not in sent_back["approval"]
    # nobody is told of their own action: the author cancelling
    cancelled = event(
        "approval.cancelled", replace(request(), state=State.CANCELLED), "op-author", []
    )
    assert kinds(cancelled, member, author) == [None, None]
