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
from .ticket_state import Applied, Incoming, LoadKey, Row, TicketState, load_moves, merged


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


_ROW_COLUMNS = (
    "ticket_id, inbox_id, channel, status, assignee_id, priority, waiting_since, version,"
    " by_strategy, assigned_at, replied, excluded, handed, language, required_skills,"
    " customer_value"
)


def _row(r: asyncpg.Record) -> Row:
    return Row(
        _state(r),
        waiting_since=r["waiting_since"],
        by_strategy=r["by_strategy"],
        assigned_at=r["assigned_at"],
        replied=r["replied"],
        excluded=tuple(str(x) for x in r["excluded"]),
    )


def _args(t: uuid.UUID, row: Row) -> tuple[Any, ...]:
    s = row.state
    return (
        t,
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
        [_u(x) for x in row.excluded],
        s.handed,
        s.language,
        _skills_json(s.skills),
        s.customer_value,
    )


def _columns(rows: Sequence[Row]) -> list[list[Any]]:
    """The rows' values column by column (in `_ROW_COLUMNS` order) for unnest; the
    excluded operators of each as one comma-separated text, the required skills as JSON
    text."""
    values = [_args(uuid.UUID(int=0), row)[1:] for row in rows]
    columns = [list(c) for c in zip(*values, strict=True)]
    columns[11] = [",".join(str(x) for x in ex) for ex in columns[11]]
    columns[14] = [json.dumps(x) for x in columns[14]]
    return columns


class TicketRows:
    async def apply_state(self, conn: asyncpg.Connection, tenant: str, inc: Incoming) -> Applied:
        """`apply_states` for one ticket."""
        return (await self.apply_states(conn, tenant, [inc]))[0]

    async def apply_states(
        self, conn: asyncpg.Connection, tenant: str, incoming: Sequence[Incoming]
    ) -> list[Applied]:
        """Take tickets' states into their rows (each unless its row is newer:
        `ticket_state.merged`) and move the load counters with them, in the caller's
        transaction, in a few statements whatever their number. Each ticket at most once."""
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
            taken = await conn.fetch(
                f"INSERT INTO assign_tickets (tenant_id, {_ROW_COLUMNS})"
                " SELECT $1::uuid, v.ticket_id, v.inbox_id, v.channel, v.status, v.assignee_id,"
                " v.priority, v.waiting_since, v.version, v.by_strategy, v.assigned_at,"
                " v.replied, coalesce(string_to_array(nullif(v.excluded, ''), ',')::uuid[], '{}'),"
                " v.handed, v.language, v.required_skills::jsonb, v.customer_value"
                " FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[],"
                " $6::uuid[], $7::int[], $8::timestamptz[], $9::timestamptz[], $10::bool[],"
                " $11::timestamptz[], $12::bool[], $13::text[], $14::bool[], $15::text[],"
                " $16::text[], $17::bigint[]) AS v(ticket_id,"
                " inbox_id, channel, status, assignee_id, priority, waiting_since, version,"
                " by_strategy, assigned_at, replied, excluded, handed, language,"
                " required_skills, customer_value)"
                " ON CONFLICT DO NOTHING RETURNING ticket_id",
                t,
                *_columns(inserts),
            )
            kept = {str(r["ticket_id"]) for r in taken}
            again = [
                i
                for i in incoming
                if i.state.ticket_id not in rows and i.state.ticket_id not in kept
            ]
            for row in inserts:
                if row.state.ticket_id not in kept:  # another replica inserted it meanwhile
                    for key, delta in load_moves(None, row.state):
                        moves[key] -= delta
            if again:  # apply on top of what the other replica inserted
                for inc, applied in zip(
                    again, await self.apply_states(conn, tenant, again), strict=True
                ):
                    out[inc.state.ticket_id] = applied
        if updates:
            await conn.executemany(
                "UPDATE assign_tickets SET inbox_id = $3, channel = $4, status = $5,"
                " assignee_id = $6, priority = $7, waiting_since = $8, version = $9,"
                " by_strategy = $10, assigned_at = $11, replied = $12, excluded = $13,"
                " handed = $14, language = $15, required_skills = $16, customer_value = $17"
                " WHERE tenant_id = $1 AND ticket_id = $2",
                [_args(t, row) for row in updates],
            )
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
