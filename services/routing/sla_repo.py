"""routing's SLA storage (its own database): calendars, policies, each ticket's facts and
the due-time index. Every query names the tenant, but the index's claim, which serves
every tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeAlias

import asyncpg

from services.runtime.calendars import Calendar
from services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

from .sla import Happening, Kind, Policy
from .sla_records import (
    DueTimer,
    SlaTicket,
    StoredCalendar,
    StoredPolicy,
    calendar_of,
    happening_of,
    holidays_data,
    policy_of,
    slots_data,
    ticket_of,
    timer_of,
)

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
# the SLA's targets in the due-time index (the rule timers have their own: rule_timers.py)
SLA_TARGETS = tuple(k.value for k in Kind)


class DueAt(Protocol):
    """A timer for the index: an SLA `Timer`, or a rule timer."""

    @property
    def kind(self) -> str: ...
    @property
    def which(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def fire_at(self) -> datetime: ...
    @property
    def due_at(self) -> datetime: ...


def _t(tenant: str) -> uuid.UUID:
    return uuid.UUID(tenant)


class SlaRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- calendars -----------------------------------------------------------------------

    async def calendars(self, conn: Conn, tenant: str) -> list[StoredCalendar]:
        rows = await conn.fetch(
            "SELECT * FROM sla_calendars WHERE tenant_id = $1 ORDER BY lower(name), id",
            _t(tenant),
        )
        return [calendar_of(r) for r in rows]

    async def calendar(self, conn: Conn, tenant: str, calendar_id: uuid.UUID) -> StoredCalendar:
        row = await conn.fetchrow(
            "SELECT * FROM sla_calendars WHERE tenant_id = $1 AND id = $2",
            _t(tenant),
            calendar_id,
        )
        if row is None:
            raise NotFound("no such calendar", field="calendar_id")
        return calendar_of(row)

    async def save_calendar(
        self,
        conn: Conn,
        tenant: str,
        calendar_id: str,
        name: str,
        cal: Calendar,
        now: datetime,
        *,
        create: bool,
        version: int = 0,
    ) -> StoredCalendar:
        """Inserts it (`create`) or replaces it (when `version` is 0 or still current)."""
        args = (
            _t(tenant),
            uuid.UUID(calendar_id),
            name,
            cal.time_zone,
            cal.public_holidays,
            slots_data(cal.slots),
            holidays_data(cal.holidays),
            now,
        )
        try:
            if create:
                row = await conn.fetchrow(
                    "INSERT INTO sla_calendars (tenant_id, id, name, time_zone, "
                    "public_holidays, slots, holidays, created_at, updated_at) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) RETURNING *",
                    *args,
                )
            else:
                row = await conn.fetchrow(
                    "UPDATE sla_calendars SET name = $3, time_zone = $4, public_holidays = $5, "
                    "slots = $6, holidays = $7, updated_at = $8, version = version + 1 "
                    "WHERE tenant_id = $1 AND id = $2 AND ($9 = 0 OR version = $9) RETURNING *",
                    *args,
                    version,
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("a calendar of that name exists", field="name") from None
        if row is None:
            current = await self.calendar(conn, tenant, uuid.UUID(calendar_id))
            raise FailedPrecondition(
                f"the calendar was changed meanwhile (version {current.version}): reload it",
                field="version",
            )
        return calendar_of(row)

    async def delete_calendar(self, conn: Conn, tenant: str, calendar_id: uuid.UUID) -> None:
        try:
            done = await conn.execute(
                "DELETE FROM sla_calendars WHERE tenant_id = $1 AND id = $2",
                _t(tenant),
                calendar_id,
            )
        except asyncpg.ForeignKeyViolationError:
            raise FailedPrecondition(
                "an SLA policy uses this calendar: change the policy first", field="calendar_id"
            ) from None
        if done == "DELETE 0":
            raise NotFound("no such calendar", field="calendar_id")

    # -- policies ------------------------------------------------------------------------

    async def policies(self, conn: Conn, tenant: str) -> list[StoredPolicy]:
        rows = await conn.fetch(
            "SELECT * FROM sla_policies WHERE tenant_id = $1 ORDER BY position, id", _t(tenant)
        )
        return [policy_of(r) for r in rows]

    async def policy(self, conn: Conn, tenant: str, policy_id: uuid.UUID) -> StoredPolicy:
        row = await conn.fetchrow(
            "SELECT * FROM sla_policies WHERE tenant_id = $1 AND id = $2", _t(tenant), policy_id
        )
        if row is None:
            raise NotFound("no such SLA policy", field="policy_id")
        return policy_of(row)

    async def save_policy(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        p: Policy,
        now: datetime,
        *,
        create: bool,
        version: int = 0,
    ) -> StoredPolicy:
        """Inserts or replaces it (in a transaction), then numbers the tenant's policies
        1, 2, 3 … with this one at its position (0: last)."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sla_policies' || $1))", tenant)
        args = (
            _t(tenant),
            uuid.UUID(p.id),
            p.name,
            p.enabled,
            list(p.inbox_ids),
            list(p.categories),
            list(p.priorities),
            uuid.UUID(p.calendar_id) if p.calendar_id else None,
            p.first_response_minutes,
            p.next_response_minutes,
            p.resolution_minutes,
            list(p.pause_statuses),
            p.warn_before_minutes,
            p.warn_at_percent,
            now,
        )
        try:
            if create:
                row = await conn.fetchrow(
                    "INSERT INTO sla_policies (tenant_id, id, name, enabled, inbox_ids, "
                    "categories, priorities, calendar_id, first_response_minutes, "
                    "next_response_minutes, resolution_minutes, pause_statuses, "
                    "warn_before_minutes, warn_at_percent, created_at, updated_at, position) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$15,0) "
                    "RETURNING id",
                    *args,
                )
            else:
                row = await conn.fetchrow(
                    "UPDATE sla_policies SET name = $3, enabled = $4, inbox_ids = $5, "
                    "categories = $6, priorities = $7, calendar_id = $8, "
                    "first_response_minutes = $9, next_response_minutes = $10, "
                    "resolution_minutes = $11, pause_statuses = $12, "
                    "warn_before_minutes = $13, warn_at_percent = $14, updated_at = $15, "
                    "version = version + 1 "
                    "WHERE tenant_id = $1 AND id = $2 AND ($16 = 0 OR version = $16) "
                    "RETURNING id",
                    *args,
                    version,
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("an SLA policy of that name exists", field="name") from None
        except asyncpg.ForeignKeyViolationError:
            raise InvalidArgument("no such calendar", field="calendar_id") from None
        if row is None:
            current = await self.policy(conn, tenant, uuid.UUID(p.id))
            raise FailedPrecondition(
                f"the policy was changed meanwhile (version {current.version}): reload it",
                field="version",
            )
        await self._renumber(conn, tenant, p.id, p.position)
        return await self.policy(conn, tenant, uuid.UUID(p.id))

    async def _renumber(
        self, conn: asyncpg.Connection, tenant: str, moved: str, position: int
    ) -> None:
        ids = [
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM sla_policies WHERE tenant_id = $1 AND id <> $2 "
                "ORDER BY position, id",
                _t(tenant),
                uuid.UUID(moved) if moved else None,
            )
        ]
        if moved:
            at = len(ids) if position <= 0 else min(position - 1, len(ids))
            ids.insert(at, moved)
        await conn.executemany(
            "UPDATE sla_policies SET position = $3 WHERE tenant_id = $1 AND id = $2 "
            "AND position <> $3",
            [(_t(tenant), uuid.UUID(i), n) for n, i in enumerate(ids, start=1)],
        )

    async def delete_policy(
        self, conn: asyncpg.Connection, tenant: str, policy_id: uuid.UUID
    ) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sla_policies' || $1))", tenant)
        done = await conn.execute(
            "DELETE FROM sla_policies WHERE tenant_id = $1 AND id = $2", _t(tenant), policy_id
        )
        if done == "DELETE 0":
            raise NotFound("no such SLA policy", field="policy_id")
        await self._renumber(conn, tenant, "", 0)

    # -- tickets -------------------------------------------------------------------------

    async def ticket(
        self, conn: Conn, tenant: str, ticket_id: str, *, lock: bool = False
    ) -> SlaTicket | None:
        row = await conn.fetchrow(
            "SELECT * FROM sla_tickets WHERE tenant_id = $1 AND ticket_id = $2"
            + (" FOR UPDATE" if lock else ""),
            _t(tenant),
            uuid.UUID(ticket_id),
        )
        return ticket_of(row) if row else None

    async def upsert_ticket(self, conn: asyncpg.Connection, tenant: str, t: SlaTicket) -> None:
        """Its inbox, category, priority, status and pending-until date now (the creation
        facts stay)."""
        await conn.execute(
            "INSERT INTO sla_tickets (tenant_id, ticket_id, inbox_id, category, priority, "
            "status, created_at, opened_by_operator, pending_until) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
            "ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET inbox_id = $3, category = $4, "
            "priority = $5, status = $6, pending_until = $9",
            _t(tenant),
            uuid.UUID(t.ticket_id),
            t.inbox_id,
            t.category,
            t.priority,
            t.status,
            t.created_at,
            t.opened_by_operator,
            t.pending_until,
        )

    async def add_history(
        self, conn: asyncpg.Connection, tenant: str, ticket_id: str, event_id: str, h: Happening
    ) -> None:
        await conn.execute(
            "INSERT INTO sla_history (tenant_id, ticket_id, event_id, what, at, status) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            _t(tenant),
            uuid.UUID(ticket_id),
            uuid.UUID(event_id),
            h.what.value,
            h.at,
            h.status,
        )

    async def history(self, conn: Conn, tenant: str, ticket_id: str) -> list[Happening]:
        rows = await conn.fetch(
            "SELECT what, at, status FROM sla_history WHERE tenant_id = $1 AND ticket_id = $2 "
            "ORDER BY at, event_id",
            _t(tenant),
            uuid.UUID(ticket_id),
        )
        return [happening_of(r) for r in rows]

    async def save_sla(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        ticket_id: str,
        policy_id: str,
        state: str,
        next_due_at: datetime | None,
    ) -> bool:
        """Keeps the ticket's SLA as computed; whether its state or due time changed."""
        row = await conn.fetchrow(
            "UPDATE sla_tickets t SET policy_id = $3, state = $4, next_due_at = $5 "
            "FROM sla_tickets old WHERE t.tenant_id = $1 AND t.ticket_id = $2 "
            "AND old.tenant_id = t.tenant_id AND old.ticket_id = t.ticket_id "
            "RETURNING old.policy_id IS NOT DISTINCT FROM $3 AND old.state = $4 "
            "AND old.next_due_at IS NOT DISTINCT FROM $5 AS same",
            _t(tenant),
            uuid.UUID(ticket_id),
            uuid.UUID(policy_id) if policy_id else None,
            state,
            next_due_at,
        )
        return row is not None and not row["same"]

    async def running_tickets(self, conn: Conn, tenant: str, after: str, limit: int) -> list[str]:
        """Tickets whose SLA may change with a policy or calendar (not closed), by id —
        also a new ticket routing noted while routing its mail whose ticket.created it has
        not followed yet (its recompute then waits for that event's transaction)."""
        rows = await conn.fetch(
            "SELECT ticket_id FROM sla_tickets WHERE tenant_id = $1 AND ticket_id > $2 "
            "AND status NOT IN ('resolved', 'no_action', 'trash', 'merged') "
            "ORDER BY ticket_id LIMIT $3",
            _t(tenant),
            uuid.UUID(after) if after else uuid.UUID(int=0),
            limit,
        )
        return [str(r["ticket_id"]) for r in rows]

    # -- the due-time index --------------------------------------------------------------

    async def replace_timers(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        ticket_id: str,
        timers: Sequence[DueAt],
        targets: Sequence[str] = SLA_TARGETS,
    ) -> datetime | None:
        """The ticket's timers of `targets` become `timers`, less those already fired; the
        soonest."""
        await conn.execute(
            "DELETE FROM sla_timers WHERE tenant_id = $1 AND ticket_id = $2 "
            "AND target = ANY($3::text[])",
            _t(tenant),
            uuid.UUID(ticket_id),
            list(targets),
        )
        if not timers:
            return None
        row = await conn.fetchrow(
            "WITH new AS (INSERT INTO sla_timers "
            "(tenant_id, ticket_id, target, which, started_at, fire_at, due_at) "
            "SELECT $1, $2, t.target, t.which, t.started_at, t.fire_at, t.due_at "
            "FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], "
            "$7::timestamptz[]) AS t(target, which, started_at, fire_at, due_at) "
            "WHERE NOT EXISTS (SELECT 1 FROM sla_fired f WHERE f.tenant_id = $1 "
            "AND f.ticket_id = $2 AND f.target = t.target AND f.which = t.which "
            "AND f.started_at = t.started_at) RETURNING fire_at) "
            "SELECT min(fire_at) AS soonest FROM new",
            _t(tenant),
            uuid.UUID(ticket_id),
            [str(t.kind) for t in timers],
            [t.which for t in timers],
            [t.started_at for t in timers],
            [t.fire_at for t in timers],
            [t.due_at for t in timers],
        )
        soonest: datetime | None = row["soonest"] if row else None
        return soonest

    async def claim_due(
        self, conn: asyncpg.Connection, now: datetime, limit: int
    ) -> list[DueTimer]:
        """The timers due by `now`, locked for this transaction; those another replica
        holds are skipped."""
        rows = await conn.fetch(
            "SELECT d.*, t.inbox_id, t.policy_id FROM sla_timers d JOIN sla_tickets t "
            "ON t.tenant_id = d.tenant_id AND t.ticket_id = d.ticket_id "
            "WHERE d.fire_at <= $1 ORDER BY d.fire_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
            now,
            limit,
        )
        return [timer_of(r) for r in rows]

    async def fire(
        self, conn: asyncpg.Connection, claimed: Sequence[DueTimer], now: datetime
    ) -> list[DueTimer]:
        """Removes the claimed timers and notes them fired, in two statements; those that
        had not fired before."""
        if not claimed:
            return []
        cols = (
            [_t(t.tenant_id) for t in claimed],
            [uuid.UUID(t.ticket_id) for t in claimed],
            [t.target for t in claimed],
            [t.which for t in claimed],
        )
        await conn.execute(
            "DELETE FROM sla_timers d USING unnest($1::uuid[], $2::uuid[], $3::text[], "
            "$4::text[]) AS u(tenant_id, ticket_id, target, which) "
            "WHERE d.tenant_id = u.tenant_id AND d.ticket_id = u.ticket_id "
            "AND d.target = u.target AND d.which = u.which",
            *cols,
        )
        rows = await conn.fetch(
            "INSERT INTO sla_fired (tenant_id, ticket_id, target, which, started_at, fired_at) "
            "SELECT *, $6 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], "
            "$5::timestamptz[]) ON CONFLICT DO NOTHING RETURNING ticket_id, target, which",
            *cols,
            [t.started_at for t in claimed],
            now,
        )
        new = {(str(r["ticket_id"]), r["target"], r["which"]) for r in rows}
        return [t for t in claimed if (t.ticket_id, t.target, t.which) in new]

    async def next_fire_at(self, conn: Conn) -> datetime | None:
        found: datetime | None = await conn.fetchval("SELECT min(fire_at) FROM sla_timers")
        return found
