"""What reporting keeps of a ticket for the live figures (RPT-5, RPT-7), and how the
figures fold — free of I/O.

Each ticket event becomes a `TicketChange`: the ticket's state as the event's summary
shows it (status, inbox, assignee, versioned by the ticket's updated_at: an older state
never overwrites a newer one), and what it says of the conversation: a customer message
(anything but a mail we sent) that may start a wait, or an answer — a mail we sent (not
an automatic reply: `Auto-Submitted`), or the ticket closed — that ends every wait begun
before it. The wait of a ticket starts at
its oldest customer message after its latest answer, so events may come in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import events_pb2

from services.runtime import events
from services.runtime.errors import Poison
from services.runtime.ticket_names import STATUS_NAMES

SENT = "sent"  # the channel of a mail we sent
MERGED = "merged"
OPEN = "open"
PENDING = "pending"
ACTIVE = (OPEN, PENDING)  # the statuses the live figures count
CLOSED = frozenset({"resolved", "no_action", "trash", MERGED})


@dataclass(frozen=True, slots=True)
class TicketChange:
    ticket_id: str
    inbox_id: str
    status: str
    assignee_id: str | None
    version: datetime  # the ticket's updated_at
    customer_message: tuple[str, datetime] | None = None  # (message id, when)
    answered_at: datetime | None = None  # a reply of ours, or the closing, at this time
    sla_due_at: datetime | None = None  # routing's soonest due time, as tickets keeps it


def _at(ts: Timestamp, default: datetime) -> datetime:
    if ts.seconds == 0 and ts.nanos == 0:
        return default
    return ts.ToDatetime(tzinfo=UTC)


def change_of(env: events_pb2.EventEnvelope) -> TicketChange:
    """The change a ticket event tells (ticket.created / updated / assigned /
    message_added); Poison for anything else or a summary without an id."""
    field = env.WhichOneof("payload")
    occurred = env.occurred_at.ToDatetime(tzinfo=UTC)
    customer: tuple[str, datetime] | None = None
    answered: datetime | None = None
    if field == events.TICKET_CREATED.payload_field:
        created = events.payload_of(env, events.TICKET_CREATED)
        summary = created.ticket
        arrived = _at(summary.received_at, occurred)
        if created.channel == SENT:
            answered = arrived  # a ticket we started: nobody waits for our reply
        else:
            customer = (created.message_id or summary.id, arrived)
    elif field == events.TICKET_MESSAGE_ADDED.payload_field:
        added = events.payload_of(env, events.TICKET_MESSAGE_ADDED)
        summary = added.ticket
        if added.channel == SENT:
            if not added.mail.auto_submitted:  # an automatic reply answers nobody
                answered = occurred
        else:
            customer = (added.message_id, occurred)
    elif field == events.TICKET_UPDATED.payload_field:
        summary = events.payload_of(env, events.TICKET_UPDATED).ticket
    elif field == events.TICKET_ASSIGNED.payload_field:
        summary = events.payload_of(env, events.TICKET_ASSIGNED).ticket
    else:
        raise Poison(f"reporting's live rows do not follow {env.type!r}")
    if not summary.id or not summary.inbox.id:
        raise Poison(f"{env.type} without a ticket id or inbox")
    status = MERGED if summary.merged_into else STATUS_NAMES.get(summary.status, OPEN)
    version = _at(summary.updated_at, occurred)
    if status in CLOSED:
        answered = max(answered or version, version)
    assignee = summary.assignee.id if summary.HasField("assignee") else ""
    return TicketChange(
        ticket_id=summary.id,
        inbox_id=summary.inbox.id,
        status=status,
        assignee_id=assignee or None,
        version=version,
        customer_message=customer,
        answered_at=answered,
        sla_due_at=summary.sla_due_at.ToDatetime(tzinfo=UTC)
        if summary.HasField("sla_due_at")
        else None,
    )


# -- the queue's late levels ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Threshold:
    after_minutes: int
    color: str


@dataclass(frozen=True, slots=True)
class Late:
    level: int  # 1-based
    after_minutes: int
    color: str
    count: int


def level_of(thresholds: Sequence[Threshold], waited_minutes: int) -> int:
    """The highest threshold (1-based) a wait of whole minutes reached; 0 for none (the
    same rule as the ticket list's elapsed colour, TKT-14)."""
    level = 0
    for i, t in enumerate(thresholds, start=1):
        if waited_minutes >= t.after_minutes:
            level = i
    return level


def late_levels(thresholds: Sequence[Threshold], waits: Iterable[tuple[int, int]]) -> list[Late]:
    """One entry per threshold: how many waiting tickets reached it as their highest.
    `waits`: (whole minutes waited, how many tickets waited that long)."""
    counts = [0] * (len(thresholds) + 1)
    for minutes, n in waits:
        counts[level_of(thresholds, minutes)] += n
    return [Late(i, t.after_minutes, t.color, counts[i]) for i, t in enumerate(thresholds, start=1)]


# -- assignment ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    inbox_id: str
    operator_id: str  # "" unassigned
    open: int
    pending: int


def name_of(operator_id: str, names: Mapping[str, str]) -> str:
    """An assignee's name; their id when accounts no longer knows them."""
    return names.get(operator_id) or operator_id
