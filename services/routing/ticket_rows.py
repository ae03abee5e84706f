"""Routing's rows of tickets (`assign_tickets`) and the operators' load counters
(`assign_loads`) that move with them (migration 003_assignment.sql): what the consumer of
tickets' events and the assigner write, and what the assigner reads (waiting tickets,
loads, tickets due to be taken back). Scoped by tenant; answers are frozen dataclasses."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.runtime.priority_score import CUSTOMER_VALUE_MAX

from .assignment import PRIORITY_POINTS, Waiting
from .ticket_state import Applied, Incoming, LoadKey, Row, TicketState, merged


def uuid_of(value: str) -> uuid.UUID:
    return uuid.UUID(value)


_u = uuid_of


@dataclass(frozen=True, slots=True)
class Unreplied:
    ticket_id: str
    assignee_id: str
    channel: str
    minutes: int


def _state(r: asyncpg.Record) -> TicketState:
    return TicketState(
        ticket_id=str(r["ticket_id"]),
        inbox_id=str(r["inbox_id"]),
        status=r["status"],
        assignee_id=str(r["assignee_id"]) if r["assignee_id"] else None,
        priority=r["priority"],
        version=r["version"],
        channel=r["channel"],
        handed=r["handed"],
        language=r["language"],
        skills=_skills(r["required_skills"]),
        customer_value=r["customer_value"],
    )


def _skills(value: Any) -> tuple[tuple[str, int], ...]:
    return tuple((str(s["name"]), int(s["min_level"])) for s in value or ())


def _skills_json(skills: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    return [{"name": n, "min_level": lv} for n, lv in skills]


# the columns a row's state writes, after ticket_id, in `_args` order: (name, the type of
# its unnest array, the value from the unnest row `v`); a row's excluded operators travel
# as one comma-separated text (an array of arrays does not unnest into rows)
_COLUMNS = (
    ("inbox_id", "uuid", "v.inbox_id"),
    ("channel", "text", "v.channel"),
    ("status", "text", "v.status"),
    ("assignee_id", "uuid", "v.assignee_id"),
    ("priority", "int", "v.priority"),
    ("waiting_since", "timestamptz", "v.waiting_since"),
    ("version", "timestamptz", "v.version"),
    ("by_strategy", "bool", "v.by_strategy"),
    ("assigned_at", "timestamptz", "v.assigned_at"),
    ("replied", "bool", "v.replied"),
    ("excluded", "text", "coalesce(string_to_array(nullif(v.excluded, ''), ',')::uuid[], '{}')"),
    ("handed", "bool", "v.handed"),
    ("language", "text", "v.language"),
    ("required_skills", "text", "v.required_skills::jsonb"),  # JSON text each
    ("customer_value", "bigint", "v.customer_value"),
)
_ROWS = (
    "unnest($2::uuid[], "
    + ", ".join(f"${i + 3}::{t}[]" for i, (_, t, _) in enumerate(_COLUMNS))
    + ") AS v(ticket_id, "
    + ", ".join(c for c, _, _ in _COLUMNS)
    + ")"
)
_INSERT = (
    "INSERT INTO assign_tickets (tenant_id, ticket_id, "
    + ", ".join(c for c, _, _ in _COLUMNS)
    + ") SELECT $1::uuid, v.ticket_id, "
    + ", ".join(e for _, _, e in _COLUMNS)
    + f" FROM {_ROWS}"
)
_UPDATE = (
    "UPDATE assign_tickets t SET "
    + ", ".join(f"{c} = {e}" for c, _, e in _COLUMNS)
    + f" FROM {_ROWS} WHERE t.tenant_id = $1 AND t.ticket_id = v.ticket_id"
)


def _unnest(rows: Sequence[Row]) -> list[list[Any]]:
    """The rows' values column by column (ticket_id first, then `_COLUMNS`); the required
    skills as JSON text."""
    columns = [list(c) for c in zip(*(_args(row) for row in rows), strict=True)]
    excluded = 1 + [c for c, _, _ in _COLUMNS].index("excluded")
    columns[excluded] = [",".join(str(x) for x in ex) for ex in columns[excluded]]
    skills = 1 + [c for c, _, _ in _COLUMNS].index("required_skills")
    columns[skills] = [json.dumps(x) for x in columns[skills]]
    return columns


def _row(r: asyncpg.Record) -> Row:
    return Row(
        _state(r),
        waiting_since=r["waiting_since"],
        by_strategy=r["by_strategy"],
        assigned_at=r["assigned_at"],
        replied=r["replied"],
        excluded=tuple(str(x) for x in r["excluded"]),
    )


def _args(row: Row) -> tuple[Any, ...]:
    s = row.state
    return (
        _u(s.ticket_id),
        _u(s.inbox_id),
        s.channel,
        s.status,
        _u(s.assignee_id) if s.assignee_id else None,
        s.priority,
        row.waiting_since,
        s.version,
        row.by_strategy,
        row.assigned_at,
        row.replied,
        list(row.excluded),
        s.handed,
        s.language,
        _skills_json(s.skills),
        s.customer_value,
    )


class TicketRows:
    async def apply_state(self, conn: asyncpg.Connection, tenant: str, inc: Incoming) -> Applied:
        """`apply_states` for one ticket."""
        return (await self.apply_states(conn, tenant, [inc]))[0]

    async def apply_states(
        self, conn: asyncpg.Connection, tenant: str, incoming: Sequence[Incoming]
    ) -> list[Applied]:
        """Take tickets' states into their rows (each unless its row is newer:
        `ticket_state.merged`) and move the load counters with them, in the caller's
        transaction, in a few statements whatever their number. Each ticket at most once.
        The caller holds the tenant's assignment lock (`AssignRepo.lock_tenant`), as every
        writer of these rows does, so no other transaction inserts one meanwhile."""
        if not incoming:
            return []
        t = _u(tenant)
        ids = [_u(i.state.ticket_id) for i in incoming]
        if len(set(ids)) != len(ids):
            raise ValueError("a ticket twice in one apply_states")
        found = await conn.fetch(
            "SELECT * FROM assign_tickets WHERE tenant_id = $1 AND ticket_id = ANY($2::uuid[])"
            " ORDER BY ticket_id FOR UPDATE",
            t,
            ids,
        )
        rows = {str(r["ticket_id"]): _row(r) for r in found}
        out: dict[str, Applied] = {}
        updates: list[Row] = []
        inserts: list[Row] = []
        moves: dict[LoadKey, int] = defaultdict(int)
        for inc in incoming:
            old = rows.get(inc.state.ticket_id)
            m = merged(old, inc)
            out[inc.state.ticket_id] = m.applied
            if m.row is not None:
                (updates if old is not None else inserts).append(m.row)
            for key, delta in m.moves:
                moves[key] += delta
        if inserts:
            await conn.execute(_INSERT, t, *_unnest(inserts))
        if updates:
            await conn.execute(_UPDATE, t, *_unnest(updates))
        await self._move(conn, t, [(k, d) for k, d in moves.items() if d])
        return [out[i.state.ticket_id] for i in incoming]

    async def _move(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, moves: Sequence[tuple[LoadKey, int]]
    ) -> None:
        if not moves:
            return
        await conn.executemany(
            "INSERT INTO assign_loads (tenant_id, operator_id, inbox_id, channel, tickets)"
            " VALUES ($1, $2, $3, $4, GREATEST($5, 0))"
            " ON CONFLICT (tenant_id, operator_id, inbox_id, channel) DO UPDATE"
            " SET tickets = GREATEST(assign_loads.tickets + $5, 0)",
            [
                (tenant, _u(operator), _u(inbox), channel, delta)
                for (operator, inbox, channel), delta in moves
            ],
        )

    async def loads(
        self, conn: asyncpg.Connection, tenant: str
    ) -> dict[str, dict[tuple[str, str], int]]:
        """Every operator's open + pending tickets by (inbox, channel)."""
        rows = await conn.fetch(
            "SELECT operator_id, inbox_id, channel, tickets FROM assign_loads"
            " WHERE tenant_id = $1 AND tickets > 0",
            _u(tenant),
        )
        out: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        for r in rows:
            out[str(r["operator_id"])][(str(r["inbox_id"]), r["channel"])] = r["tickets"]
        return dict(out)

    async def waiting(
        self, conn: asyncpg.Connection, tenant: str, inboxes: Iterable[str], limit: int
    ) -> list[Waiting]:
        """Open unassigned tickets of these inboxes, or that a rule handed to the inbox's
        strategy, the highest priority score first (`assignment.ranked_since`)."""
        points = [PRIORITY_POINTS.get(p, PRIORITY_POINTS[2]) for p in range(5)]
        rows = await conn.fetch(
            "SELECT ticket_id, inbox_id, channel, waiting_since, priority, excluded, handed,"
            " language, required_skills, customer_value"
            " FROM assign_tickets WHERE tenant_id = $1"
            " AND (inbox_id = ANY($2::uuid[]) OR handed)"
            " AND assignee_id IS NULL AND status = 'open'"
            " ORDER BY waiting_since - make_interval(mins => ($4::int[])[priority + 1]"
            " + least(greatest(customer_value, 0), $5)::int),"
            " waiting_since, ticket_id LIMIT $3",
            _u(tenant),
            [_u(i) for i in inboxes],
            limit,
            points,
            CUSTOMER_VALUE_MAX,
        )
        return [
            Waiting(
                str(r["ticket_id"]),
                str(r["inbox_id"]),
                r["channel"],
                r["waiting_since"],
                r["priority"],
                frozenset(str(x) for x in r["excluded"]),
                r["handed"],
                language=r["language"],
                skills=_skills(r["required_skills"]),
                customer_value=r["customer_value"],
            )
            for r in rows
        ]

    async def tenants_with_work(self, conn: asyncpg.Connection) -> list[str]:
        """Tenants with a waiting ticket in an inbox with a strategy (or handed to one by a
        rule), or with a ticket the strategy gave that may be due to be taken back."""
        rows = await conn.fetch(
            "SELECT t.tenant_id FROM assign_tickets t LEFT JOIN assign_policies p"
            " ON p.tenant_id = t.tenant_id AND p.inbox_id = t.inbox_id"
            " WHERE t.assignee_id IS NULL AND t.status = 'open'"
            " AND (t.handed OR p.strategy <> 'manual')"
            " UNION SELECT t.tenant_id FROM assign_tickets t JOIN assign_policies p"
            " ON p.tenant_id = t.tenant_id AND p.inbox_id = t.inbox_id"
            " WHERE t.by_strategy AND NOT t.replied AND t.status = 'open'"
            " AND p.reassign_after_minutes IS NOT NULL"
        )
        return [str(r["tenant_id"]) for r in rows]

    async def unreplied(
        self, conn: asyncpg.Connection, tenant: str, now: datetime
    ) -> list[Unreplied]:
        """Tickets the assigner gave someone who has not replied within the inbox's limit."""
        rows = await conn.fetch(
            "SELECT t.ticket_id, t.assignee_id, t.channel, p.reassign_after_minutes"
            " FROM assign_tickets t JOIN assign_policies p"
            " ON p.tenant_id = t.tenant_id AND p.inbox_id = t.inbox_id"
            " WHERE t.tenant_id = $1 AND t.by_strategy AND NOT t.replied AND t.status = 'open'"
            " AND p.strategy <> 'manual' AND p.reassign_after_minutes IS NOT NULL"
            " AND t.assigned_at"
            " <= $2::timestamptz - make_interval(mins => p.reassign_after_minutes)"
            " ORDER BY t.assigned_at LIMIT 500",
            _u(tenant),
            now,
        )
        return [
            Unreplied(
                str(r["ticket_id"]),
                str(r["assignee_id"]),
                r["channel"],
                r["reassign_after_minutes"],
            )
            for r in rows
        ]
