"""SLA policies and a ticket's due times (RTE-4), free of I/O.

A policy applies to a ticket when its inboxes, categories and priorities hold (an empty
list holds for any); the enabled policies are tried in position order. Its targets count
business time on a calendar (or around the clock) and stand still while the ticket is in
one of its pausing statuses (pending by default):

- first response: from the ticket's creation to the first operator reply;
- next response: from a customer message that finds nobody owing them an answer (after a
  reply, or after the ticket was closed) to the next operator reply;
- resolution: from creation until the ticket is closed (resolved, no action, trash,
  merged); a reopened ticket's clock runs on from where it stopped.

Closing a ticket also ends a response clock that is running. Due times are computed
from the ticket's history (`TicketFacts`), never from a counter, so a change anywhere in
the history gives the right answer again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from services.runtime.errors import InvalidArgument

MAX_MINUTES = 525_600  # a year
STATUSES = ("open", "pending", "resolved", "no_action", "trash")
CLOSED = frozenset({"resolved", "no_action", "trash", "merged"})
PAUSABLE = ("pending", "resolved", "no_action", "trash")
PRIORITIES = ("low", "normal", "high", "urgent")


class Kind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"
    NONE = "none"  # no policy applies


class Hours(Protocol):
    """Business time: a Calendar, or ALWAYS (around the clock)."""

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime: ...

    def business_time_between(self, a: datetime, b: datetime) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    name: str
    position: int
    enabled: bool
    inbox_ids: tuple[str, ...]
    categories: tuple[str, ...]
    priorities: tuple[str, ...]
    calendar_id: str  # "" = around the clock
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    pause_statuses: tuple[str, ...] = ("pending",)
    warn_before_minutes: int | None = None
    warn_at_percent: int | None = None

    def target(self, kind: Kind) -> int | None:
        return {
            Kind.FIRST_RESPONSE: self.first_response_minutes,
            Kind.NEXT_RESPONSE: self.next_response_minutes,
            Kind.RESOLUTION: self.resolution_minutes,
        }[kind]

    def applies_to(self, inbox_id: str, category: str, priority: str) -> bool:
        return (
            self.enabled
            and (not self.inbox_ids or inbox_id in self.inbox_ids)
            and (not self.categories or category in self.categories)
            and (not self.priorities or priority in self.priorities)
        )

    def warning_amount(self, target: timedelta) -> timedelta | None:
        """How much of `target` passes before the warning; None for no warning."""
        if self.warn_at_percent is not None:
            return target * self.warn_at_percent / 100
        if self.warn_before_minutes is not None:
            before = timedelta(minutes=self.warn_before_minutes)
            return target - before if before < target else None
        return None


def check_policy(p: Policy) -> None:
    """Refuses a policy that cannot be kept, naming the field (nothing is saved)."""
    if not p.name.strip() or len(p.name) > 100:
        raise InvalidArgument("a policy needs a name of 1–100 characters", field="name")
    if p.position < 0:
        raise InvalidArgument("position must be 1 or more", field="position")
    targets = (
        ("first_response_minutes", p.first_response_minutes),
        ("next_response_minutes", p.next_response_minutes),
        ("resolution_minutes", p.resolution_minutes),
    )
    for field, minutes in targets:
        if minutes is not None and not 1 <= minutes <= MAX_MINUTES:
            raise InvalidArgument(f"{field} must be 1–{MAX_MINUTES} minutes", field=field)
    if all(minutes is None for _, minutes in targets):
        raise InvalidArgument("a policy needs at least one target", field="first_response_minutes")
    for i, status in enumerate(p.pause_statuses):
        if status not in PAUSABLE:
            raise InvalidArgument(
                f"a pausing status is one of {', '.join(PAUSABLE)}", field=f"pause_statuses[{i}]"
            )
    for i, priority in enumerate(p.priorities):
        if priority not in PRIORITIES:
            raise InvalidArgument(
                f"a priority is one of {', '.join(PRIORITIES)}", field=f"priorities[{i}]"
            )
    for i, inbox in enumerate(p.inbox_ids):
        if not inbox.strip():
            raise InvalidArgument("an inbox id cannot be empty", field=f"inbox_ids[{i}]")
    if p.warn_before_minutes is not None and p.warn_at_percent is not None:
        raise InvalidArgument("warn before minutes or at a percent, not both", field="warning")
    if p.warn_before_minutes is not None and not 1 <= p.warn_before_minutes <= MAX_MINUTES:
        raise InvalidArgument(
            f"before_minutes must be 1–{MAX_MINUTES}", field="warning.before_minutes"
        )
    if p.warn_at_percent is not None and not 1 <= p.warn_at_percent <= 99:
        raise InvalidArgument("at_percent must be 1–99", field="warning.at_percent")


def select_policy(
    policies: Iterable[Policy], inbox_id: str, category: str, priority: str
) -> Policy | None:
    """The first policy, in position order, that applies."""
    for p in sorted(policies, key=lambda p: (p.position, p.id)):
        if p.applies_to(inbox_id, category, priority):
            return p
    return None


# -- a ticket's history -------------------------------------------------------------------


class Happened(StrEnum):
    STATUS = "status"  # the ticket's status became `status`
    CUSTOMER = "customer"  # a customer's message joined the ticket
    OPERATOR = "operator"  # an operator's reply was sent


@dataclass(frozen=True, slots=True)
class Happening:
    at: datetime
    what: Happened
    status: str = ""


@dataclass(frozen=True, slots=True)
class TicketFacts:
    created_at: datetime
    status: str  # its status at creation
    history: tuple[Happening, ...] = ()
    opened_by_operator: bool = False  # a ticket we started (nobody waits for a reply)


@dataclass(frozen=True, slots=True)
class TargetClock:
    kind: Kind
    state: State
    started_at: datetime
    due_at: datetime | None  # None while paused short of it
    warning_at: datetime | None
    met_at: datetime | None
    remaining: timedelta | None  # business time left, while paused


@dataclass(frozen=True, slots=True)
class TicketSla:
    policy_id: str
    state: State
    paused: bool
    next_due_at: datetime | None
    targets: tuple[TargetClock, ...]


NO_SLA = TicketSla("", State.NONE, False, None, ())


@dataclass(frozen=True, slots=True)
class Timer:
    """An event due: `which` is "warning" or "breach" of the clock of `kind` started at
    `started_at` (which tells one next-response cycle from the next)."""

    kind: Kind
    which: str
    started_at: datetime
    fire_at: datetime
    due_at: datetime


class _Timeline:
    """The ticket's statuses as segments [at, next at)."""

    def __init__(self, facts: TicketFacts) -> None:
        changes = [(facts.created_at, facts.status)]
        for h in sorted(facts.history, key=lambda h: h.at):
            if h.what is Happened.STATUS and h.status != changes[-1][1]:
                changes.append((max(h.at, facts.created_at), h.status))
        self.changes = changes

    @property
    def current(self) -> str:
        return self.changes[-1][1]

    def segments(self, start: datetime) -> Iterable[tuple[datetime, datetime | None, str]]:
        """(from, to or None for "still", status), from `start` on."""
        for i, (at, status) in enumerate(self.changes):
            end = self.changes[i + 1][0] if i + 1 < len(self.changes) else None
            if end is not None and end <= start:
                continue
            yield max(at, start), end, status


