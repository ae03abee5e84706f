"""What an `approval.*` event means to a ticket (issue 17), without I/O: whether its
request is pending afterwards (the `awaiting_approval` view) and the entry it leaves in
the ticket's audit trail (the timeline): requested with the handover note, a stage
approved, sent back with the comment, cancelled, voided with the reason. `approval.sent`
leaves none: outbound's `send.changed` records the send itself."""

from __future__ import annotations

from switchboard.v1 import events_pb2

from .domain import Change

REQUESTED = "approval.requested"
APPROVED = "approval.approved"
# the ends of a request (a final approval too)
ENDED = frozenset({"approval.sent_back", "approval.cancelled", "approval.voided", "approval.sent"})
# the timeline's entries besides `requested` and `approved`
ENTRIES = frozenset({"approval.sent_back", "approval.cancelled", "approval.voided"})


def pending_after(event_type: str, change: events_pb2.ApprovalChanged) -> bool | None:
    """True when the request is pending after this event, False when it has ended, None
    when the event does not change that (a stage approved, not the last; another kind)."""
    if event_type == REQUESTED:
        return True
    if event_type in ENDED or (event_type == APPROVED and change.final):
        return False
    return None


def audit_of(
    event_type: str, change: events_pb2.ApprovalChanged
) -> tuple[str, list[Change], str] | None:
    """The audit row's action, changes and note for the event, or None."""
    if event_type == REQUESTED:
        return event_type, [Change("approval", "", "pending")], change.note
    stage = f"{change.stage + 1}/{max(change.stage_count, 1)}"
    if event_type == APPROVED:
        state = "approved" if change.final else "pending"
        return (
            event_type,
            [Change("stage", "", stage), Change("approval", "pending", state)],
            (change.comment),
        )
    if event_type not in ENTRIES:
        return None
    ended = event_type.removeprefix("approval.")
    was = "approved" if event_type == "approval.voided" else "pending"
    note = change.reason if event_type == "approval.voided" else change.comment
    return event_type, [Change("approval", was, ended)], note
