"""Facts from events (issue 19 §1), free of I/O: which event makes which fact, with which
operator, dimensions and durations, and reporting's own small state of a ticket that a
later fact needs (the arrival, the customer message waiting for a reply, the open
resolution episode). The consumers (facts_intake.py) load the state, call these, store
what they return — all in one transaction.

A duration is both wall seconds and business seconds of the inbox's calendar (`Hours`:
services/runtime/calendars.py); a fact happens at the event's `occurred_at`. The
definitions, metric by metric: docs/architecture.md "Reporting"."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from switchboard.v1 import common_pb2, events_pb2

ARRIVAL = "arrival"
RECEIVED = "received"
FIRST_REPLY = "first_reply"
REPLY = "reply"
RESOLUTION = "resolution"
REOPEN = "reopen"
SENT = "sent"
FORWARD = "forward"
APPROVAL_REQUEST = "approval_request"
APPROVAL_GIVEN = "approval_given"
SEND_BACK = "send_back"
SEND_BACK_GIVEN = "send_back_given"
TRANSFER = "transfer"
TRASH = "trash"
ASSIGNMENT = "assignment"
SLA_WARNING = "sla_warning"
SLA_BREACH = "sla_breach"
METRICS = (
    ARRIVAL,
    RECEIVED,
    FIRST_REPLY,
    REPLY,
    RESOLUTION,
    REOPEN,
    SENT,
    FORWARD,
    APPROVAL_REQUEST,
    APPROVAL_GIVEN,
    SEND_BACK,
    SEND_BACK_GIVEN,
    TRANSFER,
    TRASH,
    ASSIGNMENT,
    SLA_WARNING,
    SLA_BREACH,
)
# metrics whose facts carry a duration (the rest are counts)
TIMED = frozenset({FIRST_REPLY, REPLY, RESOLUTION, APPROVAL_GIVEN, SEND_BACK, SEND_BACK_GIVEN})

CLOSED = frozenset({"resolved", "no_action"})
LIVE = frozenset({"open", "pending"})
SENT_CHANNEL = "sent"


class Hours(Protocol):
    """A business-hours calendar (services/runtime/calendars.py Calendar or ALWAYS)."""

    def business_time_between(self, a: datetime, b: datetime) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class NewFact:
    tenant_id: str
    metric: str
    key: str  # unique per tenant and metric: the fact's identity
    at: datetime
    inbox_id: str
    ticket_id: str | None = None
    operator_id: str | None = None
    other_operator_id: str | None = None
    channel: str = ""
    category: str = ""
    priority: str = ""
    labels: tuple[str, ...] = ()
    wall_s: float | None = None
    business_s: float | None = None


@dataclass(frozen=True, slots=True)
class TicketState:
    ticket_id: str
    inbox_id: str
    channel: str
    category: str
    priority: str
    labels: tuple[str, ...]
    status: str
    assignee_id: str | None
    arrived_at: datetime
    first_reply_at: datetime | None
    waiting_since: datetime | None
    waiting_key: str
    episode: int
    episode_started_at: datetime
    episode_closed_at: datetime | None


def status_name(status: int) -> str:
    name = common_pb2.TicketStatus.Name(status)
    return name.removeprefix("TICKET_STATUS_").lower() if status else "open"


def priority_name(priority: int) -> str:
    return common_pb2.Priority.Name(priority).removeprefix("PRIORITY_").lower() if priority else ""


def _at(ts: object) -> datetime:
    assert hasattr(ts, "ToDatetime")
    at: datetime = ts.ToDatetime(tzinfo=UTC)
    return at


def occurred(env: events_pb2.EventEnvelope) -> datetime:
    return _at(env.occurred_at)


def operator_of(actor: common_pb2.Actor) -> str | None:
    return actor.id if actor.kind == common_pb2.Actor.KIND_OPERATOR and actor.id else None


def span(hours: Hours, a: datetime, b: datetime) -> tuple[float, float]:
    """(wall, business) seconds from `a` to `b` (never negative)."""
    wall = max((b - a).total_seconds(), 0.0)
    business = hours.business_time_between(a, b).total_seconds() if b > a else 0.0
    return wall, max(business, 0.0)


def _fact(
    tenant: str, metric: str, key: str, at: datetime, s: TicketState, **kw: object
) -> NewFact:
    fields: dict[str, object] = {
        "inbox_id": s.inbox_id,
        "ticket_id": s.ticket_id,
        "channel": s.channel,
        "category": s.category,
        "priority": s.priority,
        "labels": s.labels,
    }
    fields.update(kw)
    return NewFact(tenant, metric, key, at, **fields)  # type: ignore[arg-type]


def _dims(s: TicketState, t: events_pb2.TicketSummary) -> TicketState:
    """The state with the ticket's fields as the event shows them now."""
    return replace(
        s,
        inbox_id=t.inbox.id or s.inbox_id,
        category=t.category,
        priority=priority_name(t.priority),
        labels=tuple(t.labels),
        assignee_id=t.assignee.id or None,
    )


