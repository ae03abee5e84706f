"""Routing's rows of tickets (`assign_tickets`) and the operators' load counters
(`assign_loads`) that move with them (migration 003_assignment.sql): what the consumer of
tickets' events and the assigner write, and what the assigner reads (waiting tickets,
loads, tickets due to be taken back). Scoped by tenant; answers are frozen dataclasses."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from services.runtime.priority_score import CUSTOMER_VALUE_MAX

from .assignment import PRIORITY_POINTS, Waiting
from .ticket_state import TicketState, load_moves


def uuid_of(value: str) -> uuid.UUID:
    return uuid.UUID(value)


_u = uuid_of


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of applying a ticket's state to its row."""

    changed: bool  # the row took the state (it was not older)
    waiting: bool  # the ticket is now open and unassigned
    freed: bool  # someone's load went down


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


class TicketRows:
    async def apply_state(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        state: TicketState,
        *,
        channel: str = "",
        by_strategy: bool = False,
        replied: bool = False,
        exclude: str | None = None,
    ) -> Applied:
        """Take a ticket's state into its row (unless the row is newer) and move the load
        counters with it, in the caller's transaction. `channel` is known from
        ticket.created only; `by_strategy`: the assigner chose this assignee; `replied`:
        we sent a mail on it; `exclude`: an operator it must not go to again."""
        t = _u(tenant)
        row = await conn.fetchrow(
            "SELECT * FROM assign_tickets WHERE tenant_id = $1 AND ticket_id = $2 FOR UPDATE",
            t,
            _u(state.ticket_id),
        )
        if row is None:
            inserted = await conn.fetchrow(
                "INSERT INTO assign_tickets (tenant_id, ticket_id, inbox_id, channel, status,"
                " assignee_id, priority, waiting_since, version, by_strategy, assigned_at,"
                " replied, handed, language, required_skills, customer_value)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                " ON CONFLICT DO NOTHING RETURNING ticket_id",
                t,
                _u(state.ticket_id),
                _u(state.inbox_id),
                channel or state.channel,
                state.status,
                _u(state.assignee_id) if state.assignee_id else None,
                state.priority,
                state.version,
                state.version,
                by_strategy and state.assignee_id is not None,
                state.version if state.assignee_id else None,
                replied,
                state.handed,
                state.language,
                _skills_json(state.skills),
                state.customer_value,
            )
            if inserted is None:  # another replica inserted it meanwhile: apply on top
                return await self.apply_state(
                    conn,
                    tenant,
                    state,
                    channel=channel,
                    by_strategy=by_strategy,
                    replied=replied,
                    exclude=exclude,
                )
            stored = replace(state, channel=channel or state.channel)
            await self._move(conn, t, load_moves(None, stored))
            return Applied(True, stored.waiting, False)
        old = _state(row)
        if state.version < old.version:
            if replied and not row["replied"]:
                await conn.execute(
                    "UPDATE assign_tickets SET replied = true WHERE tenant_id = $1"
                    " AND ticket_id = $2",
                    t,
                    row["ticket_id"],
                )
            return Applied(False, old.waiting, False)
        new = replace(state, channel=channel or old.channel)
        moves = load_moves(old, new)
        await self._move(conn, t, moves)
        reassigned = old.assignee_id != new.assignee_id
        became_waiting = new.waiting and not old.waiting
        waiting_since = new.version if became_waiting else row["waiting_since"]
        excluded = list(row["excluded"])
        if exclude is not None and _u(exclude) not in excluded:
            excluded.append(_u(exclude))
        await conn.execute(
            "UPDATE assign_tickets SET inbox_id = $3, channel = $4, status = $5,"
            " assignee_id = $6, priority = $7, waiting_since = $8, version = $9,"
            " by_strategy = $10, assigned_at = $11, replied = $12, excluded = $13,"
            " handed = $14, language = $15, required_skills = $16, customer_value = $17"
            " WHERE tenant_id = $1 AND ticket_id = $2",
            t,
            row["ticket_id"],
            _u(new.inbox_id),
            new.channel,
            new.status,
            _u(new.assignee_id) if new.assignee_id else None,
            new.priority,
            waiting_since,
            new.version,
            (by_strategy and new.assignee_id is not None) if reassigned else row["by_strategy"],
            (new.version if new.assignee_id else None) if reassigned else row["assigned_at"],
            row["replied"] or replied,
            excluded,
            new.handed,
            new.language,
            _skills_json(new.skills),
            new.customer_value,
        )
        return Applied(True, new.waiting, any(d < 0 for _, d in moves))

    async def _move(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, moves: Sequence[tuple[Any, int]]
    ) -> None:
        for (operator, inbox, channel), delta in moves:
            await conn.execute(
                "INSERT INTO assign_loads (tenant_id, operator_id, inbox_id, channel, tickets)"
                " VALUES ($1, $2, $3, $4, GREATEST($5, 0))"
                " ON CONFLICT (tenant_id, operator_id, inbox_id, channel) DO UPDATE"
                " SET tickets = GREATEST(assign_loads.tickets + $5, 0)",
                tenant,
                _u(operator),
                _u(inbox),
                channel,
                delta,
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