def _reach(
    hours: Hours, timeline: _Timeline, start: datetime, amount: timedelta, stops: frozenset[str]
) -> tuple[datetime | None, timedelta]:
    """The instant `amount` of running time has passed since `start`, counting business
    time outside the `stops` statuses; (None, what is left) when the ticket stands still
    now short of it."""
    left = amount
    for seg_start, seg_end, status in timeline.segments(start):
        if status in stops:
            if seg_end is None:
                return None, left
            continue
        if seg_end is None:
            return hours.add_business_time(seg_start, left), timedelta(0)
        run = hours.business_time_between(seg_start, seg_end)
        if run >= left:
            return hours.add_business_time(seg_start, left), timedelta(0)
        left -= run
    return None, left  # unreachable: the last segment has no end


def _clock(
    kind: Kind,
    policy: Policy,
    hours: Hours,
    timeline: _Timeline,
    started_at: datetime,
    met_at: datetime | None,
    now: datetime,
) -> TargetClock | None:
    minutes = policy.target(kind)
    if minutes is None:
        return None
    target = timedelta(minutes=minutes)
    stops = frozenset(policy.pause_statuses)
    if kind is Kind.RESOLUTION:
        stops |= CLOSED
    due, left = _reach(hours, timeline, started_at, target, stops)
    warn_amount = policy.warning_amount(target)
    warning_at = None
    if warn_amount is not None and due is not None:
        warning_at, _ = _reach(hours, timeline, started_at, warn_amount, stops)
    if met_at is not None:
        late = due is not None and met_at > due
        return TargetClock(
            kind, State.BREACHED if late else State.MET, started_at, due, warning_at, met_at, None
        )
    if due is None:
        return TargetClock(kind, State.PAUSED, started_at, None, None, None, left)
    if now >= due:
        state = State.BREACHED
    elif warning_at is not None and now >= warning_at:
        state = State.WARNING
    else:
        state = State.OK
    return TargetClock(kind, state, started_at, due, warning_at, None, None)


