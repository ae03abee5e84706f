"""The assigner (RTE-2): gives waiting tickets to present operators through tickets'
AssignTickets, which assigns each only if the ticket is still unassigned (up to `CHUNK`
in one call and one transaction of tickets).

A pass for a tenant runs in one routing transaction under a per-tenant advisory lock, so
with several routing replicas one pass at a time sees and moves the tenant's loads: a
ticket is assigned once and no capacity is exceeded. The pass first takes back tickets
the strategy gave someone who has not replied within the inbox's limit, then plans
(`assignment.plan`) and assigns; each chunk of tickets' answers goes into routing's rows
of the tickets and the load counters at once, in a few statements (the ticket.assigned
events that follow change nothing more). If the pass's routing transaction fails after
tickets assigned, the answers are kept and applied first by the tenant's next pass, so
it never plans with loads that are too low (and the ticket.assigned events converge the
rows anyway, each applied once and versioned).

Passes run when woken — a waiting ticket arrived, someone's load went down, an operator
came online — and every `every_s` (tiers widen and presences lapse with time). Each
replica runs them; the lock makes the second wait and find nothing left to do.
"""

from __future__ import annotations

import asyncio
import time
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
from .ticket_state import Incoming, state_of

BATCH = 1000  # waiting tickets planned in one pass (the most urgent and oldest)
CHUNK = 500  # assignments asked of tickets in one AssignTickets call


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
        # per tenant: what tickets did in a pass whose routing transaction then failed
        self._unapplied: dict[str, list[Incoming]] = {}

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
        took = _Stopwatch()
        members = await self._peers.members(tenant)
        carried = self._unapplied.pop(tenant, [])
        answers: list[Incoming] = []  # what tickets did in this pass
        try:
            async with self._db.transaction() as conn:
                await self._repo.lock_tenant(conn, tenant)
                took.lap("lock_ms")
                await self._repo.apply_states(conn, tenant, carried)
                now = self._clock.now()
                await self._take_back(conn, tenant, now, answers)
                stored = await self._repo.policies(conn, tenant)
                automatic = [
                    i for i, s in stored.items() if s.policy.strategy is not Strategy.MANUAL
                ]
                waiting = await self._repo.waiting(conn, tenant, automatic, BATCH)
                if not waiting:
                    return False
                operators = await self._operators(conn, tenant, members, now)
                took.lap("read_ms")
                policies = {inbox: s.policy for inbox, s in stored.items()}
                cursors = {inbox: s.cursor for inbox, s in stored.items() if s.cursor}
                plan = assignment.plan(waiting, operators, policies, cursors, now)
                took.lap("plan_ms")
                done = await self._assign(conn, tenant, plan.assignments, now, answers, took)
                await self._repo.save_cursors(conn, tenant, plan.cursors)
            took.lap("commit_ms")
        except BaseException:
            # tickets did these, routing's rows do not show them: the next pass applies
            # them first, so that the loads it plans with are not too low
            self._unapplied[tenant] = _latest([*carried, *answers])
            raise
        if done:
            self._log.info(
                "tickets assigned", assigned=done, waiting=len(waiting) - done, **took.laps
            )
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
        answers: list[Incoming],
        took: _Stopwatch,
    ) -> int:
        """Ask tickets for the planned assignments (`CHUNK` in one call, one transaction
        there; the calls at once: disjoint tickets, each chunk locked in id order) and take
        each chunk's answers into routing's rows and loads as they come. A call that fails
        leaves its chunk waiting for a later pass (if tickets did assign, the ticket.assigned
        events bring the rows up to date). Every answer is in `answers` before this
        returns or raises (the caller keeps them should its transaction fail)."""
        done = 0
        chunks = [planned[i : i + CHUNK] for i in range(0, len(planned), CHUNK)]
        calls = [asyncio.ensure_future(self._ask(tenant, chunk)) for chunk in chunks]
        pending = list(zip(chunks, calls, strict=True))
        try:
            while pending:
                chunk, call = pending.pop(0)
                incoming, given = _answers(chunk, await call)
                took.lap("tickets_ms")
                answers.extend(incoming)
                await self._repo.apply_states(conn, tenant, incoming)
                await self._repo.log_assignments(conn, tenant, given, now)
                took.lap("apply_ms")
                done += len(given)
        except BaseException:
            for chunk, call in pending:  # what tickets did all the same
                answers.extend(_answers(chunk, await call)[0])
            raise
        return done

    async def _ask(
        self, tenant: str, chunk: tuple[Assignment, ...]
    ) -> list[tickets_pb2.AssignTicketResponse] | None:
        """tickets' answers to a chunk of planned assignments; None when it failed (the
        chunk's tickets wait for a later pass)."""
        items = [
            tickets_pb2.AssignTicketRequest(
                ticket_id=a.ticket_id,
                assignee_id=a.operator_id,
                comment=assignment.strategy_label(a.strategy),
            )
            for a in chunk
        ]
        try:
            return await self._peers.assign_many(tenant, items)
        except Unavailable as err:
            self._log.warning("assignment failed", tickets=len(chunk), reason=str(err))
            return None

    async def _take_back(
        self, conn: asyncpg.Connection, tenant: str, now: datetime, answers: list[Incoming]
    ) -> None:
        """Tickets given by the strategy with no reply within the inbox's limit go back to
        waiting, never to the same operator again."""
        due = await self._repo.unreplied(conn, tenant, now)
        if not due:
            return
        items = [
            tickets_pb2.AssignTicketRequest(
                ticket_id=t.ticket_id,
                expected_assignee_id=t.assignee_id,
                comment=f"reassigned: no first reply within {t.minutes} minutes",
            )
            for t in due
        ]
        try:
            results = await self._peers.assign_many(tenant, items)
        except Unavailable as err:
            self._log.warning("taking back failed", tickets=len(due), reason=str(err))
            return
        incoming = [
            Incoming(state_of(answer.ticket), exclude=t.assignee_id if answer.assigned else None)
            for t, answer in zip(due, results, strict=True)
            if answer.HasField("ticket")
        ]
        answers.extend(incoming)
        await self._repo.apply_states(conn, tenant, incoming)
        taken = sum(1 for answer in results if answer.assigned)
        if taken:
            self._log.info("tickets taken back: no first reply", tickets=taken)


def _answers(
    chunk: tuple[Assignment, ...], results: list[tickets_pb2.AssignTicketResponse] | None
) -> tuple[list[Incoming], list[Assignment]]:
    """tickets' answers as routing's incoming states, and the assignments it made."""
    incoming: list[Incoming] = []
    given: list[Assignment] = []
    for a, answer in zip(chunk, results or (), strict=False):
        if not answer.HasField("ticket"):
            continue
        incoming.append(Incoming(state_of(answer.ticket), by_strategy=answer.assigned))
        if answer.assigned:
            given.append(a)
    return incoming, given


def _latest(answers: list[Incoming]) -> list[Incoming]:
    """One answer per ticket, the newest."""
    out: dict[str, Incoming] = {}
    for inc in answers:
        seen = out.get(inc.state.ticket_id)
        if seen is None or inc.state.version >= seen.state.version:
            out[inc.state.ticket_id] = inc
    return list(out.values())


class _Stopwatch:
    """Where a pass's time went, in milliseconds per phase (summed over chunks), for its
    log line."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._at = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + (now - self._at) * 1000, 1)
        self._at = now
