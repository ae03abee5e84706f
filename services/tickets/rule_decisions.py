"""Applying routing's rule decision (MessageRouted.decision, RTE-1) to the ticket a mail
is filed in, inside the transaction that files it: the fields it sets, the inbox it moves
the ticket to, the operator it assigns, and one audit entry per applied action —
"rule <name>: <action>" — so "why is this here?" has an answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.errors import InvalidArgument
from services.runtime.identity import Identity
from services.runtime.ticket_names import STRATEGY_FLAG

from . import domain, ticket_facts
from .convert import summary_pb
from .deps import Deps
from .directory import OperatorInfo
from .domain import Change, FieldEdit, Priority, Status
from .records import Ticket

ACTOR = common_pb2.Actor(kind=common_pb2.Actor.KIND_SYSTEM, id="routing", display="routing")
SPAM_FLAG = "spam"

_STATUS = {
    common_pb2.TICKET_STATUS_OPEN: Status.OPEN,
    common_pb2.TICKET_STATUS_PENDING: Status.PENDING,
    common_pb2.TICKET_STATUS_RESOLVED: Status.RESOLVED,
    common_pb2.TICKET_STATUS_NO_ACTION: Status.NO_ACTION,
}
_PRIORITY = {
    common_pb2.PRIORITY_LOW: Priority.LOW,
    common_pb2.PRIORITY_NORMAL: Priority.NORMAL,
    common_pb2.PRIORITY_HIGH: Priority.HIGH,
    common_pb2.PRIORITY_URGENT: Priority.URGENT,
}


def _tags(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        try:
            out.append(domain.clean_tag(v, "labels"))
        except InvalidArgument:
            continue  # routing validated it; a tag tickets cannot keep is left out
    return tuple(out)


def edit_of(decision: events_pb2.RoutingDecision) -> FieldEdit:
    """The field edit a decision makes (inbox and assignee are applied beside it)."""
    status = Status.TRASH if decision.trash or decision.spam else _STATUS.get(decision.status)
    flags: list[str] = []
    if decision.assign_by_strategy:
        flags.append(STRATEGY_FLAG)
    if decision.spam:
        flags.append(SPAM_FLAG)
    category = None
    if decision.HasField("category"):
        category = " ".join(decision.category.split())[: domain.LABEL_MAX]
    return FieldEdit(
        status=status,
        priority=_PRIORITY.get(decision.priority),
        category=category,
        add_labels=_tags(list(decision.add_labels)),
        remove_labels=_tags(list(decision.remove_labels)),
        add_flags=tuple(flags),
    )


@dataclass(frozen=True)
class Names:
    """Who and where a decision names, looked up before the filing transaction."""

    operator: OperatorInfo | None
    inbox_name: str | None


async def names(deps: Deps, tenant: str, decision: events_pb2.RoutingDecision) -> Names:
    ident = Identity(tenant_id=tenant)
    operator = None
    if decision.assignee_id:
        operator = (await deps.directory.operators(ident)).get(decision.assignee_id)
    inbox_name = None
    if decision.inbox_id:
        inbox_name = (await deps.directory.inboxes(ident)).get(decision.inbox_id)
    return Names(operator, inbox_name)


@dataclass(frozen=True)
class Applied:
    row: Ticket
    changes: tuple[Change, ...]
    assigned: OperatorInfo | None  # newly assigned by the decision
    previous_assignee: tuple[str, str] | None  # (id, name) it replaced


async def apply(
    deps: Deps,
    conn: asyncpg.Connection,
    tenant: str,
    row: Ticket,
    decision: events_pb2.RoutingDecision,
    found: Names,
    now: datetime,
) -> Applied:
    """Apply the decision to a locked (or just inserted) ticket row and audit it."""
    notes: list[str] = []
    edit = edit_of(decision)
    try:
        applied = domain.apply_edit(row, edit)
        values = dict(applied.values)
        changes = list(applied.changes)
    except InvalidArgument as err:  # e.g. more labels than a ticket keeps
        values, changes = {}, []
        notes.append(f"not applied: {err.message}")
    if "status" in values and Status(str(values["status"])) in domain.CLOSED:
        values["closed_at"] = now
    if decision.inbox_id and decision.inbox_id != str(row.inbox_id):
        if found.inbox_name is None:
            notes.append(f"not moved: inbox {decision.inbox_id} does not exist")
        else:
            values["inbox_id"] = uuid.UUID(decision.inbox_id)
            values["inbox_name"] = found.inbox_name
            changes.append(Change("inbox", row.inbox_name, found.inbox_name))
    if decision.required_skills:
        current = [{"name": n, "min_level": lv} for n, lv in row.required_skills]
        skills = ticket_facts.merged_skills(current, decision.required_skills)
        if skills != current:
            values["required_skills"] = skills
            changes.append(
                Change(
                    "required_skills",
                    ticket_facts.skills_text(current),
                    ticket_facts.skills_text(skills),
                )
            )
    assigned = None
    previous = None
    if decision.assignee_id and decision.assignee_id != str(row.assignee_id or ""):
        if found.operator is None:
            notes.append(f"not assigned: operator {decision.assignee_id} is not active")
        else:
            assigned = found.operator
            if row.assignee_id:
                previous = (str(row.assignee_id), row.assignee_name or "")
            values["assignee_id"] = uuid.UUID(assigned.id)
            values["assignee_name"] = assigned.display_name
            changes.append(Change("assignee", row.assignee_name or "", assigned.display_name))
    if not changes and not notes and not has_effects(decision):
        return Applied(row, (), None, None)  # nothing to do: nothing to say either

    async def audit(action: str, comment: str, changed: list[Change]) -> None:
        await deps.repo.add_audit(
            conn,
            id=deps.ids.new(),
            tenant_id=tenant,
            ticket_id=row.id,
            at=now,
            actor=ACTOR,
            action=action,
            changes=changed,
            comment=comment[: domain.COMMENT_MAX],
        )

    for entry in decision.applied:
        await audit("rule", f"rule {entry.rule_name}: {entry.action}", [])
    if changes or notes:
        await audit("update", "; ".join(["routing rules", *notes]), changes)
    if values:
        row = await deps.repo.update_fields(conn, tenant, row.id, values, now)
    return Applied(row, tuple(changes), assigned, previous)


def has_effects(decision: events_pb2.RoutingDecision) -> bool:
    """Whether the decision has actions outside the ticket (auto-reply, notify, webhook)."""
    return bool(decision.auto_replies or decision.notifies or decision.webhooks)


async def announce(
    deps: Deps,
    conn: asyncpg.Connection,
    cause: events_pb2.EventEnvelope,
    applied: Applied,
    now: datetime,
    *,
    rule_depth: int,
    updated: bool = True,
    decision: events_pb2.RoutingDecision | None = None,
    reply_to: events_pb2.RuleReplyTo | None = None,
) -> None:
    """The events of an applied decision, in the caller's transaction: `ticket.updated`
    with the changes (unless `updated` is False: a new ticket's `ticket.created` carries
    them), `ticket.assigned` when it assigned the ticket, and `ticket.rule_actions` with
    its auto-reply, notify and webhook actions (`reply_to`: the customer mail an
    auto-reply answers; by default the decision's own)."""
    ticket = summary_pb(applied.row)
    if decision is not None and has_effects(decision):
        actions = events_pb2.RuleActions(
            ticket=ticket,
            trigger=decision.trigger,
            auto_replies=decision.auto_replies,
            notifies=decision.notifies,
            webhooks=decision.webhooks,
        )
        if reply_to is not None:
            actions.reply_to.CopyFrom(reply_to)
        elif decision.HasField("reply_to"):
            actions.reply_to.CopyFrom(decision.reply_to)
        await _emit(deps, conn, cause, events.TICKET_RULE_ACTIONS, actions, now)
    if updated and applied.changes:
        payload = events_pb2.TicketUpdated(
            ticket=ticket,
            changes=[
                events_pb2.FieldChange(field=c.field, old_value=c.old, new_value=c.new)
                for c in applied.changes
            ],
            comment="routing rules",
            action="update",
            rule_depth=rule_depth,
        )
        await _emit(deps, conn, cause, events.TICKET_UPDATED, payload, now)
    if applied.assigned is not None:
        assigned = events_pb2.TicketAssigned(ticket=ticket, assignee=applied.assigned.ref())
        if applied.previous_assignee is not None:
            assigned.previous.id, assigned.previous.display_name = applied.previous_assignee
        await _emit(deps, conn, cause, events.TICKET_ASSIGNED, assigned, now)


async def _emit(
    deps: Deps,
    conn: asyncpg.Connection,
    cause: events_pb2.EventEnvelope,
    kind: events.EventType,
    payload: events_pb2.TicketUpdated | events_pb2.TicketAssigned | events_pb2.RuleActions,
    now: datetime,
) -> None:
    out = events.caused_by(
        kind, cause, event_id=deps.ids.new_str(), occurred_at=now, payload=payload, actor=ACTOR
    )
    await deps.outbox.add(conn, out)