def fresh(t: events_pb2.TicketSummary, channel: str, at: datetime) -> TicketState:
    """The state of a ticket first seen now (created, or made before reporting knew it)."""
    arrived = _at(t.received_at) if t.HasField("received_at") else at
    return TicketState(
        ticket_id=t.id,
        inbox_id=t.inbox.id,
        channel=channel,
        category=t.category,
        priority=priority_name(t.priority),
        labels=tuple(t.labels),
        status=status_name(t.status),
        assignee_id=t.assignee.id or None,
        arrived_at=arrived,
        first_reply_at=None,
        waiting_since=None,
        waiting_key="",
        episode=1,
        episode_started_at=arrived,
        episode_closed_at=None,
    )


Derived = tuple[TicketState | None, list[NewFact]]


def on_created(tenant: str, env: events_pb2.EventEnvelope) -> Derived:
    """A new ticket: its arrival and first customer message — none for a ticket born in the
    trash (spam, blocked, infected), a split (no channel) or a mail of ours."""
    c = env.ticket_created
    at = occurred(env)
    s = fresh(c.ticket, c.channel, at)
    s = replace(s, arrived_at=at, episode_started_at=at)
    if s.status == "trash":
        return None, []
    if c.channel == SENT_CHANNEL:
        return replace(s, first_reply_at=at), []
    if not c.channel:
        return s, []
    s = replace(s, waiting_since=at, waiting_key=c.message_id)
    return s, [
        _fact(tenant, ARRIVAL, s.ticket_id, at, s),
        _fact(tenant, RECEIVED, c.message_id, at, s),
    ]


def _reopen(
    tenant: str, s: TicketState, at: datetime, by: str | None
) -> tuple[TicketState, list[NewFact]]:
    if s.episode_closed_at is None:
        return s, []
    s = replace(s, episode=s.episode + 1, episode_started_at=at, episode_closed_at=None)
    return s, [_fact(tenant, REOPEN, f"{s.ticket_id}:{s.episode}", at, s, operator_id=by)]


def on_message_added(
    tenant: str,
    env: events_pb2.EventEnvelope,
    state: TicketState | None,
    hours: Hours,
    replier: str | None,
) -> Derived:
    """A customer message waits for a reply (the oldest unanswered one counts); a mail of
    ours (channel `sent`) answers it — the reply time — and, the first time, is the
    ticket's first reply. `replier` is the send's author (else the assignee counts)."""
    m = env.ticket_message_added
    at = occurred(env)
    s = _dims(state or fresh(m.ticket, m.channel, at), m.ticket)
    facts: list[NewFact] = []
    if m.channel != SENT_CHANNEL:
        if m.reopened and s.episode_closed_at is not None:
            # a new episode: its reply time runs from this message
            s, facts = _reopen(tenant, s, at, None)
            s = replace(s, status="open", waiting_since=None)
        if s.waiting_since is None:
            s = replace(s, waiting_since=at, waiting_key=m.message_id)
        facts.append(_fact(tenant, RECEIVED, m.message_id, at, s, channel=m.channel or s.channel))
        return s, facts
    who = replier or s.assignee_id
    if s.first_reply_at is None:
        wall, business = span(hours, s.arrived_at, at)
        facts.append(
            _fact(
                tenant,
                FIRST_REPLY,
                s.ticket_id,
                at,
                s,
                operator_id=who,
                wall_s=wall,
                business_s=business,
            )
        )
        s = replace(s, first_reply_at=at)
    if s.waiting_since is not None:
        wall, business = span(hours, s.waiting_since, at)
        facts.append(
            _fact(
                tenant,
                REPLY,
                m.message_id,
                at,
                s,
                operator_id=who,
                wall_s=wall,
                business_s=business,
            )
        )
        s = replace(s, waiting_since=None, waiting_key="")
    return s, facts


def _change(u: events_pb2.TicketUpdated, name: str) -> events_pb2.FieldChange | None:
    for c in u.changes:
        if c.field == name:
            return c
    return None


