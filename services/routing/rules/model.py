"""The rule model: what an administrator saves, what a condition reads of a mail and its
ticket, and what an evaluation decides. Plain frozen dataclasses, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# triggers: what makes rules run. The SLA's warning and breach, "no first reply within N
# minutes" and "pending until a date" are time triggers (routing's due-time index).
NEW_TICKET = "new_ticket"
CUSTOMER_REPLY = "customer_reply"
TICKET_CHANGED = "ticket_changed"
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
# once per ticket, `no_first_reply_minutes` after it was created, when no reply of ours
# was sent by then and it is not closed (rule_timers.py)
NO_FIRST_REPLY = "no_first_reply"
# when a pending ticket reaches its pending-until date (once per date)
PENDING_UNTIL = "pending_until"
TRIGGERS = (
    NEW_TICKET,
    CUSTOMER_REPLY,
    TICKET_CHANGED,
    SLA_WARNING,
    SLA_BREACHED,
    NO_FIRST_REPLY,
    PENDING_UNTIL,
)
TIME_TRIGGERS = (NO_FIRST_REPLY, PENDING_UNTIL)
MAX_NO_REPLY_MINUTES = 525_600  # a year

STATUSES = ("open", "pending", "resolved", "no_action", "trash")
SETTABLE_STATUSES = ("open", "pending", "resolved", "no_action")
PRIORITIES = ("low", "normal", "high", "urgent")  # in this order: low < urgent

# how deep a change made by rules may trigger rules again (ticket_changed)
MAX_DEPTH = 3
MAX_GROUP_DEPTH = 5
MAX_LEAVES = 50
DEFAULT_APPROVAL_LABEL = "approval-required"

Match = Literal["all", "any"]


@dataclass(frozen=True)
class Leaf:
    field: str
    operator: str
    value: str | float | bool | tuple[str, ...] | datetime
    name: str = ""  # the header's name, for field "header"
    negate: bool = False


@dataclass(frozen=True)
class Group:
    match: Match
    conditions: tuple[Leaf | Group, ...] = ()


@dataclass(frozen=True)
class Action:
    type: str
    value: str = ""
    to: tuple[str, ...] = ()  # notify: "operator:<id>", "inbox_members", "role:<name>"
    level: int = 0  # require_skill: the minimum level (1–5)


# actions whose effect is outside the ticket (issue 18, ruleacts): tickets announces them in
# `ticket.rule_actions` once it has applied the decision
AUTO_REPLY = "auto_reply"
NOTIFY = "notify"
WEBHOOK = "webhook"
EFFECTS = (AUTO_REPLY, NOTIFY, WEBHOOK)
INBOX_MEMBERS = "inbox_members"


@dataclass(frozen=True)
class BusinessHours:
    calendar_id: str
    when: Literal["inside", "outside"]


@dataclass(frozen=True)
class RuleDef:
    """What an administrator writes: everything of a rule but its identity and history."""

    name: str
    inbox_id: str  # "" for every inbox of the tenant
    enabled: bool
    triggers: tuple[str, ...]
    conditions: Group
    actions: tuple[Action, ...]
    once_per_ticket: bool = False
    business_hours: BusinessHours | None = None
    no_first_reply_minutes: int | None = None  # with the trigger no_first_reply only


@dataclass(frozen=True)
class Rule:
    id: str
    position: int
    version: int
    definition: RuleDef

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class Attachment:
    name: str
    type: str


@dataclass(frozen=True)
class TicketState:
    """The ticket's fields conditions read; for a new ticket, the defaults."""

    labels: frozenset[str] = frozenset()
    category: str = ""
    priority: str = "normal"
    status: str = "open"
    inbox_id: str = ""


@dataclass(frozen=True)
class ContactFacts:
    """The sender's contact as conditions read it (issue 18)."""

    custom: Mapping[str, str] = field(default_factory=dict)
    customer_value: float | None = None
    vip: bool = False


@dataclass(frozen=True)
class Facts:
    """What a rule's conditions read of a mail. `headers` (lower-case name → values) and
    `attachments` are None when not fetched: only rules that read them make the caller
    fetch them (`needs_mail_details`)."""

    sender_address: str
    sender_name: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    channel: str
    received_at: datetime
    has_attachments: bool
    size: int
    attachment_count: int = 0
    attachments: tuple[Attachment, ...] | None = None
    headers: Mapping[str, tuple[str, ...]] | None = None
    ticket: TicketState = field(default_factory=TicketState)
    # the SLA target that warned or broke (sla_warning / sla_breached): first_response,
    # next_response or resolution; "" for other triggers
    sla_target: str = ""
    # the sender's contact (None: none yet, or not asked for) and the detected language
    contact: ContactFacts | None = None
    language: str = ""


@dataclass(frozen=True)
class ConditionTrace:
    path: str
    description: str
    held: bool


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    rule_name: str
    matched: bool
    skipped: str  # "" when it ran; "disabled", "trigger", "once_per_ticket", …
    conditions: tuple[ConditionTrace, ...]
    actions: tuple[str, ...]  # the applied actions as text ("add label 返品")


@dataclass
class Decision:
    """What the rules decided for one mail; None / empty means unchanged."""

    inbox_id: str | None = None
    status: str | None = None
    assignee_id: str | None = None
    assign_by_strategy: bool = False
    add_labels: list[str] = field(default_factory=list)
    remove_labels: list[str] = field(default_factory=list)
    category: str | None = None
    priority: str | None = None
    spam: bool = False
    trash: bool = False
    approval_label: str = ""
    # require_skill: the folded name → (the name as written, the minimum level)
    required_skills: dict[str, tuple[str, int]] = field(default_factory=dict)
    trace: list[tuple[str, str, str]] = field(default_factory=list)  # (rule id, name, action)
    fired: list[str] = field(default_factory=list)  # rule ids that ran their actions
    stopped: bool = False
    # auto_reply / notify / webhook, each with the index in `trace` of its own entry (which
    # names the rule that ran it)
    effects: list[tuple[int, Action]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.trace

    def effects_by_rule(self) -> list[tuple[str, str, Action]]:
        """(rule id, rule name, action) of every outside-effect action, in order."""
        return [(self.trace[i][0], self.trace[i][1], a) for i, a in self.effects]


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    results: tuple[RuleResult, ...]
    depth_limited: bool = False
