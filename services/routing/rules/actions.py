"""Applying a rule's actions to the decision being built (and to the ticket state later
rules read), each described as text for the ticket's audit trail."""

from __future__ import annotations

from dataclasses import replace

from .model import EFFECTS, Action, Decision, TicketState


def describe(action: Action) -> str:
    v = action.value
    return {
        "move_to_inbox": f"move to inbox {v}",
        "set_status": f"set status {v}",
        "assign": f"assign to operator {v}",
        "assign_by_strategy": "hand to the inbox's assignment strategy",
        "add_label": f"add label {v}",
        "remove_label": f"remove label {v}",
        "set_category": f"set category {v}" if v else "clear category",
        "set_priority": f"set priority {v}",
        "mark_spam": "mark as spam",
        "move_to_trash": "move to trash",
        "require_approval": f"require approval (label {v})",
        "stop": "stop further rules",
        "auto_reply": f"automatic reply with template {v}",
        "notify": f"notify {', '.join(action.to)}: {v}",
        "webhook": f"call webhook {v}",
        "require_skill": f"require skill {v} (level {action.level}+)",
    }[action.type]


def apply(action: Action, decision: Decision, ticket: TicketState) -> TicketState:
    """Record the action in the decision; the ticket as later rules see it."""
    v = action.value
    t = action.type
    if t == "move_to_inbox":
        decision.inbox_id = v
        return replace(ticket, inbox_id=v)
    if t == "set_status":
        decision.status = v
        return replace(ticket, status=v)
    if t == "assign":
        decision.assignee_id = v
        decision.assign_by_strategy = False
        return ticket
    if t == "assign_by_strategy":
        decision.assign_by_strategy = True
        decision.assignee_id = None
        return ticket
    if t in ("add_label", "require_approval"):
        if t == "require_approval":
            decision.approval_label = v
        if v in decision.remove_labels:
            decision.remove_labels.remove(v)
        if v not in decision.add_labels:
            decision.add_labels.append(v)
        return replace(ticket, labels=ticket.labels | {v})
    if t == "remove_label":
        if v in decision.add_labels:
            decision.add_labels.remove(v)
        if v not in decision.remove_labels:
            decision.remove_labels.append(v)
        return replace(ticket, labels=ticket.labels - {v})
    if t == "set_category":
        decision.category = v
        return replace(ticket, category=v)
    if t == "set_priority":
        decision.priority = v
        return replace(ticket, priority=v)
    if t == "mark_spam":
        decision.spam = True
        decision.trash = True
        return replace(ticket, status="trash")
    if t == "move_to_trash":
        decision.trash = True
        return replace(ticket, status="trash")
    if t == "stop":
        decision.stopped = True
        return ticket
    if t in EFFECTS:
        # the engine appends this action's trace entry next: its index names the rule
        decision.effects.append((len(decision.trace), action))
        return ticket
    if t == "require_skill":
        key = v.casefold()
        level = max(action.level, decision.required_skills.get(key, ("", 0))[1])
        decision.required_skills[key] = (decision.required_skills.get(key, (v, 0))[0], level)
        return ticket
    raise AssertionError(t)
