"""The live pushes of routing rules' `notify` actions (issue 18): a `ticket.rule_actions`
event becomes one `notification` (kind `rule`) for each of its notify actions that names
the socket's operator — by id (`operator:<id>`), as a member of the ticket's inbox
(`inbox_members`: the inbox is one of theirs, not merely visible to them) or by role
(`role:<name>`). The live hub offers it only to sockets that may see the inbox."""

from __future__ import annotations

import uuid
from typing import Any

from switchboard.v1 import events_pb2

from .auth import Caller
from .views import actor, iso, ticket


def names(to: str, caller: Caller, inbox_id: str) -> bool:
    """Whether the recipient `to` of a notify action is `caller`."""
    if to.startswith("operator:"):
        return to.removeprefix("operator:") == caller.operator_id
    if to == "inbox_members":
        return inbox_id in caller.inbox_ids
    if to.startswith("role:"):
        return to.removeprefix("role:") in caller.roles
    return False


def rule_notifications(env: events_pb2.EventEnvelope, caller: Caller) -> list[dict[str, Any]]:
    if env.WhichOneof("payload") != "rule_actions":
        return []
    actions = env.rule_actions
    inbox_id = actions.ticket.inbox.id
    out: list[dict[str, Any]] = []
    for i, n in enumerate(actions.notifies):
        if not any(names(to, caller, inbox_id) for to in n.to):
            continue
        out.append(
            {
                "type": "notification",
                "kind": "rule",
                # one toast per notify action (the UI keys toasts by event_id)
                "event_id": str(uuid.uuid5(uuid.UUID(env.event_id), str(i))) if i else env.event_id,
                "occurred_at": iso(env.occurred_at),
                "by": actor(env.actor),
                "ticket": ticket(actions.ticket),
                "rule": {"id": n.rule_id, "name": n.rule_name},
                "trigger": actions.trigger,
                "message": n.message,
            }
        )
    return out
