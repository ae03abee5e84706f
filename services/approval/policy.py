"""Approval policies, free of I/O (APR-1, APR-2, APR-5): the model, its validation with
errors naming the field, which policy applies, whether a draft needs approval, and the
content hash that binds a request to what the customer would receive."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.runtime import permissions
from services.runtime.errors import InvalidArgument

MAX_STAGES = 3
MAX_REQUIRED = 20
MAX_DEADLINE_MINUTES = 60 * 24 * 30
MAX_CONDITIONS = 50
MAX_VALUES = 200
PRIORITIES = frozenset({"low", "normal", "high", "urgent"})
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_TAG = re.compile(r"<[^>]*>")


class ApproverKind(StrEnum):
    OPERATOR = "operator"
    ROLE = "role"
    INBOX_MEMBERS = "inbox_members"


class ConditionKind(StrEnum):
    RECIPIENT_DOMAIN_NOT_IN = "recipient_domain_not_in"
    WORDS = "words"
    ATTACHMENT = "attachment"
    RECIPIENTS_MORE_THAN = "recipients_more_than"
    TICKET_LABEL = "ticket_label"
    TICKET_PRIORITY = "ticket_priority"


@dataclass(frozen=True, slots=True)
class Approver:
    kind: ApproverKind
    id: str = ""


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    approvers: tuple[Approver, ...]
    required: int = 1
    deadline_minutes: int = 0


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    values: tuple[str, ...] = ()
    count: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    inbox_id: str  # "" for the tenant's
    name: str
    stages: tuple[Stage, ...]
    conditions: tuple[Condition, ...] = ()
    skip: tuple[Approver, ...] = ()
    allow_self_approval: bool = False
    version: int = 0
    builtin: bool = False


BUILTIN = Policy(
    id="",
    inbox_id="",
    name="Default",
    stages=(Stage("Approval", (Approver(ApproverKind.INBOX_MEMBERS),)),),
    builtin=True,
)


# -- validation --------------------------------------------------------------------------


def no_nul(value: str, field: str) -> str:
    """Text as stored: a NUL character has no place in it (PostgreSQL refuses it)."""
    if "\x00" in value:
        raise InvalidArgument(f"{field} holds a NUL character", field=field)
    return value


def _text(value: str, field: str, limit: int, *, required: bool = False) -> str:
    value = no_nul(value, field).strip()
    if required and not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    return value


def _approvers(
    given: Sequence[Approver],
    field: str,
    known_operators: frozenset[str],
    known_roles: frozenset[str],
    *,
    members_allowed: bool,
) -> tuple[Approver, ...]:
    out: list[Approver] = []
    for j, a in enumerate(given):
        at = f"{field}[{j}]"
        if a.kind is ApproverKind.INBOX_MEMBERS:
            if not members_allowed:
                raise InvalidArgument(
                    "the skip list names operators or roles only", field=f"{at}.kind"
                )
            a = Approver(ApproverKind.INBOX_MEMBERS)
        elif a.kind is ApproverKind.OPERATOR:
            if a.id not in known_operators:
                raise InvalidArgument(f"no operator {a.id!r} in this tenant", field=f"{at}.id")
        elif a.kind is ApproverKind.ROLE:
            if a.id not in known_roles:
                raise InvalidArgument(f"no role {a.id!r} in this tenant", field=f"{at}.id")
        if a not in out:
            out.append(a)
    return tuple(out)


def _stage(
    stage: Stage, i: int, known_operators: frozenset[str], known_roles: frozenset[str]
) -> Stage:
    at = f"stages[{i}]"
    if not stage.approvers:
        raise InvalidArgument(f"stage {i + 1} names no approver", field=f"{at}.approvers")
    approvers = _approvers(
        stage.approvers, f"{at}.approvers", known_operators, known_roles, members_allowed=True
    )
    required = stage.required or 1
    if not 1 <= required <= MAX_REQUIRED:
        raise InvalidArgument(
            f"a stage needs 1 to {MAX_REQUIRED} decisions", field=f"{at}.required"
        )
    if all(a.kind is ApproverKind.OPERATOR for a in approvers) and required > len(approvers):
        raise InvalidArgument(
            f"stage {i + 1} needs {required} decisions but names {len(approvers)} approvers",
            field=f"{at}.required",
        )
    if not 0 <= stage.deadline_minutes <= MAX_DEADLINE_MINUTES:
        raise InvalidArgument(
            f"a deadline is 0 (none) to {MAX_DEADLINE_MINUTES} minutes",
            field=f"{at}.deadline_minutes",
        )
    name = _text(stage.name, f"{at}.name", 100) or f"Stage {i + 1}"
    return Stage(name, approvers, required, stage.deadline_minutes)


def _normal(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold().strip()


def _condition(cond: Condition, k: int) -> Condition:
    at = f"conditions[{k}]"
    if len(cond.values) > MAX_VALUES:
        raise InvalidArgument(f"at most {MAX_VALUES} values", field=f"{at}.values")
    values = tuple(
        dict.fromkeys(v for v in (_normal(no_nul(x, f"{at}.values")) for x in cond.values) if v)
    )
    if any(len(v) > 200 for v in values):
        raise InvalidArgument("a value is longer than 200 characters", field=f"{at}.values")
    kind = cond.kind
    if kind is ConditionKind.ATTACHMENT:
        return Condition(kind)
    if kind is ConditionKind.RECIPIENTS_MORE_THAN:
        if not 0 <= cond.count <= 1000:
            raise InvalidArgument("a count is 0 to 1000", field=f"{at}.count")
        return Condition(kind, count=cond.count)
    if not values:
        raise InvalidArgument("this condition needs at least one value", field=f"{at}.values")
    if kind is ConditionKind.RECIPIENT_DOMAIN_NOT_IN:
        bad = [v for v in values if not _DOMAIN.match(v.encode("idna").decode())]
        if bad:
            raise InvalidArgument(f"not a domain: {bad[0]!r}", field=f"{at}.values")
        values = tuple(v.encode("idna").decode() for v in values)
    if kind is ConditionKind.TICKET_PRIORITY and not set(values) <= PRIORITIES:
        raise InvalidArgument(
            "a priority is one of low, normal, high, urgent", field=f"{at}.values"
        )
    return Condition(kind, values)


def validate(policy: Policy, known_operators: Iterable[str], known_roles: Iterable[str]) -> Policy:
    """The policy normalised (trimmed, duplicates dropped, `required` 0 → 1), or
    INVALID_ARGUMENT naming the first wrong field. Nothing is written before this passes."""
    ops, roles = frozenset(known_operators), frozenset(known_roles)
    name = _text(policy.name, "name", 200, required=True)
    if not 1 <= len(policy.stages) <= MAX_STAGES:
        raise InvalidArgument(
            f"a policy has 1 to {MAX_STAGES} stages, not {len(policy.stages)}", field="stages"
        )
    stages = tuple(_stage(s, i, ops, roles) for i, s in enumerate(policy.stages))
    if len(policy.conditions) > MAX_CONDITIONS:
        raise InvalidArgument(f"at most {MAX_CONDITIONS} conditions", field="conditions")
    conditions = tuple(_condition(c, k) for k, c in enumerate(policy.conditions))
    skip = _approvers(policy.skip, "skip", ops, roles, members_allowed=False)
    return replace(policy, name=name, stages=stages, conditions=conditions, skip=skip)


# -- which policy, and whether approval is needed ----------------------------------------


def choose(policies: Iterable[Policy], inbox_id: str) -> Policy:
    """The inbox's policy, else the tenant's, else the built-in one."""
    tenant = None
    for p in policies:
        if p.inbox_id and p.inbox_id == inbox_id:
            return p
        if not p.inbox_id:
            tenant = p
    return tenant or BUILTIN


@dataclass(frozen=True, slots=True)
class Author:
    operator_id: str
    roles: frozenset[str]
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True)
class DraftFacts:
    recipients: tuple[str, ...]  # to, cc and bcc addresses
    subject: str
    body_text: str  # the operator's own text (not the quote, not the signature)
    body_html: str
    attachments: int


@dataclass(frozen=True, slots=True)
class TicketFacts:
    labels: frozenset[str] = frozenset()
    priority: str = ""  # low, normal, high, urgent; "" for a new mail


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def matches(cond: Condition, draft: DraftFacts, ticket: TicketFacts) -> bool:
    kind = cond.kind
    if kind is ConditionKind.ATTACHMENT:
        return draft.attachments > 0
    if kind is ConditionKind.RECIPIENTS_MORE_THAN:
        return len(draft.recipients) > cond.count
    if kind is ConditionKind.RECIPIENT_DOMAIN_NOT_IN:
        allowed = set(cond.values)
        return any(_domain(r) not in allowed for r in draft.recipients)
    if kind is ConditionKind.WORDS:
        text = _normal(" ".join((draft.subject, draft.body_text, _TAG.sub(" ", draft.body_html))))
        return any(w in text for w in cond.values)
    if kind is ConditionKind.TICKET_LABEL:
        return bool({_normal(label) for label in ticket.labels} & set(cond.values))
    return ticket.priority in cond.values  # TICKET_PRIORITY


def looks_at_ticket(policy: Policy) -> bool:
    """Whether a condition needs the ticket's labels or priority."""
    return any(
        c.kind in (ConditionKind.TICKET_LABEL, ConditionKind.TICKET_PRIORITY)
        for c in policy.conditions
    )


