"""What routing's assignment and the priority score read of a ticket (issue 18): the
skills rules require of its assignee, and its contact's customer value kept on it — so
lists sort by the score (`sort=priority_score`) and routing's assigner learns both from
the ticket's events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, identity
from services.runtime.identity import Identity

from .convert import summary_pb
from .deps import Deps
from .records import ticket_of

SKILLS_MAX = 20
LEVEL_MAX = 5


def merged_skills(
    current: Iterable[Mapping[str, Any]], added: Iterable[events_pb2.SkillRequirement]
) -> list[dict[str, Any]]:
    """The ticket's required skills with those a decision adds: a skill named again (any
    case) keeps the higher level; names as first written; at most SKILLS_MAX."""
    out: dict[str, dict[str, Any]] = {}
    for s in current:
        out[str(s["name"]).casefold()] = {"name": str(s["name"]), "min_level": int(s["min_level"])}
    for a in added:
        name = " ".join(a.name.split())[:64]
        if not name:
            continue
        level = min(max(a.min_level, 1), LEVEL_MAX)
        key = name.casefold()
        if key in out:
            out[key]["min_level"] = max(out[key]["min_level"], level)
        elif len(out) < SKILLS_MAX:
            out[key] = {"name": name, "min_level": level}
    return list(out.values())


def skills_text(skills: Iterable[Mapping[str, Any]]) -> str:
    """As the audit trail shows them: "billing 3+, 日本語対応 1+"."""
    return ", ".join(f"{s['name']} {s['min_level']}+" for s in skills)


async def follow_customer_value(
    deps: Deps,
    conn: asyncpg.Connection,
    ident: Identity,
    contact_id: uuid.UUID,
    value: int | None,
    now: datetime,
    actor: common_pb2.Actor | None = None,
) -> None:
    """A contact's customer value changed (an edit, a merge that brought tickets with
    another value, or the customer-data lookup): its tickets keep the new one (their
    priority score moves with it), and those still open or pending are announced
    (ticket.updated, by `actor`, else the operator), so routing's assigner and the
    operators' lists follow."""
    rows = await conn.fetch(
        "UPDATE tickets SET customer_value = $3,"
        " updated_at = CASE WHEN status IN ('open', 'pending') THEN $4 ELSE updated_at END"
        " WHERE tenant_id = $1 AND contact_id = $2 AND customer_value IS DISTINCT FROM $3"
        " RETURNING *",
        uuid.UUID(ident.tenant_id),
        contact_id,
        value,
        now,
    )
    for r in rows:
        row = ticket_of(r)
        if row.status not in ("open", "pending") or row.merged_into is not None:
            continue
        change = events_pb2.FieldChange(
            field="customer_value", new_value="" if value is None else str(value)
        )
        await deps.outbox.add(
            conn,
            events.envelope(
                events.TICKET_UPDATED,
                event_id=deps.ids.new_str(),
                tenant_id=ident.tenant_id,
                occurred_at=now,
                payload=events_pb2.TicketUpdated(
                    ticket=summary_pb(row), changes=[change], action="update"
                ),
                actor=actor or identity.operator_actor(ident),
                correlation_id=ident.correlation_id,
            ),
        )
