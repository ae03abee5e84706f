"""The event catalogue: streams, event types, subjects, and envelope construction.

Subjects are `sb.<domain>.<type>` (e.g. `sb.ingest.message.received`); the tenant travels
in the envelope, not the subject. One stream per producing domain. docs/events.md lists
every subject with its payload, producer and consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from switchboard.v1 import common_pb2, events_pb2

from .errors import InvalidArgument, Poison


@dataclass(frozen=True)
class Stream:
    name: str  # JetStream stream name, e.g. "INGEST"
    domain: str  # subject segment, e.g. "ingest"

    @property
    def subjects(self) -> list[str]:
        return [f"sb.{self.domain}.>"]


INGEST = Stream("INGEST", "ingest")
ROUTING = Stream("ROUTING", "routing")
TICKETS = Stream("TICKETS", "tickets")
COMPOSE = Stream("COMPOSE", "compose")
APPROVAL = Stream("APPROVAL", "approval")
OUTBOUND = Stream("OUTBOUND", "outbound")
ACCOUNTS = Stream("ACCOUNTS", "accounts")
GATEWAY = Stream("GATEWAY", "gateway")
DEADLETTER = Stream("DEADLETTER", "deadletter")
STREAMS = (INGEST, ROUTING, TICKETS, COMPOSE, APPROVAL, OUTBOUND, ACCOUNTS, GATEWAY, DEADLETTER)


@dataclass(frozen=True)
class EventType:
    name: str  # envelope `type`, e.g. "message.received"
    stream: Stream
    payload_field: str  # the envelope's oneof field carrying the payload

    @property
    def subject(self) -> str:
        return f"sb.{self.stream.domain}.{self.name}"


MESSAGE_RECEIVED = EventType("message.received", INGEST, "message_received")
MESSAGE_ROUTED = EventType("message.routed", ROUTING, "message_routed")
TICKET_CREATED = EventType("ticket.created", TICKETS, "ticket_created")
FORM_SUBMITTED = EventType("form.submitted", INGEST, "form_submitted")
TICKET_UPDATED = EventType("ticket.updated", TICKETS, "ticket_updated")
TICKET_ASSIGNED = EventType("ticket.assigned", TICKETS, "ticket_assigned")
TICKET_MESSAGE_ADDED = EventType("ticket.message_added", TICKETS, "ticket_message_added")
COMMENT_ADDED = EventType("comment.added", TICKETS, "comment_added")
CONTACT_CHANGED = EventType("contact.changed", TICKETS, "contact_changed")
LOCK_ACQUIRED = EventType("lock.acquired", TICKETS, "reply_lock")
LOCK_RENEWED = EventType("lock.renewed", TICKETS, "reply_lock")
LOCK_RELEASED = EventType("lock.released", TICKETS, "reply_lock")
LOCK_EXPIRED = EventType("lock.expired", TICKETS, "reply_lock")
LOCK_TAKEN_OVER = EventType("lock.taken_over", TICKETS, "reply_lock")
OPERATION_PERFORMED = EventType("operation.performed", GATEWAY, "operation_performed")
TEMPLATE_CHANGED = EventType("template.changed", COMPOSE, "template_changed")
DRAFT_CHANGED = EventType("draft.changed", COMPOSE, "draft_changed")
SEND_CHANGED = EventType("send.changed", OUTBOUND, "send_changed")
MESSAGE_SCANNED = EventType("message.scanned", INGEST, "message_scanned")
# issue 21 (ING-6): channel conversations — live transcript messages, deliveries, states
CHANNEL_MESSAGE = EventType("channel.message", INGEST, "channel_message")
CHANNEL_DELIVERY = EventType("channel.delivery", INGEST, "channel_delivery")
CHANNEL_CONVERSATION = EventType("channel.conversation", INGEST, "channel_conversation")
SESSION_ENDED = EventType("session.ended", ACCOUNTS, "session_ended")
ACCESS_CHANGED = EventType("access.changed", ACCOUNTS, "access_changed")
APPROVAL_REQUESTED = EventType("approval.requested", APPROVAL, "approval_changed")
APPROVAL_APPROVED = EventType("approval.approved", APPROVAL, "approval_changed")
APPROVAL_SENT_BACK = EventType("approval.sent_back", APPROVAL, "approval_changed")
APPROVAL_CANCELLED = EventType("approval.cancelled", APPROVAL, "approval_changed")
APPROVAL_VOIDED = EventType("approval.voided", APPROVAL, "approval_changed")
APPROVAL_SENT = EventType("approval.sent", APPROVAL, "approval_changed")
APPROVAL_REMINDED = EventType("approval.reminded", APPROVAL, "approval_changed")
SLA_WARNING = EventType("sla.warning", ROUTING, "sla_alert")
SLA_BREACHED = EventType("sla.breached", ROUTING, "sla_alert")
SLA_CHANGED = EventType("sla.changed", ROUTING, "sla_changed")
RULE_TIMER_DUE = EventType("rule.timer_due", ROUTING, "rule_timer")
PRESENCE_CHANGED = EventType("presence.changed", ROUTING, "presence_changed")
SURVEY_SENT = EventType("survey.sent", OUTBOUND, "survey")
SURVEY_ANSWERED = EventType("survey.answered", OUTBOUND, "survey")
CAMPAIGN_CHANGED = EventType("campaign.changed", OUTBOUND, "campaign_changed")
CONTACT_UNSUBSCRIBED = EventType("contact.unsubscribed", OUTBOUND, "contact_unsubscribed")
EVENT_TYPES = {
    t.name: t
    for t in (
        MESSAGE_RECEIVED,
        MESSAGE_ROUTED,
        TICKET_CREATED,
        FORM_SUBMITTED,
        TICKET_UPDATED,
        TICKET_ASSIGNED,
        TICKET_MESSAGE_ADDED,
        COMMENT_ADDED,
        CONTACT_CHANGED,
        LOCK_ACQUIRED,
        LOCK_RENEWED,
        LOCK_RELEASED,
        LOCK_EXPIRED,
        LOCK_TAKEN_OVER,
        OPERATION_PERFORMED,
        TEMPLATE_CHANGED,
        DRAFT_CHANGED,
        SEND_CHANGED,
        MESSAGE_SCANNED,
        SESSION_ENDED,
        ACCESS_CHANGED,
        APPROVAL_REQUESTED,
        APPROVAL_APPROVED,
        APPROVAL_SENT_BACK,
        APPROVAL_CANCELLED,
        APPROVAL_VOIDED,
        APPROVAL_SENT,
        APPROVAL_REMINDED,
        SLA_WARNING,
        SLA_BREACHED,
        SLA_CHANGED,
        RULE_TIMER_DUE,
        PRESENCE_CHANGED,
        SURVEY_SENT,
        SURVEY_ANSWERED,
        CAMPAIGN_CHANGED,
        CONTACT_UNSUBSCRIBED,
        CHANNEL_MESSAGE,
        CHANNEL_DELIVERY,
        CHANNEL_CONVERSATION,
    )
}


# TicketUpdated.action when only routing's SLA due time on the ticket moved (tickets'
# sla.changed consumer): pushed to the UI; routing's consumers pass over it
SLA_MOVED = "sla"

INFECTED = "infected"  # MailSummary.virus.state of a mail with a virus in an attachment


def is_junk(mail: events_pb2.MailSummary) -> bool:
    """ING-5: spam, a blocked sender or a virus: kept, filed in the trash, never answered."""
    return bool(mail.spam or mail.blocked_by or mail.virus.state == INFECTED)


def system_actor(service: str) -> common_pb2.Actor:
    return common_pb2.Actor(kind=common_pb2.Actor.KIND_SYSTEM, id=service, display=service)


def envelope(
    etype: EventType,
    *,
    event_id: str,
    tenant_id: str,
    occurred_at: datetime,
    payload: Message,
    actor: common_pb2.Actor,
    correlation_id: str = "",
    causation_id: str = "",
) -> events_pb2.EventEnvelope:
    """A new envelope. The correlation id defaults to the event's own id (a chain's start)."""
    if not tenant_id:
        raise InvalidArgument("an event needs a tenant", field="tenant_id")
    env = events_pb2.EventEnvelope(
        event_id=event_id,
        type=etype.name,
        tenant_id=tenant_id,
        actor=actor,
        correlation_id=correlation_id or event_id,
        causation_id=causation_id,
    )
    env.occurred_at.FromDatetime(occurred_at)
    getattr(env, etype.payload_field).CopyFrom(payload)
    return env


def caused_by(
    etype: EventType,
    cause: events_pb2.EventEnvelope,
    *,
    event_id: str,
    occurred_at: datetime,
    payload: Message,
    actor: common_pb2.Actor,
) -> events_pb2.EventEnvelope:
    """An envelope caused by `cause`: same tenant and correlation, causation = cause."""
    return envelope(
        etype,
        event_id=event_id,
        tenant_id=cause.tenant_id,
        occurred_at=occurred_at,
        payload=payload,
        actor=actor,
        correlation_id=cause.correlation_id or cause.event_id,
        causation_id=cause.event_id,
    )


def payload_of(env: events_pb2.EventEnvelope, etype: EventType) -> Any:
    """The envelope's payload, which must be `etype`'s; otherwise the event is poison."""
    found = env.WhichOneof("payload")
    if env.type != etype.name or found != etype.payload_field:
        raise Poison(f"expected {etype.name}, got type {env.type!r} with payload {found!r}")
    return getattr(env, etype.payload_field)


APPROVAL_CHANGES = (
    APPROVAL_REQUESTED,
    APPROVAL_APPROVED,
    APPROVAL_SENT_BACK,
    APPROVAL_CANCELLED,
    APPROVAL_VOIDED,
    APPROVAL_SENT,
    APPROVAL_REMINDED,
)


def approval_change_of(env: events_pb2.EventEnvelope) -> events_pb2.ApprovalChanged:
    """The payload of any `approval.*` event (for consumers of several of them)."""
    etype = EVENT_TYPES.get(env.type)
    if etype is None or etype not in APPROVAL_CHANGES:
        raise Poison(f"expected an approval.* event, got type {env.type!r}")
    change: events_pb2.ApprovalChanged = payload_of(env, etype)
    return change


def ticket_id_of(env: events_pb2.EventEnvelope) -> str:
    """The ticket an event is about, when its payload names one (its `ticket_id`, or the
    `ticket` summary's id); "" otherwise. For log lines."""
    field = env.WhichOneof("payload")
    if field is None:
        return ""
    payload = getattr(env, field)
    ticket_id = getattr(payload, "ticket_id", "")
    if not ticket_id and "ticket" in payload.DESCRIPTOR.fields_by_name:
        ticket_id = payload.ticket.id
    return str(ticket_id)


def subject_of(env: events_pb2.EventEnvelope) -> str:
    etype = EVENT_TYPES.get(env.type)
    if etype is None:
        raise InvalidArgument(f"unknown event type {env.type!r}", field="type")
    return etype.subject


# a rule decision's auto-reply / notify / webhook actions, once tickets applied it (issue 18)
TICKET_RULE_ACTIONS = EventType("ticket.rule_actions", TICKETS, "rule_actions")
EVENT_TYPES[TICKET_RULE_ACTIONS.name] = TICKET_RULE_ACTIONS


# -- what counts as our reply ----------------------------------------------------------

SENT_CHANNEL = "sent"  # a mail we sent, filed on its ticket (outbound's RecordSent)


def answers_customer(channel: str, mail: events_pb2.MailSummary) -> bool:
    """A mail of ours that answers the customer: filed with channel `sent` and not an
    automatic one (an acknowledgement, a rule's auto-reply, a form confirmation — they
    carry `Auto-Submitted`, ING-7). An automatic mail meets no SLA clock, is no first
    reply and ends no wait."""
    return channel == SENT_CHANNEL and not mail.auto_submitted
