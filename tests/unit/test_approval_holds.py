"""Issue 17's pure rules on the composition and tickets side: who may write a draft
awaiting approval, holding and releasing it, what each approval.* event does to a draft
(redelivered, late or about another request: nothing), and to a ticket's
awaiting_approval view and audit trail."""

from __future__ import annotations

import uuid

import pytest
from switchboard.v1 import events_pb2

from services.composition import holds
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.tickets import approval_rules

R1 = uuid.UUID("0191f000-0000-7000-8000-000000000001")
R2 = uuid.UUID("0191f000-0001-7000-8000-000000000001")  # later (UUIDv7: time-ordered)
APPROVER = {"approve", "send_without_approval"}


def test_an_open_draft_is_written_as_before() -> None:
    holds.check_write("open", is_author=True, granted=set())
    holds.check_write("open", is_author=False, granted=set())


def test_its_author_may_not_change_a_draft_awaiting_approval() -> None:
    with pytest.raises(FailedPrecondition, match="awaiting approval") as err:
        holds.check_write("in_approval", is_author=True, granted=APPROVER)
    assert err.value.field == "draft_id"


def test_only_an_approver_changes_someone_s_draft_awaiting_approval() -> None:
    holds.check_write("in_approval", is_author=False, granted=APPROVER)
    with pytest.raises(PermissionDenied, match="awaiting approval"):
        holds.check_write("in_approval", is_author=False, granted={"send_without_approval"})


@pytest.mark.parametrize("state", ["submitted", "sent", "discarded"])
def test_a_draft_gone_further_is_written_by_nobody(state: str) -> None:
    with pytest.raises(FailedPrecondition, match=state):
        holds.check_write(state, is_author=False, granted=APPROVER)


def test_a_draft_awaiting_approval_is_not_discarded() -> None:
    holds.check_discard("open")
    with pytest.raises(FailedPrecondition, match="cancel the request"):
        holds.check_discard("in_approval")


def test_holding_binds_the_revision_read_and_is_idempotent() -> None:
    assert holds.may_hold("open", None, R1, None, revision=3, current=3)
    assert holds.may_hold("open", R1, R2, None, revision=3, current=3)  # a new round
    with pytest.raises(FailedPrecondition) as moved:
        holds.may_hold("open", None, R1, None, revision=3, current=4)
    assert moved.value.field == "revision"
    assert not holds.may_hold("in_approval", R1, R1, None, revision=3, current=3)


def test_a_held_draft_is_held_again_only_in_place_of_the_request_named() -> None:
    with pytest.raises(FailedPrecondition, match="awaiting approval already"):
        holds.may_hold("in_approval", R1, R2, None, revision=3, current=3)
    with pytest.raises(FailedPrecondition, match="awaiting approval already"):
        holds.may_hold("in_approval", R1, R2, R2, revision=3, current=3)
    assert holds.may_hold("in_approval", R1, R2, R1, revision=3, current=3)
    with pytest.raises(FailedPrecondition, match="submitted"):
        holds.may_hold("submitted", R1, R2, R1, revision=3, current=3)


def test_its_author_an_approver_or_a_supervisor_releases_a_draft() -> None:
    holds.check_release(is_author=True, granted=set())
    holds.check_release(is_author=False, granted={"approve"})
    holds.check_release(is_author=False, granted={"take_over_locks"})
    with pytest.raises(PermissionDenied):
        holds.check_release(is_author=False, granted={"send_without_approval"})


def _after(
    etype: str,
    state: str,
    held: uuid.UUID | None,
    request: uuid.UUID = R1,
    *,
    final: bool = False,
) -> str | None:
    return holds.after_event(etype, final=final, state=state, held=held, request_id=request)


def test_a_request_holds_an_open_draft_once() -> None:
    assert _after("approval.requested", "open", None) == "in_approval"
    assert _after("approval.requested", "in_approval", R1) is None  # held already
    # held and released already (the event came late): not held again
    assert _after("approval.requested", "open", R1) is None
    # a late `requested` of an older round
    assert _after("approval.requested", "open", R2, R1) is None
    assert _after("approval.requested", "submitted", None) is None


@pytest.mark.parametrize("etype", ["approval.sent_back", "approval.cancelled", "approval.voided"])
def test_the_end_of_its_request_opens_the_draft_again(etype: str) -> None:
    assert _after(etype, "in_approval", R1) == "open"
    assert _after(etype, "open", R1) is None  # redelivered
    assert _after(etype, "in_approval", R2, R1) is None  # an older round's end


def test_a_final_approval_opens_it_again_and_other_events_change_nothing() -> None:
    # approve_and_send too: outbound submits it from open or in_approval, and when it
    # cannot, the author sends the approved revision themselves
    assert _after("approval.approved", "in_approval", R1, final=True) == "open"
    assert _after("approval.approved", "in_approval", R1) is None  # a stage, not the last
    assert _after("approval.sent", "in_approval", R1) is None
    assert _after("approval.reminded", "in_approval", R1) is None


def _change(**kw: object) -> events_pb2.ApprovalChanged:
    return events_pb2.ApprovalChanged(request_id=str(R1), ticket_id="t", stage_count=2, **kw)  # type: ignore[arg-type]


def test_a_ticket_awaits_approval_from_the_request_to_its_end() -> None:
    pending = approval_rules.pending_after
    assert pending("approval.requested", _change()) is True
    assert pending("approval.approved", _change(stage=0)) is None
    assert pending("approval.approved", _change(stage=1, final=True)) is False
    assert pending("approval.approved", _change(stage=1, final=True, send=True)) is False
    for etype in ("approval.sent_back", "approval.cancelled", "approval.voided", "approval.sent"):
        assert pending(etype, _change()) is False
    assert pending("approval.reminded", _change()) is None  # a kind it does not know


def test_the_timeline_names_each_step_with_its_note_or_comment() -> None:
    audit = approval_rules.audit_of
    action, changes, note = audit("approval.requested", _change(note="初めての返信です")) or (
        "",
        [],
        "",
    )
    assert (action, note) == ("approval.requested", "初めての返信です")
    assert [c.to_json() for c in changes] == [{"field": "approval", "old": "", "new": "pending"}]
    _, changes, _ = audit("approval.approved", _change(stage=0)) or ("", [], "")
    assert [c.to_json() for c in changes] == [
        {"field": "stage", "old": "", "new": "1/2"},
        {"field": "approval", "old": "pending", "new": "pending"},
    ]
    _, changes, _ = audit("approval.approved", _change(stage=1, final=True)) or ("", [], "")
    assert changes[-1].new == "approved"
    action, changes, note = audit("approval.sent_back", _change(comment="敬語を直して")) or (
        "",
        [],
        "",
    )
    assert (action, note, changes[0].new) == ("approval.sent_back", "敬語を直して", "sent_back")
    _, changes, note = audit("approval.voided", _change(reason="the draft changed")) or (
        "",
        [],
        "",
    )
    assert (changes[0].old, changes[0].new, note) == ("approved", "voided", "the draft changed")
    assert audit("approval.cancelled", _change()) is not None
    assert audit("approval.sent", _change()) is None
    assert audit("approval.reminded", _change()) is None
