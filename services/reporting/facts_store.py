"""Reporting's facts tables: the facts (inserted once: a fact whose (tenant, metric, key) is
there already is skipped), the queue of facts the roller has not folded yet, and the
small state kept from events (a ticket's; a send's author)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from .facts import NewFact, TicketState

FACT_COLUMNS = (
    "tenant_id",
    "metric",
    "key",
    "at",
    "inbox_id",
    "ticket_id",
    "operator_id",
    "other_operator_id",
    "channel",
    "category",
    "priority",
    "labels",
    "wall_s",
    "business_s",
)


def _uuid(v: str | None) -> uuid.UUID | None:
    """An id as a uuid; None for none or for an actor that is not an operator's uuid."""
    if not v:
        return None
    try:
        return uuid.UUID(v)
    except ValueError:
        return None


def fact_row(f: NewFact) -> tuple[object, ...]:
    return (
        uuid.UUID(f.tenant_id),
        f.metric,
        f.key,
        f.at,
        uuid.UUID(f.inbox_id),
        _uuid(f.ticket_id),
        _uuid(f.operator_id),
        _uuid(f.other_operator_id),
        f.channel,
        f.category,
        f.priority,
        list(f.labels),
        f.wall_s,
        f.business_s,
    )


async def insert_facts(conn: asyncpg.Connection, facts: Sequence[NewFact]) -> int:
    """Insert the facts not there yet and queue them for the roller; how many were new."""
    unique: dict[tuple[str, str, str], NewFact] = {}
    for f in facts:  # the first of a key, as one by one
        if _uuid(f.inbox_id) is not None:
            unique.setdefault((f.tenant_id, f.metric, f.key), f)
    facts = list(unique.values())
    if not facts:
        return 0
    rows = [fact_row(f) for f in facts]
    cols = list(zip(*rows, strict=True))
    inserted = await conn.fetch(
        """WITH new AS (
             INSERT INTO facts (tenant_id, metric, key, at, inbox_id, ticket_id, operator_id,
                 other_operator_id, channel, category, priority, labels, wall_s, business_s)
             SELECT t, m, k, a, i, tk, o, oo, ch, ca, p,
                    coalesce(
                      (SELECT array_agg(x) FROM jsonb_array_elements_text(l::jsonb) x), '{}'),
                    w, b
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[],
                         $6::uuid[], $7::uuid[], $8::uuid[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::float8[], $14::float8[])
                  AS x(t, m, k, a, i, tk, o, oo, ch, ca, p, l, w, b)
             ON CONFLICT (tenant_id, metric, key) DO NOTHING
             RETURNING id)
           INSERT INTO facts_unrolled (fact_id) SELECT id FROM new RETURNING fact_id""",
        *cols[:11],
        [_json_list(v) for v in cols[11]],
        *cols[12:],
    )
    return len(inserted)


def _json_list(v: object) -> str:
    return json.dumps(list(v) if isinstance(v, list | tuple) else [])


# -- a ticket's state ----------------------------------------------------------------------

_STATE_COLUMNS = (
    "ticket_id, inbox_id, channel, category, priority, labels, status, assignee_id, "
    "arrived_at, first_reply_at, waiting_since, waiting_key, episode, episode_started_at, "
    "episode_closed_at"
)


async def ticket_state(conn: asyncpg.Connection, tenant: str, ticket_id: str) -> TicketState | None:
    """The ticket's state, locked for the caller's transaction."""
    tid = _uuid(ticket_id)
    if tid is None:
        return None
    r = await conn.fetchrow(
        f"SELECT {_STATE_COLUMNS} FROM fact_tickets WHERE tenant_id = $1 AND ticket_id = $2 "
        "FOR UPDATE",
        uuid.UUID(tenant),
        tid,
    )
    if r is None:
        return None
    return TicketState(
        ticket_id=str(r["ticket_id"]),
        inbox_id=str(r["inbox_id"]),
        channel=r["channel"],
        category=r["category"],
        priority=r["priority"],
        labels=tuple(r["labels"]),
        status=r["status"],
        assignee_id=str(r["assignee_id"]) if r["assignee_id"] else None,
        arrived_at=r["arrived_at"],
        first_reply_at=r["first_reply_at"],
        waiting_since=r["waiting_since"],
        waiting_key=r["waiting_key"],
        episode=r["episode"],
        episode_started_at=r["episode_started_at"],
        episode_closed_at=r["episode_closed_at"],
    )


