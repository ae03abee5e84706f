"""The assigner (RTE-2): gives waiting tickets to present operators through tickets'
AssignTicket, which assigns only if the ticket is still unassigned.

A pass for a tenant runs in one routing transaction under a per-tenant advisory lock, so
with several routing replicas one pass at a time sees and moves the tenant's loads: a
ticket is assigned once and no capacity is exceeded. The pass first takes back tickets
the strategy gave someone who has not replied within the inbox's limit, then plans
(`assignment.plan`) and assigns; each answer of tickets goes into routing's row of the
ticket and its load counters at once (the ticket.assigned event that follows changes
nothing more).

Passes run when woken — a waiting ticket arrived, someone's load went down, an operator
came online — and every `every_s` (tiers widen and presences lapse with time). Each
replica runs them; the lock makes the second wait and find nothing left to do.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
from switchboard.v1 import tickets_pb2

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import Unavailable
from services.runtime.periodic import PeriodicTask

from . import assignment
from .assign_match import skill_levels
from .assign_peers import Member, Peers
from .assign_repo import AssignRepo
from .assignment import Assignment, OperatorState, Presence, Strategy, effective_presence
from .ticket_state import state_of

BATCH = 1000  # waiting tickets planned in one pass (the most urgent and oldest)
AT_ONCE = 16  # AssignTicket calls in flight in one pass


class Assigner(PeriodicTask):
    def __init__(
        self, db: Database, repo: AssignRepo, peers: Peers, clock: Clock, every_s: float = 5.0
    ) -> None:
        super().__init__("routing-assigner", every_s)
        self._db = db
        self._repo = repo
        self._peers = peers
        self._clock = clock
        self._log = log.get("routing.assigner")

    async def step(self) -> bool:
        async with self._db.pool.acquire() as conn:
            tenants = await self._repo.tenants_with_work(conn)
        more = False
        for tenant in tenants:
            with log.bound(tenant_id=tenant):
                try:
                    more = await self.run_tenant(tenant) or more
                except Unavailable as err:
                    self._log.warning("assignment pass deferred", reason=str(err))
        return more

    async def run_tenant(self, tenant: str) -> bool:
        """One pass; True when a full batch was planned (more may be waiting)."""
        members = await self._peers.members(tenant)
        async with self._db.transaction() as conn:
            await self._repo.lock_tenant(conn, tenant)
            now = self._clock.now()
            await self._take_back(conn, tenant, now)
            stored = await self._repo.policies(conn, tenant)
            automatic = [i for i, s in stored.items() if s.policy.strategy is not Strategy.MANUAL]
            waiting = await self._repo.waiting(conn, tenant, automatic, BATCH)
            if not waiting:
                return False
            operators = await self._operators(conn, tenant, members, now)
            policies = {inbox: s.policy for inbox, s in stored.items()}
            cursors = {inbox: s.cursor for inbox, s in stored.items() if s.cursor}
            plan = assignment.plan(waiting, operators, policies, cursors, now)
            done = await self._assign(conn, tenant, plan.assignments, now)
            await self._repo.save_cursors(conn, tenant, plan.cursors)
        if done:
            self._log.info("tickets assigned", assigned=done, waiting=len(waiting) - done)
        return len(waiting) == BATCH and done > 0

    async def _operators(
        self, conn: asyncpg.Connection, tenant: str, members: dict[str, Member], now: datetime
    ) -> list[OperatorState]:
        presence = await self._repo.presence(conn, tenant)
        profiles = await self._repo.profiles(conn, tenant)
        loads = await self._repo.loads(conn, tenant)
        recent = await self._repo.new_since(conn, tenant, now - assignment.HOUR)
        out: list[OperatorState] = []
        for op_id, member in members.items():
            # offline operators too: the plan reads the languages an inbox's operators list
            seen = presence.get(op_id)
            status = (
                effective_presence(seen.status, seen.expires_at, now)
                if seen is not None
                else Presence.OFFLINE
            )
            stored = profiles.get(op_id)
            profile = stored.profile if stored else assignment.Profile(op_id)
            out.append(
                OperatorState(
                    op_id,
                    status,
                    member.inboxes,
                    capacity=profile.capacity,
                    channel_capacity=profile.channel_capacity,
                    loads=loads.get(op_id, {}),
                    new_last_hour=recent.get(op_id, 0),
                    skills=skill_levels((s.name, s.level) for s in profile.skills),
                    languages=frozenset(profile.languages),
                )
            )
        return out

    async def _assign(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        planned: tuple[Assignment, ...],
        now: datetime,
    ) -> int:
        """Ask tickets for each planned assignment (a few at once), then take every answer
        into routing's rows. A call that fails leaves its ticket waiting for a later pass
        (if tickets did assign it, its ticket.assigned event brings the row up to date)."""
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(a: Assignment) -> tuple[Assignment, object]:
            async with gate:
                try:
                    return a, await self._peers.assign(
                        tenant,
                        a.ticket_id,
                        a.operator_id,
                        "",
                        assignment.strategy_label(a.strategy),
                    )
                except Unavailable as err:
                    return a, err

        done = 0
        for a, answer in await asyncio.gather(*(one(a) for a in planned)):
            if isinstance(answer, Unavailable):
                self._log.warning("assignment failed", ticket_id=a.ticket_id, reason=str(answer))
                continue
            assert isinstance(answer, tickets_pb2.AssignTicketResponse)
            await self._repo.apply_state(
                conn, tenant, state_of(answer.ticket), by_strategy=answer.assigned
            )
            if answer.assigned:
                done += 1
                await self._repo.log_assignment(
                    conn, tenant, a.operator_id, a.ticket_id, a.inbox_id, a.strategy, now
                )
        return done

    async def _take_back(self, conn: asyncpg.Connection, tenant: str, now: datetime) -> None:
        """Tickets given by the strategy with no reply within the inbox's limit go back to
        waiting, never to the same operator again."""
        for t in await self._repo.unreplied(conn, tenant, now):
            try:
                answer = await self._peers.assign(
                    tenant,
                    t.ticket_id,
                    "",
                    t.assignee_id,
                    f"reassigned: no first reply within {t.minutes} minutes",
                )
            except Unavailable as err:
                self._log.warning("taking back failed", ticket_id=t.ticket_id, reason=str(err))
                continue
            await self._repo.apply_state(
                conn,
                tenant,
                state_of(answer.ticket),
                exclude=t.assignee_id if answer.assigned else None,
            )
            if answer.assigned:
                self._log.info("ticket taken back: no first reply", ticket_id=t.ticket_id)