def skipped(policy: Policy, author: Author) -> bool:
    for a in policy.skip:
        if a.kind is ApproverKind.OPERATOR and a.id == author.operator_id:
            return True
        if a.kind is ApproverKind.ROLE and a.id in author.roles:
            return True
    return False


def needs_approval(
    policy: Policy,
    author: Author,
    draft: DraftFacts,
    ticket: TicketFacts,
    *,
    requested: bool,
    flagged_until: datetime | None,
    now: datetime,
) -> tuple[str, ...]:
    """Why this draft needs approval before it is sent (empty: it does not). The skip list
    excuses the policy's conditions only, never a missing permission or a flag."""
    reasons: list[str] = []
    if requested:
        reasons.append("requested")
    if flagged_until is not None and flagged_until > now:
        reasons.append("flagged")
    if permissions.SEND_WITHOUT_APPROVAL not in author.permissions:
        reasons.append("no_permission")
    if not skipped(policy, author):
        reasons.extend(
            f"condition:{c.kind}" for c in policy.conditions if matches(c, draft, ticket)
        )
    return tuple(dict.fromkeys(reasons))


def content_hash(content: Mapping[str, Any]) -> str:
    """Hex SHA-256 of a canonical JSON of a revision's content (what the customer gets:
    never who saved it or when). Equal content, equal hash, whatever the key order."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