def savable(s: TicketState) -> bool:
    return _uuid(s.ticket_id) is not None and _uuid(s.inbox_id) is not None


async def save_tickets(
    conn: asyncpg.Connection, states: Sequence[tuple[tuple[str, str], TicketState]]
) -> None:
    """Write tickets' states ((tenant, ticket id), state) in one pipelined round."""
    rows = [
        (
            uuid.UUID(tenant),
            uuid.UUID(s.ticket_id),
            uuid.UUID(s.inbox_id),
            s.channel,
            s.category,
            s.priority,
            list(s.labels),
            s.status,
            _uuid(s.assignee_id),
            s.arrived_at,
            s.first_reply_at,
            s.waiting_since,
            s.waiting_key,
            s.episode,
            s.episode_started_at,
            s.episode_closed_at,
        )
        for (tenant, _), s in states
        if savable(s)
    ]
    if not rows:
        return
    await conn.executemany(
        f"""INSERT INTO fact_tickets (tenant_id, {_STATE_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET
              inbox_id = EXCLUDED.inbox_id, channel = EXCLUDED.channel,
              category = EXCLUDED.category, priority = EXCLUDED.priority,
              labels = EXCLUDED.labels, status = EXCLUDED.status,
              assignee_id = EXCLUDED.assignee_id, arrived_at = EXCLUDED.arrived_at,
              first_reply_at = EXCLUDED.first_reply_at,
              waiting_since = EXCLUDED.waiting_since, waiting_key = EXCLUDED.waiting_key,
              episode = EXCLUDED.episode, episode_started_at = EXCLUDED.episode_started_at,
              episode_closed_at = EXCLUDED.episode_closed_at""",
        rows,
    )


# -- sends ---------------------------------------------------------------------------------


async def record_send(
    conn: asyncpg.Connection,
    tenant: str,
    send_id: str,
    operator_id: str | None,
    kind: str,
    message_id: str,
    inbox_id: str,
    ticket_id: str | None,
    at: datetime,
    draft_kind: str = "",
) -> None:
    sid, inbox = _uuid(send_id), _uuid(inbox_id)
    if sid is None or inbox is None:
        return
    await conn.execute(
        """INSERT INTO fact_sends (tenant_id, send_id, operator_id, kind, message_id, inbox_id,
               ticket_id, submitted_at, draft_kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (tenant_id, send_id) DO NOTHING""",
        uuid.UUID(tenant),
        sid,
        _uuid(operator_id),
        kind,
        message_id,
        inbox,
        _uuid(ticket_id),
        at,
        draft_kind,
    )


async def send_author(
    conn: asyncpg.Connection, tenant: str, send_id: str
) -> tuple[str | None, str]:
    """The send's author (None: none known, or an automatic reply) and its draft's kind."""
    sid = _uuid(send_id)
    if sid is None:
        return None, ""
    found = await conn.fetchrow(
        "SELECT operator_id, draft_kind FROM fact_sends WHERE tenant_id = $1 AND send_id = $2",
        uuid.UUID(tenant),
        sid,
    )
    if found is None:
        return None, ""
    return (str(found["operator_id"]) if found["operator_id"] else None), found["draft_kind"]


async def author_of_message(conn: asyncpg.Connection, tenant: str, message_id: str) -> str | None:
    """The author of the send whose Message-ID is `message_id` (a mail of ours filed)."""
    if not message_id:
        return None
    found = await conn.fetchval(
        "SELECT operator_id FROM fact_sends WHERE tenant_id = $1 AND message_id = $2 "
        "AND operator_id IS NOT NULL LIMIT 1",
        uuid.UUID(tenant),
        message_id,
    )
    return str(found) if found else None
