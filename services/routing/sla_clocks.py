"""The SLA clocks (RTE-4): routing follows tickets' events into its own per-ticket facts,
recomputes the ticket's SLA when the ticket changes (never by scanning), keeps the
warnings and breaches it still owes in a due-time index, and fires each once.

- `SlaClocks.on_ticket_event` — ticket.created / ticket.message_added / ticket.updated:
  the ticket's inbox, category, priority and status, its customer messages and operator
  replies (channel "sent"), and its statuses over time; then `recompute`, in the event's
  transaction, which replaces the ticket's timers and announces `sla.changed` when its
  soonest due time or state moved.
- `DueTimers` — claims due timers with `FOR UPDATE SKIP LOCKED` (any number of
  replicas; each timer fires once: `sla_fired` remembers it), publishes `sla.warning` /
  `sla.breached` through the outbox, then sleeps until the next due time — woken early
  when this replica sets a nearer one. After a restart it starts from the index.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from google.protobuf.message import Message
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log
from services.runtime.bus import ConsumerSpec, Delivery
from services.runtime.calendars import ALWAYS
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import Poison
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox, first_time
from services.runtime.periodic import PeriodicTask

from .rules.model import TIME_TRIGGERS
from .sla import (
    Happened,
    Happening,
    Hours,
    Policy,
    TicketFacts,
    TicketSla,
    compute,
    select_policy,
    timers,
)
from .sla_records import DueTimer, SlaTicket
from .sla_repo import SlaRepo

_ACTOR = events.system_actor("routing")
BATCH = 200
MIN_SLEEP_S = 0.005  # a due timer another replica holds: look again very soon
MAX_SLEEP_S = 60.0  # a nearer timer set by another replica is seen at the latest then
SENT = "sent"


def status_name(status: int) -> str:
    name = common_pb2.TicketStatus.Name(status)
    return name.removeprefix("TICKET_STATUS_").lower() if status else "open"


def priority_name(priority: int) -> str:
    return common_pb2.Priority.Name(priority).removeprefix("PRIORITY_").lower() if priority else ""


@dataclass(frozen=True, slots=True)
class Loaded:
    ticket: SlaTicket
    policy: Policy | None
    hours: Hours
    facts: TicketFacts


# more timers of a ticket recomputed (the rule time triggers: rules_time.py), in the
# recompute's transaction; the soonest set
AlsoArm = Callable[[asyncpg.Connection, str, Loaded], Awaitable[datetime | None]]


class SlaClocks:
    def __init__(
        self,
        db: Database,
        repo: SlaRepo,
        outbox: Outbox,
        clock: Clock,
        ids: IdGenerator,
        consumer: ConsumerSpec,
        due: DueTimers,
    ) -> None:
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._consumer = consumer
        self._due = due
        self._also: list[AlsoArm] = []
        self._log = log.get("routing.sla")

    def also_arm(self, arm: AlsoArm) -> None:
        """`arm` recomputes more of the ticket's timers whenever its SLA is recomputed."""
        self._also.append(arm)

    # -- reading -------------------------------------------------------------------------

    async def load(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant: str, ticket_id: str
    ) -> Loaded | None:
        t = await self._repo.ticket(conn, tenant, ticket_id)
        if t is None:
            return None
        policy, hours = await self.policy_and_hours(conn, tenant, t)
        history = await self._repo.history(conn, tenant, ticket_id)
        facts = TicketFacts(t.created_at, "open", tuple(history), t.opened_by_operator)
        return Loaded(t, policy, hours, facts)

    async def policy_and_hours(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant: str, t: SlaTicket
    ) -> tuple[Policy | None, Hours]:
        """The policy that applies to the ticket and its calendar (ALWAYS without one)."""
        stored = await self._repo.policies(conn, tenant)
        policy = select_policy((sp.policy for sp in stored), t.inbox_id, t.category, t.priority)
        hours: Hours = ALWAYS
        if policy is not None and policy.calendar_id:
            hours = (
                await self._repo.calendar(conn, tenant, uuid.UUID(policy.calendar_id))
            ).calendar
        return policy, hours

    async def ticket_sla(
        self, conn: asyncpg.Connection | asyncpg.Pool, tenant: str, ticket_id: str
    ) -> tuple[Policy | None, TicketSla] | None:
        loaded = await self.load(conn, tenant, ticket_id)
        if loaded is None:
            return None
        return loaded.policy, compute(loaded.policy, loaded.hours, loaded.facts, self._clock.now())

    # -- recomputing ---------------------------------------------------------------------

    async def recompute(
        self,
        conn: asyncpg.Connection,
        tenant: str,
        ticket_id: str,
        cause: events_pb2.EventEnvelope | None = None,
    ) -> datetime | None:
        """The ticket's SLA again (its row locked): saved, its timers replaced, and
        `sla.changed` queued when it moved. The soonest timer set."""
        await self._repo.ticket(conn, tenant, ticket_id, lock=True)
        loaded = await self.load(conn, tenant, ticket_id)
        if loaded is None:
            return None
        now = self._clock.now()
        sla = compute(loaded.policy, loaded.hours, loaded.facts, now)
        policy_id = loaded.policy.id if loaded.policy else ""
        moved = await self._repo.save_sla(
            conn, tenant, ticket_id, policy_id, sla.state.value, sla.next_due_at
        )
        soonest = await self._repo.replace_timers(conn, tenant, ticket_id, timers(sla))
        for arm in self._also:
            more = await arm(conn, tenant, loaded)
            if more is not None and (soonest is None or more < soonest):
                soonest = more
        if moved:
            changed = events_pb2.SlaChanged(
                ticket_id=ticket_id, policy_id=policy_id, state=sla.state.value
            )
            if sla.next_due_at is not None:
                changed.next_due_at.FromDatetime(sla.next_due_at)
            await self._outbox.add(conn, self._event(events.SLA_CHANGED, tenant, changed, cause))
        return soonest

    async def recompute_tenant(self, tenant: str) -> int:
        """Every ticket of the tenant not closed, after a policy or calendar changed."""
        after, done = "", 0
        while True:
            ids = await self._repo.running_tickets(self._repo.pool, tenant, after, BATCH)
            for ticket_id in ids:
                async with self._db.transaction() as conn:
                    soonest = await self.recompute(conn, tenant, ticket_id)
                self._due.nearer(soonest)
            self._outbox.wake()
            done += len(ids)
            if len(ids) < BATCH:
                return done
            after = ids[-1]

    def _event(
        self,
        etype: events.EventType,
        tenant: str,
        payload: Message,
        cause: events_pb2.EventEnvelope | None,
    ) -> events_pb2.EventEnvelope:
        if cause is not None:
            return events.caused_by(
                etype,
                cause,
                event_id=self._ids.new_str(),
                occurred_at=self._clock.now(),
                payload=payload,
                actor=_ACTOR,
            )
        return events.envelope(
            etype,
            event_id=self._ids.new_str(),
            tenant_id=tenant,
            occurred_at=self._clock.now(),
            payload=payload,
            actor=_ACTOR,
        )

    # -- tickets' events -----------------------------------------------------------------

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        field = env.WhichOneof("payload")
        if field == events.TICKET_CREATED.payload_field:
            created = events.payload_of(env, events.TICKET_CREATED)
            summary, channel, what = created.ticket, created.channel, None
        elif field == events.TICKET_MESSAGE_ADDED.payload_field:
            added = events.payload_of(env, events.TICKET_MESSAGE_ADDED)
            summary, channel = added.ticket, added.channel
            what = Happened.OPERATOR if channel == SENT else Happened.CUSTOMER
        elif field == events.TICKET_UPDATED.payload_field:
            updated = events.payload_of(env, events.TICKET_UPDATED)
            if updated.action == events.SLA_MOVED:
                return  # announcing this SLA's own due time: nothing changed for it
            summary, channel, what = updated.ticket, "", None
        else:
            raise Poison(f"routing's SLA does not follow {env.type!r}")
        if not summary.id:
            raise Poison(f"{env.type} without a ticket id")
        at = env.occurred_at.ToDatetime(tzinfo=self._clock.now().tzinfo)
        created_at = (
            summary.received_at.ToDatetime(tzinfo=at.tzinfo)
            if summary.HasField("received_at")
            else at
        )
        status = "merged" if summary.merged_into else status_name(summary.status)
        ticket = SlaTicket(
            ticket_id=summary.id,
            inbox_id=summary.inbox.id,
            category=summary.category,
            priority=priority_name(summary.priority),
            status=status,
            created_at=created_at,
            opened_by_operator=field == events.TICKET_CREATED.payload_field and channel == SENT,
            policy_id="",
            state="",
            next_due_at=None,
            pending_until=(
                summary.pending_until.ToDatetime(tzinfo=at.tzinfo)
                if summary.HasField("pending_until")
                else None
            ),
        )
        tenant = env.tenant_id
        with log.bound(tenant_id=tenant, ticket_id=summary.id, event_id=env.event_id):
            async with self._db.transaction() as conn:
                if not await first_time(conn, self._consumer.durable, env):
                    return
                await self._repo.upsert_ticket(conn, tenant, ticket)
                status_at = created_at if field == events.TICKET_CREATED.payload_field else at
                await self._repo.add_history(
                    conn,
                    tenant,
                    summary.id,
                    env.event_id,
                    Happening(status_at, Happened.STATUS, status),
                )
                if what is not None:
                    await self._repo.add_history(
                        conn, tenant, summary.id, env.event_id, Happening(at, what)
                    )
                soonest = await self.recompute(conn, tenant, summary.id, cause=env)
            self._outbox.wake()
            self._due.nearer(soonest)


