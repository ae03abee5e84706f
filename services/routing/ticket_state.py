"""What routing keeps of a ticket for assignment, and how a change of it moves the
operators' load counters — free of I/O.

Routing learns tickets from tickets' events (and from the answers of tickets.AssignTicket)
and keeps one row per ticket. A ticket weighs on its assignee's load while it is open or
pending; a change of assignee, status, inbox or channel moves one unit from the old key
to the new (`load_moves`), so the counters follow the events instead of being counted per
decision. A state older than the row (`version`, the ticket's updated_at) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.v1 import common_pb2, events_pb2

from services.runtime.ticket_names import STATUS_NAMES, STRATEGY_FLAG

LOADED = frozenset({"open", "pending"})
MERGED = "merged"
DEFAULT_CHANNEL = "mail"


LoadKey = tuple[str, str, str]  # operator, inbox, channel


@dataclass(frozen=True, slots=True)
class TicketState:
    ticket_id: str
    inbox_id: str
    status: str
    assignee_id: str | None
    priority: int
    version: datetime
    channel: str = DEFAULT_CHANNEL
    handed: bool = False  # a rule handed it to the inbox's strategy
    # issue 18: what assignment matches and the score counts
    language: str = ""
    skills: tuple[tuple[str, int], ...] = ()  # (name, minimum level)
    customer_value: int = 0

    @property
    def waiting(self) -> bool:
        """Open and nobody's: the assigner may give it to someone."""
        return self.status == "open" and self.assignee_id is None

    @property
    def load_key(self) -> LoadKey | None:
        if self.assignee_id is None or self.status not in LOADED:
            return None
        return (self.assignee_id, self.inbox_id, self.channel)


def state_of(summary: events_pb2.TicketSummary, channel: str = "") -> TicketState:
    """A ticket's state from the summary its events (and tickets' answers) carry."""
    status = MERGED if summary.merged_into else STATUS_NAMES.get(summary.status, "open")
    return TicketState(
        ticket_id=summary.id,
        inbox_id=summary.inbox.id,
        status=status,
        assignee_id=summary.assignee.id or None if summary.HasField("assignee") else None,
        priority=summary.priority or common_pb2.PRIORITY_NORMAL,
        version=summary.updated_at.ToDatetime(tzinfo=UTC),
        channel=channel or DEFAULT_CHANNEL,
        handed=STRATEGY_FLAG in summary.flags,
        language=summary.language,
        skills=tuple((s.name, s.min_level) for s in summary.required_skills),
        customer_value=summary.customer_value,
    )


def load_moves(old: TicketState | None, new: TicketState) -> list[tuple[LoadKey, int]]:
    """The counter changes from `old` to `new`: (key, -1) and/or (key, +1)."""
    before = old.load_key if old is not None else None
    after = new.load_key
    if before == after:
        return []
    moves: list[tuple[LoadKey, int]] = []
    if before is not None:
        moves.append((before, -1))
    if after is not None:
        moves.append((after, 1))
    return moves


def frees_capacity(old: TicketState | None, new: TicketState) -> bool:
    """Whether the change lowers someone's load (the backlog may move)."""
    return any(delta < 0 for _, delta in load_moves(old, new))