def compute(policy: Policy | None, hours: Hours, facts: TicketFacts, now: datetime) -> TicketSla:
    """The ticket's SLA under `policy` at `now`."""
    if policy is None:
        return NO_SLA
    timeline = _Timeline(facts)
    # the response cycles, walking the messages and closings in order
    waiting_since: datetime | None = None if facts.opened_by_operator else facts.created_at
    first: tuple[datetime, datetime | None] | None = (
        None if facts.opened_by_operator else (facts.created_at, None)
    )
    nxt: tuple[datetime, datetime | None] | None = None
    status = facts.status
    for h in sorted(facts.history, key=lambda h: h.at):
        ends = h.what is Happened.OPERATOR or (
            h.what is Happened.STATUS and h.status in CLOSED and status not in CLOSED
        )
        if h.what is Happened.STATUS:
            status = h.status
        if ends and waiting_since is not None:
            if first is not None and first[1] is None:
                first = (first[0], h.at)
            elif nxt is not None and nxt[1] is None:
                nxt = (nxt[0], h.at)
            waiting_since = None
        elif h.what is Happened.CUSTOMER and waiting_since is None:
            waiting_since = h.at
            nxt = (h.at, None)
    resolved_at = timeline.changes[-1][0] if timeline.current in CLOSED else None
    clocks: list[TargetClock] = []
    for kind, cycle in (
        (Kind.FIRST_RESPONSE, first),
        (Kind.NEXT_RESPONSE, nxt),
        (Kind.RESOLUTION, (facts.created_at, resolved_at)),
    ):
        if cycle is None:
            continue
        clock = _clock(kind, policy, hours, timeline, cycle[0], cycle[1], now)
        if clock is not None:
            clocks.append(clock)
    return _summary(policy.id, timeline.current in policy.pause_statuses, clocks)


def _summary(policy_id: str, paused: bool, clocks: Sequence[TargetClock]) -> TicketSla:
    running = [c for c in clocks if c.met_at is None]
    states = {c.state for c in running}
    state = State.MET
    for candidate in (State.BREACHED, State.WARNING, State.PAUSED, State.OK):
        if candidate in states:
            state = candidate
            break
    else:
        if any(c.state is State.BREACHED for c in clocks):
            state = State.BREACHED
        elif not clocks:
            state = State.NONE
    dues = [c.due_at for c in running if c.due_at is not None]
    return TicketSla(policy_id, state, paused, min(dues, default=None), tuple(clocks))


def timers(sla: TicketSla) -> list[Timer]:
    """The warning and breach events the SLA still owes (past ones too: they fire at
    once if they never fired)."""
    out: list[Timer] = []
    for c in sla.targets:
        if c.met_at is not None or c.due_at is None:
            continue
        if c.warning_at is not None:
            out.append(Timer(c.kind, "warning", c.started_at, c.warning_at, c.due_at))
        out.append(Timer(c.kind, "breach", c.started_at, c.due_at, c.due_at))
    return out
