"""The one list of Switchboard's processes: every gRPC service and the gateway, with what
each owns and whom it calls.

Settings (peer addresses, default ports), the local stack (`make run` and the tests: which
processes, in which order), the release bootstrap (which databases, which durable
consumers), the gateway's health report and the chart's tests read it from here. Adding a
service is: its folder under services/, an entry here, an entry in the chart's values.

A durable consumer is declared here, with the service that runs it, so that the bootstrap
provisions every one of them; the service's code takes its spec from here
(`registry.ROUTING_MESSAGES`), and `ServiceRuntime.add_consumer` refuses one that its
entry does not list.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import events
from .bus import ConsumerSpec
from .events import Stream

# -- durable consumers (`<service>__<purpose>`) ------------------------------------------

ROUTING_MESSAGES = ConsumerSpec(
    events.INGEST, "routing__messages", (events.MESSAGE_RECEIVED.subject,)
)
# Assignment (issue 18, RTE-2): routing keeps its own row of every ticket and the
# operators' load counters from tickets' events.
ROUTING_TICKETS = ConsumerSpec(
    events.TICKETS,
    "routing__tickets",
    (
        events.TICKET_CREATED.subject,
        events.TICKET_UPDATED.subject,
        events.TICKET_ASSIGNED.subject,
        events.TICKET_MESSAGE_ADDED.subject,
    ),
)
# SLA clocks (issue 18, RTE-4): routing keeps each ticket's SLA facts from its events.
ROUTING_SLA = ConsumerSpec(
    events.TICKETS,
    "routing__sla",
    (
        events.TICKET_CREATED.subject,
        events.TICKET_MESSAGE_ADDED.subject,
        events.TICKET_UPDATED.subject,
    ),
)
# routing's ticket_changed rules (RTE-1) answer every ticket change
ROUTING_TICKET_CHANGES = ConsumerSpec(
    events.TICKETS, "routing__ticket_changes", (events.TICKET_UPDATED.subject,)
)
# routing's sla_warning / sla_breached rules (RTE-1) answer its own SLA alerts
ROUTING_SLA_RULES = ConsumerSpec(
    events.ROUTING,
    "routing__sla_rules",
    (events.SLA_WARNING.subject, events.SLA_BREACHED.subject),
)
# routing's no_first_reply / pending_until rules (issue 18) answer its own rule timers
ROUTING_TIME_RULES = ConsumerSpec(
    events.ROUTING, "routing__time_rules", (events.RULE_TIMER_DUE.subject,)
)
# Rule actions outside the ticket (issue 18, ruleacts): routing delivers the webhooks,
# outbound sends the auto-replies of `ticket.rule_actions`.
ROUTING_WEBHOOKS = ConsumerSpec(
    events.TICKETS, "routing__webhooks", (events.TICKET_RULE_ACTIONS.subject,)
)
OUTBOUND_RULE_REPLIES = ConsumerSpec(
    events.TICKETS, "outbound__rule_replies", (events.TICKET_RULE_ACTIONS.subject,)
)
# Channels (issue 21, ING-6): ingestion links a channel conversation to the ticket its
# message was filed into (channel_messages.message_id = the event's message_id).
INGESTION_CHANNEL_TICKETS = ConsumerSpec(
    events.TICKETS,
    "ingestion__channel_tickets",
    (events.TICKET_CREATED.subject, events.TICKET_MESSAGE_ADDED.subject),
)
TICKETS_ROUTED = ConsumerSpec(events.ROUTING, "tickets__routed", (events.MESSAGE_ROUTED.subject,))
# routing's soonest SLA due time of each ticket, kept so lists sort by it (issue 18).
TICKETS_SLA = ConsumerSpec(events.ROUTING, "tickets__sla", (events.SLA_CHANGED.subject,))
# The customer-data lookup (issue 21, RTE-3) asked for a new ticket's contact when it maps a
# customer value, so routing's priority has it while the ticket waits (not only once an
# operator opens it).
TICKETS_LOOKUPS = ConsumerSpec(events.TICKETS, "tickets__lookups", (events.TICKET_CREATED.subject,))
TICKETS_DRAFTS = ConsumerSpec(events.COMPOSE, "tickets__drafts", (events.DRAFT_CHANGED.subject,))
# A late virus verdict may come before its mail is filed (routing behind): retried for
# about an hour before it is dead-lettered.
TICKETS_SCANS = ConsumerSpec(
    events.INGEST,
    "tickets__scans",
    (events.MESSAGE_SCANNED.subject,),
    max_deliver=20,
    nak_delays_s=(1.0, 5.0, 15.0, 60.0, 300.0),
)
# Every change to a send of a ticket, in the ticket's audit trail (issue 16).
TICKETS_SENDS = ConsumerSpec(events.OUTBOUND, "tickets__sends", (events.SEND_CHANGED.subject,))
# Approval requests (issue 17): tickets keeps its `awaiting_approval` view and the
# ticket's timeline; composition holds a draft while its request is pending and opens it
# again when the request ends (approval also asks it directly; the events make good a
# call that failed).
TICKETS_APPROVALS = ConsumerSpec(
    events.APPROVAL, "tickets__approvals", tuple(t.subject for t in events.APPROVAL_CHANGES)
)
COMPOSITION_APPROVALS = ConsumerSpec(
    events.APPROVAL,
    "composition__approvals",
    tuple(
        t.subject
        for t in (
            events.APPROVAL_REQUESTED,
            events.APPROVAL_APPROVED,
            events.APPROVAL_SENT_BACK,
            events.APPROVAL_CANCELLED,
            events.APPROVAL_VOIDED,
        )
    ),
)
OUTBOUND_REPLIES = ConsumerSpec(
    events.TICKETS,
    "outbound__replies",
    (events.TICKET_CREATED.subject, events.TICKET_MESSAGE_ADDED.subject),
)
# Satisfaction surveys (issue 20): a resolution starts an episode, a reopen ends it.
OUTBOUND_SURVEYS = ConsumerSpec(
    events.TICKETS,
    "outbound__surveys",
    (events.TICKET_UPDATED.subject, events.TICKET_MESSAGE_ADDED.subject),
)
# A web chat ended (issue 21): its transcript to the address the visitor left.
OUTBOUND_CHAT_TRANSCRIPTS = ConsumerSpec(
    events.INGEST, "outbound__chat_transcripts", (events.CHANNEL_CONVERSATION.subject,)
)
# A channel reply's delivery dead (or delivered after an administrator's retry): its send
# `bounced` (or `sent` again), as a mail's bounce does (issue 21).
OUTBOUND_CHANNEL_DELIVERIES = ConsumerSpec(
    events.INGEST, "outbound__channel_deliveries", (events.CHANNEL_DELIVERY.subject,)
)
OUTBOUND_BOUNCES = ConsumerSpec(
    events.INGEST, "outbound__bounces", (events.MESSAGE_RECEIVED.subject,)
)
# Campaigns (issue 20, OUT-6): a reply to a campaign mail marks its recipient `replied`,
# a hard bounce `bounced`.
OUTBOUND_CAMPAIGN_MAIL = ConsumerSpec(
    events.INGEST, "outbound__campaign_mail", (events.MESSAGE_RECEIVED.subject,)
)
# … and an unsubscribe through a campaign mail's link marks that recipient `unsubscribed`.
OUTBOUND_CAMPAIGN_UNSUBSCRIBES = ConsumerSpec(
    events.OUTBOUND, "outbound__campaign_unsubscribes", (events.CONTACT_UNSUBSCRIBED.subject,)
)
# A final approval with `send` (issue 17): outbound submits exactly the approved revision.
OUTBOUND_APPROVALS = ConsumerSpec(
    events.APPROVAL, "outbound__approvals", (events.APPROVAL_APPROVED.subject,)
)
# A send submitted for the draft of an approved request marks the request sent.
APPROVAL_SENDS = ConsumerSpec(events.OUTBOUND, "approval__sends", (events.SEND_CHANGED.subject,))
ACCOUNTS_OPERATIONS = ConsumerSpec(
    events.GATEWAY, "accounts__operations", (events.OPERATION_PERFORMED.subject,), batch=256
)
# The live figures (issue 19, rlive: RPT-5, RPT-7): reporting keeps its own row of every
# ticket from tickets' events and routing's SLA events (one consumer per stream).
REPORTING_LIVE = ConsumerSpec(
    events.TICKETS,
    "reporting__live",
    (
        events.TICKET_CREATED.subject,
        events.TICKET_UPDATED.subject,
        events.TICKET_ASSIGNED.subject,
        events.TICKET_MESSAGE_ADDED.subject,
    ),
)
REPORTING_LIVE_SLA = ConsumerSpec(
    events.ROUTING,
    "reporting__live_sla",
    (events.SLA_CHANGED.subject, events.SLA_WARNING.subject),
)

# Reporting's facts (issue 19 §1): every event that makes a measurable thing.
REPORTING_TICKETS = ConsumerSpec(
    events.TICKETS,
    "reporting__tickets",
    (
        events.TICKET_CREATED.subject,
        events.TICKET_MESSAGE_ADDED.subject,
        events.TICKET_UPDATED.subject,
        events.TICKET_ASSIGNED.subject,
    ),
)
REPORTING_SENDS = ConsumerSpec(events.OUTBOUND, "reporting__sends", (events.SEND_CHANGED.subject,))
REPORTING_APPROVALS = ConsumerSpec(
    events.APPROVAL,
    "reporting__approvals",
    (
        events.APPROVAL_REQUESTED.subject,
        events.APPROVAL_APPROVED.subject,
        events.APPROVAL_SENT_BACK.subject,
    ),
)
REPORTING_SLA = ConsumerSpec(
    events.ROUTING,
    "reporting__sla",
    (events.SLA_WARNING.subject, events.SLA_BREACHED.subject),
)
# Satisfaction ratings (issue 20, OUT-5): one row per survey, its latest answer.
REPORTING_SURVEYS = ConsumerSpec(
    events.OUTBOUND,
    "reporting__surveys",
    (events.SURVEY_SENT.subject, events.SURVEY_ANSWERED.subject),
)


@dataclass(frozen=True, slots=True)
class Component:
    """One process kind. `port` is its listening port on one machine (`make run`: gRPC for
    a service, HTTP for the gateway; in Kubernetes every gRPC service listens on 50051).
    `metrics_port` is where it serves Prometheus' /metrics on one machine (9100 for the
    gateway, the gRPC port + 2000 for a service)."""

    name: str
    port: int
    metrics_port: int
    module: str  # `python -m <module>`
    grpc: bool = True  # a gRPC service (the gateway is HTTP)
    database: bool = False  # owns the PostgreSQL database sb_<name>
    streams: tuple[Stream, ...] = ()  # the JetStream streams whose events it publishes
    consumers: tuple[ConsumerSpec, ...] = ()  # the durable consumers it runs
    calls: tuple[str, ...] = ()  # the gRPC services it calls
    # subjects it follows with plain core-NATS subscriptions: every replica sees every
    # event published while it is connected; nothing durable, nothing replayed
    subscriptions: tuple[str, ...] = ()

    def consumer(self, durable: str) -> ConsumerSpec:
        for spec in self.consumers:
            if spec.durable == durable:
                return spec
        raise KeyError(f"{self.name} declares no consumer {durable!r}")


def _service(
    name: str,
    port: int,
    *,
    database: bool = False,
    streams: tuple[Stream, ...] = (),
    consumers: tuple[ConsumerSpec, ...] = (),
    calls: tuple[str, ...] = (),
) -> Component:
    """A gRPC service: `python -m services.<name>`, metrics on its port + 2000."""
    return Component(
        name,
        port,
        port + 2000,
        f"services.{name}",
        database=database,
        streams=streams,
        consumers=consumers,
        calls=calls,
    )


# In the canonical order: the order of /healthz, of ports 7101… and of the docs.
SERVICES: tuple[Component, ...] = (
    _service(
        "ingestion",
        7101,
        database=True,
        streams=(events.INGEST,),
        consumers=(INGESTION_CHANNEL_TICKETS,),
        calls=("accounts", "tickets"),
    ),
    _service(
        "routing",
        7102,
        database=True,
        streams=(events.ROUTING,),
        consumers=(
            ROUTING_MESSAGES,
            ROUTING_TICKETS,
            ROUTING_SLA,
            ROUTING_TICKET_CHANGES,
            ROUTING_SLA_RULES,
            ROUTING_TIME_RULES,
            ROUTING_WEBHOOKS,
        ),
        calls=("tickets", "ingestion", "accounts", "composition"),
    ),
    _service(
        "tickets",
        7103,
        database=True,
        streams=(events.TICKETS,),
        consumers=(
            TICKETS_ROUTED,
            TICKETS_DRAFTS,
            TICKETS_SCANS,
            TICKETS_SENDS,
            TICKETS_APPROVALS,
            TICKETS_SLA,
            TICKETS_LOOKUPS,
        ),
        calls=("accounts",),
    ),
    _service(
        "composition",
        7104,
        database=True,
        streams=(events.COMPOSE,),
        consumers=(COMPOSITION_APPROVALS,),
        calls=("tickets", "accounts", "ingestion"),
    ),
    _service(
        "approval",
        7105,
        database=True,
        streams=(events.APPROVAL,),
        consumers=(APPROVAL_SENDS,),
        calls=("composition", "tickets", "accounts"),
    ),
    _service(
        "outbound",
        7106,
        database=True,
        streams=(events.OUTBOUND,),
        consumers=(
            OUTBOUND_REPLIES,
            OUTBOUND_BOUNCES,
            OUTBOUND_APPROVALS,
            OUTBOUND_RULE_REPLIES,
            OUTBOUND_SURVEYS,
            OUTBOUND_CAMPAIGN_MAIL,
            OUTBOUND_CAMPAIGN_UNSUBSCRIBES,
            OUTBOUND_CHAT_TRANSCRIPTS,
            OUTBOUND_CHANNEL_DELIVERIES,
        ),
        calls=("composition", "tickets", "ingestion", "accounts", "approval"),
    ),
    _service(
        "reporting",
        7107,
        database=True,
        calls=("tickets", "routing", "ingestion", "accounts"),
        consumers=(
            REPORTING_TICKETS,
            REPORTING_SENDS,
            REPORTING_APPROVALS,
            REPORTING_SLA,
            REPORTING_SURVEYS,
            REPORTING_LIVE,
            REPORTING_LIVE_SLA,
        ),
    ),
    _service(
        "accounts",
        7108,
        database=True,
        streams=(events.ACCOUNTS,),
        consumers=(ACCOUNTS_OPERATIONS,),
    ),
)

# Gateway ↔ gateway: web chat typing / online / offline of visitors and operators (core
# NATS, not JetStream; JSON {"tenant_id","inbox_id","conversation_id","ticket_id","who",
# "name","event"})
LIVE_CHAT_SUBJECT = "sb.live.chat"

GATEWAY = Component(
    "gateway",
    8080,
    9100,
    "gateway",
    grpc=False,
    streams=(events.GATEWAY,),
    calls=tuple(s.name for s in SERVICES),
    # the live hub (gateway/live.py): ticket and approval events, shared templates and
    # sends to push; ended sessions and changed access to close or re-authorise sockets
    # (SEC-9)
    subscriptions=(
        f"sb.{events.TICKETS.domain}.>",
        f"sb.{events.APPROVAL.domain}.>",
        events.TEMPLATE_CHANGED.subject,
        events.SEND_CHANGED.subject,
        events.SESSION_ENDED.subject,
        events.ACCESS_CHANGED.subject,
        events.PRESENCE_CHANGED.subject,
        # issue 21: channel messages, deliveries and conversations (operators' views and the
        # chat widget's visitor sockets), and the replicas' typing/online notes of web
        # chats (core NATS, JSON: not an event of the catalogue)
        events.CHANNEL_MESSAGE.subject,
        events.CHANNEL_DELIVERY.subject,
        events.CHANNEL_CONVERSATION.subject,
        LIVE_CHAT_SUBJECT,
    ),
)

COMPONENTS: tuple[Component, ...] = (*SERVICES, GATEWAY)
BY_NAME: dict[str, Component] = {c.name: c for c in COMPONENTS}
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
DEFAULT_PORTS: dict[str, int] = {s.name: s.port for s in SERVICES}


def get(name: str) -> Component:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no component named {name!r} in services/runtime/registry.py") from None


def database_services() -> tuple[str, ...]:
    return tuple(s.name for s in SERVICES if s.database)


def all_consumers() -> tuple[ConsumerSpec, ...]:
    return tuple(spec for c in COMPONENTS for spec in c.consumers)


def start_order() -> tuple[str, ...]:
    """Every component after the services it calls (callees first; the canonical order
    between equals). A call cycle is a mistake in this file."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"the registry's calls form a cycle through {name}")
        visiting.add(name)
        for callee in get(name).calls:
            visit(callee)
        visiting.discard(name)
        order.append(name)

    for component in COMPONENTS:
        visit(component.name)
    return tuple(order)