def on_updated(
    tenant: str, env: events_pb2.EventEnvelope, state: TicketState | None, hours: Hours
) -> Derived:
    """Status changes make resolutions (one per episode), reopens (a new episode) and
    deletions; a transfer counts for the inbox it left; other fields only move the
    dimensions later facts carry."""
    u = env.ticket_updated
    at = occurred(env)
    by = operator_of(env.actor)
    before = state or fresh(u.ticket, "", at)
    s = _dims(before, u.ticket)
    facts: list[NewFact] = []
    if u.action == "transfer" and u.previous_inbox.id and u.previous_inbox.id != s.inbox_id:
        facts.append(
            _fact(
                tenant,
                TRANSFER,
                env.event_id,
                at,
                before,
                inbox_id=u.previous_inbox.id,
                operator_id=by,
            )
        )
    new_status = status_name(u.ticket.status)
    if new_status == s.status or _change(u, "status") is None:
        return replace(s, status=new_status), facts
    s = replace(s, status=new_status)
    if new_status == "trash":
        facts.append(_fact(tenant, TRASH, env.event_id, at, s, operator_id=by))
    elif new_status in CLOSED and s.episode_closed_at is None:
        if new_status == "resolved":
            wall, business = span(hours, s.episode_started_at, at)
            facts.append(
                _fact(
                    tenant,
                    RESOLUTION,
                    f"{s.ticket_id}:{s.episode}",
                    at,
                    s,
                    operator_id=by,
                    other_operator_id=s.assignee_id,
                    wall_s=wall,
                    business_s=business,
                )
            )
        # the waiting message stays: a reply sent with "resolve" is filed after this
        s = replace(s, episode_closed_at=at)
    elif new_status in LIVE:  # from resolved or no_action (also through the trash)
        s, reopened = _reopen(tenant, s, at, by)
        facts.extend(reopened)
    return s, facts


def on_assigned(tenant: str, env: events_pb2.EventEnvelope, state: TicketState | None) -> Derived:
    a = env.ticket_assigned
    at = occurred(env)
    s = _dims(state or fresh(a.ticket, "", at), a.ticket)
    if not a.assignee.id:
        return replace(s, assignee_id=None), []
    s = replace(s, assignee_id=a.assignee.id)
    return s, [
        _fact(
            tenant,
            ASSIGNMENT,
            env.event_id,
            at,
            s,
            operator_id=a.assignee.id,
            other_operator_id=operator_of(env.actor),
        )
    ]


def on_sent(
    tenant: str,
    env: events_pb2.EventEnvelope,
    author: str | None,
    ticket: TicketState | None,
    draft_kind: str = "",
) -> list[NewFact]:
    """A send that went out (state `sent`), counted for its author; its channel is the
    send's kind (reply, auto_reply, form_confirmation). A forward's is also a `forward`."""
    c = env.send_changed
    if c.state != "sent" or c.previous_state == "sent":
        return []
    at = occurred(env)
    fact = NewFact(
        tenant,
        SENT,
        c.send_id,
        at,
        c.inbox_id,
        ticket_id=c.ticket_id or None,
        operator_id=author,
        channel=c.kind,
    )
    if ticket is not None:
        fact = replace(
            fact, category=ticket.category, priority=ticket.priority, labels=ticket.labels
        )
    if draft_kind == "forward":
        return [fact, replace(fact, metric=FORWARD)]
    return [fact]


def on_approval(tenant: str, env: events_pb2.EventEnvelope, hours: Hours) -> list[NewFact]:
    """A request (for its author), each stage approved (for its approver), a send-back
    (for the author who received it, and for the approver who gave it); a decision's
    duration runs from the request."""
    a = env.approval_changed
    at = occurred(env)
    author = a.author.id or None
    approver = a.approver.id or None
    base = NewFact(tenant, "", "", at, a.inbox_id, ticket_id=a.ticket_id or None)
    if env.type == "approval.requested":
        return [replace(base, metric=APPROVAL_REQUEST, key=a.request_id, operator_id=author)]
    asked = _at(a.requested_at) if a.HasField("requested_at") else at
    wall, business = span(hours, asked, at)
    timed = replace(base, key=f"{a.request_id}:{a.stage}", wall_s=wall, business_s=business)
    if env.type == "approval.approved":
        return [
            replace(timed, metric=APPROVAL_GIVEN, operator_id=approver, other_operator_id=author)
        ]
    if env.type == "approval.sent_back":
        return [
            replace(timed, metric=SEND_BACK, operator_id=author, other_operator_id=approver),
            replace(timed, metric=SEND_BACK_GIVEN, operator_id=approver, other_operator_id=author),
        ]
    return []


def on_sla(tenant: str, env: events_pb2.EventEnvelope, ticket: TicketState | None) -> list[NewFact]:
    """An SLA warning or breach, counted for the ticket's assignee; channel = the target."""
    a = env.sla_alert
    metric = SLA_WARNING if env.type == "sla.warning" else SLA_BREACH
    key = f"{a.ticket_id}:{a.target}:{_at(a.started_at).isoformat()}"
    at = occurred(env)
    if ticket is not None:
        return [
            _fact(
                tenant,
                metric,
                key,
                at,
                ticket,
                inbox_id=a.inbox_id or ticket.inbox_id,
                operator_id=ticket.assignee_id,
                channel=a.target,
            )
        ]
    return [NewFact(tenant, metric, key, at, a.inbox_id, ticket_id=a.ticket_id, channel=a.target)]
