"""Drafts awaiting approval (issue 17), without I/O: who may write a draft in each state,
holding a draft for an approval request and releasing it, and what each `approval.*`
event does to a draft.

A draft is `in_approval` from the moment approval holds it for a request (before the
request is committed) until the request is sent back, cancelled, voided or finally
approved. Meanwhile its author may not save, upload to, discard or send it; an
approver may edit it (a ticket's draft while holding the ticket's reply lock, like any
reply). A final approval opens it again whether or not it is sent for the author
(`approve_and_send`): outbound submits exactly the approved revision from `open` or from
`in_approval` (→ `submitted`), whichever it finds first — the release and outbound's
hand-over race — and when outbound cannot send it (a blocking check, no route), the
author finds it open and may send the approved revision themselves. An edit in between
makes a new revision, which voids the approval (nothing is sent). The draft remembers
the request it is, or was last, held for (`approval_request_id`): an event about any
other request changes nothing, and request ids are UUIDv7 (time-ordered), so a late
`requested` of an older request cannot hold the draft again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from services.runtime import permissions
from services.runtime.errors import FailedPrecondition, PermissionDenied

OPEN = "open"
IN_APPROVAL = "in_approval"
SUBMITTED = "submitted"

# the events that end a request and so release its draft (a final `approved` too)
ENDING = frozenset({"approval.sent_back", "approval.cancelled", "approval.voided"})


def check_write(state: str, *, is_author: bool, granted: Iterable[str]) -> None:
    """Whether a draft in `state` may be changed (saved, uploaded to) by this caller at
    all; the fence or authorship rule of its kind applies on top."""
    if state == OPEN:
        return
    if state != IN_APPROVAL:
        raise FailedPrecondition(f"the draft is {state}", field="draft_id")
    if is_author:
        raise FailedPrecondition(
            "the draft is awaiting approval: cancel the request to change it",
            field="draft_id",
        )
    if permissions.APPROVE not in set(granted):
        raise PermissionDenied(
            "the draft is awaiting approval: only an approver (permission approve) changes it"
        )


def check_discard(state: str) -> None:
    if state == IN_APPROVAL:
        raise FailedPrecondition(
            "the draft is awaiting approval: cancel the request before discarding it",
            field="draft_id",
        )
    if state != OPEN:
        raise FailedPrecondition(f"the draft is {state}", field="draft_id")


def may_hold(
    state: str,
    held: uuid.UUID | None,
    request_id: uuid.UUID,
    replaces: uuid.UUID | None,
    *,
    revision: int,
    current: int,
) -> bool:
    """Whether holding the draft for `request_id` changes it (False: held for it
    already); refused when it cannot be held."""
    if state == IN_APPROVAL and held == request_id:
        return False
    if state == IN_APPROVAL and (replaces is None or held != replaces):
        raise FailedPrecondition("the draft is awaiting approval already", field="draft_id")
    if state not in (OPEN, IN_APPROVAL):
        raise FailedPrecondition(f"the draft is {state}", field="draft_id")
    if revision != current:
        raise FailedPrecondition(
            f"the draft was saved meanwhile (revision {current}, not {revision}): look at it "
            "again before requesting approval",
            field="revision",
        )
    return True


def check_release(*, is_author: bool, granted: Iterable[str]) -> None:
    """Releasing a draft from approval: its author (cancelling), an approver (sending it
    back or approving it) or a supervisor (cancelling someone's request)."""
    if is_author or {permissions.APPROVE, permissions.TAKE_OVER_LOCKS} & set(granted):
        return
    raise PermissionDenied("only its author, an approver or a supervisor releases this draft")


def releases(state: str, held: uuid.UUID | None, request_id: uuid.UUID) -> bool:
    """Whether ending `request_id` opens the draft again."""
    return state == IN_APPROVAL and held == request_id


def after_event(
    event_type: str,
    *,
    final: bool,
    state: str,
    held: uuid.UUID | None,
    request_id: uuid.UUID,
) -> str | None:
    """The draft's new state after an `approval.*` event, or None when it changes
    nothing (a redelivery, an older request, a decision that is not the last, an event
    of another kind)."""
    if event_type == "approval.requested":
        if state == OPEN and (held is None or request_id > held):
            return IN_APPROVAL
        return None
    ending = event_type in ENDING or (event_type == "approval.approved" and final)
    if ending and releases(state, held, request_id):
        return OPEN
    return None