class DueTimers(PeriodicTask):
    """Fires due warnings and breaches; sleeps until the next one (`every_s` is set to
    the time left after each step, at most MAX_SLEEP_S)."""

    def __init__(
        self, db: Database, repo: SlaRepo, outbox: Outbox, clock: Clock, ids: IdGenerator
    ) -> None:
        super().__init__("routing-sla-timers", MAX_SLEEP_S)
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._next: datetime | None = None
        self._log = log.get("routing.sla.timers")

    def nearer(self, at: datetime | None) -> None:
        """A timer at `at` was set: wake now if it is sooner than the planned wake."""
        if at is not None and (self._next is None or at < self._next):
            self._next = at
            self.wake()

    async def step(self) -> bool:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            due = await self._repo.claim_due(conn, now, BATCH)
            fired = await self._repo.fire(conn, due, now)
            await self._outbox.add_many(conn, [self._alert(t, now) for t in fired])
        if fired:
            self._outbox.wake()
            for t in fired:
                self._log.info(
                    ("rule timer " if t.target in TIME_TRIGGERS else "sla ") + t.which,
                    tenant_id=t.tenant_id,
                    ticket_id=t.ticket_id,
                    target=t.target,
                    late_ms=int((now - t.fire_at) / timedelta(milliseconds=1)),
                )
        if len(due) == BATCH:
            return True
        upcoming = await self._repo.next_fire_at(self._repo.pool)
        self._next = upcoming
        wait = MAX_SLEEP_S
        if upcoming is not None:
            wait = min(max((upcoming - self._clock.now()).total_seconds(), 0.0), MAX_SLEEP_S)
        self.every_s = max(wait, MIN_SLEEP_S)
        return False

    def _alert(self, t: DueTimer, now: datetime) -> events_pb2.EventEnvelope:
        if t.target in TIME_TRIGGERS:
            return self._rule_timer(t, now)
        alert = events_pb2.SlaAlert(
            ticket_id=t.ticket_id, policy_id=t.policy_id, target=t.target, inbox_id=t.inbox_id
        )
        alert.started_at.FromDatetime(t.started_at)
        alert.due_at.FromDatetime(t.due_at)
        if t.which == "warning":
            alert.warning_at.FromDatetime(t.fire_at)
        etype = events.SLA_WARNING if t.which == "warning" else events.SLA_BREACHED
        return events.envelope(
            etype,
            event_id=self._ids.new_str(),
            tenant_id=t.tenant_id,
            occurred_at=now,
            payload=alert,
            actor=_ACTOR,
        )

    def _rule_timer(self, t: DueTimer, now: datetime) -> events_pb2.EventEnvelope:
        """A rule time trigger came due (rule_timers.py): rule.timer_due for the rules."""
        due = events_pb2.RuleTimerDue(
            ticket_id=t.ticket_id,
            trigger=t.target,
            minutes=int(t.which) if t.which.isdigit() else 0,
            inbox_id=t.inbox_id,
        )
        due.started_at.FromDatetime(t.started_at)
        due.due_at.FromDatetime(t.due_at)
        return events.envelope(
            events.RULE_TIMER_DUE,
            event_id=self._ids.new_str(),
            tenant_id=t.tenant_id,
            occurred_at=now,
            payload=due,
            actor=_ACTOR,
        )
