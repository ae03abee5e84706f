"""Reply locks (TKT-3): a Redis mutex per ticket (SET NX PX, renewed, released by
compare-and-delete), fenced by the PostgreSQL sequence `reply_lock_fence`.

Granting a lock: (1) one Lua call claims the key with a placeholder (fence 0) when it is
free — or answers who holds it, or renews the caller's own lock; (2) one query checks the
ticket is the tenant's and draws the fence from the sequence; (3) a Lua call swaps the
placeholder for the real value only if the placeholder is still ours; (4) one statement
records the grant on the ticket row with its event in the outbox (the first grant on an
unassigned ticket is a transaction that also makes the holder the assignee, with an audit
row and ticket.assigned). The outbox relay is woken after the commit and publishes at once.
Because the fence is drawn while the mutex is held, fences grow in grant order. Redis
never creates a lock anywhere but in step 1: renewing a key that is gone or holds another
fence is refused. Pure rules live in `lock_rules`.

The hot paths write the ticket row and the outbox row in one statement (a CTE), so a
grant, a renewal or a release costs one round trip to PostgreSQL, not four
(BEGIN, UPDATE, INSERT, COMMIT); `_outbox_row` writes the row `Outbox.add` would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log
from services.runtime import metrics as m
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied, Unavailable
from services.runtime.identity import Identity, operator_actor
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from . import lock_rules as rules
from .convert import summary_pb
from .domain import Change
from .lock_rules import LockValue
from .lock_scripts import (
    _CLAIM,
    _CLEAR_WITH_EVENT,
    _DRAW,
    _DROP,
    _DUE,
    _EXPIRE_WITH_EVENT,
    _FINALIZE,
    _READ,
    _RECORD_AND_ASSIGN,
    _RECORD_WITH_EVENT,
    _RELEASE,
    _RENEW,
    AGAIN_SUFFIX,
)
from .records import Ticket, ticket_of
from .repo import TicketsRepo


def _visible(ident: Identity) -> list[uuid.UUID] | None:
    """The inboxes whose tickets the caller may lock (None: all)."""
    only = ident.inbox_filter()
    return None if only is None else [uuid.UUID(i) for i in only]


@dataclass(frozen=True)
class _Claim:
    outcome: str  # won, mine, mine_pending, other, taken
    value: LockValue | None
    ms_left: int


def _ref(holder_id: str, name: str) -> common_pb2.OperatorRef:
    return common_pb2.OperatorRef(id=holder_id, display_name=name)


def lock_pb(value: LockValue, expires: datetime) -> events_pb2.ReplyLock:
    lock = events_pb2.ReplyLock(holder=_ref(value.holder_id, value.holder_name), fence=value.fence)
    lock.expires_at.FromDatetime(expires)
    lock.acquired_at.FromDatetime(value.acquired_at)
    return lock


def _outbox_args(env: events_pb2.EventEnvelope) -> tuple[uuid.UUID, str, bytes]:
    """The event id, subject and payload of an outbox row (see `_outbox_row`)."""
    return uuid.UUID(env.event_id), events.subject_of(env), env.SerializeToString()


def _grant_change(
    ticket_id: uuid.UUID,
    lock: events_pb2.ReplyLock,
    previous: LockValue | None,
    drawn: asyncpg.Record,
) -> events_pb2.ReplyLockChanged:
    """lock.acquired / lock.taken_over: the new lock and whom it replaced — the holder
    taken over, or a recorded lock Redis had forgotten (expired unannounced, or lost)."""
    change = events_pb2.ReplyLockChanged(
        ticket_id=str(ticket_id), lock=lock, inbox_id=str(drawn["inbox_id"])
    )
    if previous is not None:
        change.previous_holder.CopyFrom(_ref(previous.holder_id, previous.holder_name))
        change.previous_fence = previous.fence
    elif drawn["lock_fence"] is not None and str(drawn["lock_holder_id"]) != lock.holder.id:
        change.previous_holder.CopyFrom(
            _ref(str(drawn["lock_holder_id"]), drawn["lock_holder_name"] or "")
        )
        change.previous_fence = drawn["lock_fence"]
    return change


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except (aioredis.RedisError, OSError) as exc:
        log.get("tickets.locks").warning("redis unavailable", error=str(exc))
        raise Unavailable("the reply-lock store is unavailable; try again") from exc


# Redis calls in flight at once, below the client's pool of 100 connections (more would
# fail with "Too many connections" under a burst instead of waiting their turn).
REDIS_CONCURRENCY = 64
# Lock events are published this long after their commit at most: the relay's passes are
# batched instead of one per lock change (a push to the browser may take 200 ms).
PUBLISH_DELAY_S = 0.005


class ReplyLocks:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        db: Database,
        outbox: Outbox,
        repo: TicketsRepo,
        clock: Clock,
        ids: IdGenerator,
        ttl_s: float,
        metrics: m.Metrics | None = None,
    ) -> None:
        self._redis = redis
        self._db = db
        self._outbox = outbox
        self._repo = repo
        self._clock = clock
        self._ids = ids
        self.ttl_s = ttl_s
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._claim = redis.register_script(_CLAIM)
        self._finalize = redis.register_script(_FINALIZE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._drop = redis.register_script(_DROP)
        self._read = redis.register_script(_READ)
        self._redis_slots = asyncio.Semaphore(REDIS_CONCURRENCY)
        self._wake_pending: asyncio.TimerHandle | None = None
        self._log = log.get("tickets.locks")
        metrics = metrics or m.Metrics("tickets")
        self._changed = m.Children(metrics.counter(m.LOCK_CHANGES))
        self._held = metrics.gauge(m.LOCKS_HELD)

    async def sample_held(self) -> None:
        """Locks held now, by every replica: the recorded grants not yet expired (one
        count on the partial index of lock expiries), for the metrics sampler. Each
        replica reports the same number: read it with max(), not sum()."""
        held = await self._db.pool.fetchval(
            "SELECT count(*) FROM tickets WHERE lock_expires_at > $1", self._clock.now()
        )
        self._held.set(held or 0)

    # -- the API ---------------------------------------------------------------------

    async def acquire(
        self, ident: Identity, ticket_id: uuid.UUID
    ) -> tuple[bool, events_pb2.ReplyLock]:
        """(True, the caller's lock) — new, or theirs already and now renewed — or
        (False, the holder's lock) when someone else is replying."""
        return await self._acquire(ident, ticket_id, force=False)

    async def take_over(self, ident: Identity, ticket_id: uuid.UUID) -> events_pb2.ReplyLock:
        """A supervisor takes the lock with a new fence; the previous holder is told (the
        lock.taken_over event names them). A free lock is simply acquired."""
        if not rules.may_take_over(ident.permissions):
            raise PermissionDenied("only a supervisor or an administrator may take a lock over")
        _, lock = await self._acquire(ident, ticket_id, force=True)
        return lock

    async def renew(
        self, ident: Identity, ticket_id: uuid.UUID, fence: int
    ) -> events_pb2.ReplyLock:
        """Extend the caller's lock by the TTL. FailedPrecondition when the key is gone or
        holds another fence: a lost lock is never re-created here."""
        inbox_id = await self._require_ticket(ident, ticket_id)
        key = rules.lock_key(ident.tenant_id, str(ticket_id))
        raw = await self._script(
            self._renew, key, rules.owner_prefix(fence, ident.operator_id), self._ttl_ms
        )
        value = rules.decode(raw)
        if value is None:
            raise FailedPrecondition(
                "your reply lock is gone (expired, released or taken over); acquire it again",
                field="fence",
            )
        return await self._renewed(ident, ticket_id, value, inbox_id)

    async def release(
        self,
        ident: Identity,
        ticket_id: uuid.UUID,
        fence: int,
        unless_reacquired_after: datetime | None = None,
    ) -> bool:
        """Compare-and-delete: True when the caller's lock was there and is now gone. With
        `unless_reacquired_after`, a lock its holder acquired again after that time is
        kept (False): outbound releases its author's lock after a send, when they may
        already be writing the next reply under the same fence."""
        inbox_id = await self._require_ticket(ident, ticket_id)
        key = rules.lock_key(ident.tenant_id, str(ticket_id))
        after_ms = int(unless_reacquired_after.timestamp() * 1000) if unless_reacquired_after else 0
        released = await self._script(
            self._release, key, rules.owner_prefix(fence, ident.operator_id), after_ms
        )
        if released == -1:
            self._log.info("reply lock kept: its holder acquired it again", fence=fence)
            return False
        deleted = bool(released)
        change = events_pb2.ReplyLockChanged(
            ticket_id=str(ticket_id),
            previous_holder=_ref(ident.operator_id, ident.display_name),
            previous_fence=fence,
            inbox_id=str(inbox_id),
        )
        env = self._envelope(events.LOCK_RELEASED, ident.tenant_id, change, ident)
        event_id = await self._db.pool.fetchval(
            _CLEAR_WITH_EVENT,
            uuid.UUID(ident.tenant_id),
            ticket_id,
            fence,
            uuid.UUID(ident.operator_id),
            deleted,
            *_outbox_args(env),
        )
        if event_id is not None:
            self._changed("released").inc()
            self._publish_soon()
        return deleted

    async def get(self, ident: Identity, ticket_id: uuid.UUID) -> events_pb2.ReplyLock:
        """Who is replying now; NotFound when nobody is (or there is no such ticket)."""
        await self._require_ticket(ident, ticket_id)
        value, ms_left = await self._read_key(ident.tenant_id, ticket_id)
        if value is None:
            raise NotFound("nobody is replying to this ticket")
        return lock_pb(value, rules.expires_at(self._clock.now(), ms_left))

    async def check_fence(
        self, ident: Identity, ticket_id: uuid.UUID, fence: int
    ) -> events_pb2.ReplyLock:
        """The caller's current lock; FailedPrecondition when `fence` is stale (see
        `lock_rules.fence_problem`), NotFound for a ticket the caller may not see."""
        read, recorded = await asyncio.gather(
            self._read_key(ident.tenant_id, ticket_id),
            self._db.pool.fetchrow(
                "SELECT lock_fence FROM tickets WHERE tenant_id = $1 AND id = $2 "
                "AND ($3::uuid[] IS NULL OR inbox_id = ANY($3))",
                uuid.UUID(ident.tenant_id),
                ticket_id,
                _visible(ident),
            ),
        )
        if recorded is None:
            raise NotFound("no such ticket", field="ticket_id")
        value, ms_left = read
        problem = rules.fence_problem(value, recorded["lock_fence"], ident.operator_id, fence)
        if problem is not None or value is None:
            raise FailedPrecondition(problem or "stale reply lock", field="fence")
        return lock_pb(value, rules.expires_at(self._clock.now(), ms_left))

    # -- expiry ----------------------------------------------------------------------

    async def sweep_once(self, batch: int = 100) -> int:
        """Announce lock.expired for recorded locks whose time passed without renewal:
        once, whichever replica gets there first (a conditional UPDATE on the fence).
        A lock Redis still holds (renewed, the row not yet updated) is re-recorded."""
        now = self._clock.now()
        rows = await self._db.pool.fetch(_DUE, now, batch)
        if not rows:
            return 0
        keys = [rules.lock_key(str(r["tenant_id"]), str(r["id"])) for r in rows]
        async with self._redis_slots:
            with _redis_errors():
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.get(key)
                        pipe.pttl(key)
                    answers = await pipe.execute()
        expired = 0
        for i, row in enumerate(rows):
            held, ms_left = rules.decode(answers[2 * i]), int(answers[2 * i + 1])
            if held is not None and held.fence == row["lock_fence"] and ms_left > 0:
                await self._db.pool.execute(
                    "UPDATE tickets SET lock_expires_at = $4 "
                    "WHERE tenant_id = $1 AND id = $2 AND lock_fence = $3",
                    row["tenant_id"],
                    row["id"],
                    row["lock_fence"],
                    rules.expires_at(now, ms_left),
                )
                continue
            change = events_pb2.ReplyLockChanged(
                ticket_id=str(row["id"]),
                previous_holder=_ref(str(row["lock_holder_id"]), row["lock_holder_name"] or ""),
                previous_fence=row["lock_fence"],
                inbox_id=str(row["inbox_id"]),
            )
            env = self._envelope(events.LOCK_EXPIRED, str(row["tenant_id"]), change, None, now)
            event_id = await self._db.pool.fetchval(
                _EXPIRE_WITH_EVENT,
                row["tenant_id"],
                row["id"],
                row["lock_fence"],
                now,
                *_outbox_args(env),
            )
            if event_id is None:
                continue  # another replica announced it, or it was renewed or replaced
            expired += 1
            self._changed("expired").inc()
            self._log.info("reply lock expired", ticket_id=str(row["id"]), fence=row["lock_fence"])
        if expired:
            self._publish_soon()
        return len(rows)

    # -- internals -------------------------------------------------------------------

    async def _acquire(
        self, ident: Identity, ticket_id: uuid.UUID, *, force: bool
    ) -> tuple[bool, events_pb2.ReplyLock]:
        if force:  # a takeover replaces the holder's key: only on a ticket the caller sees
            await self._require_ticket(ident, ticket_id)
        key = rules.lock_key(ident.tenant_id, str(ticket_id))
        mine = rules.new_claim(ident.operator_id, ident.display_name, self._clock.now())
        placeholder = mine.encode()
        for _ in range(50):
            claim = await self._claim_key(key, placeholder, ident.operator_id, force)
            if claim.outcome in ("won", "taken"):
                # a ticket the caller may not see is refused by the grant (and undone)
                previous = claim.value if claim.outcome == "taken" else None
                return True, await self._grant(ident, ticket_id, key, mine, previous)
            if claim.outcome == "mine" and claim.value is not None:
                inbox_id = await self._require_ticket(ident, ticket_id)
                return True, await self._renewed(ident, ticket_id, claim.value, inbox_id)
            if claim.outcome == "other" and claim.value is not None:
                await self._require_ticket(ident, ticket_id)  # who replies is not for all
                now = self._clock.now()
                return False, lock_pb(claim.value, rules.expires_at(now, claim.ms_left))
            # mine_pending: the caller's other request is being granted right now
            await asyncio.sleep(0.02)
        raise FailedPrecondition("your other request for this lock is still running; try again")

    async def _claim_key(self, key: str, placeholder: str, holder: str, force: bool) -> _Claim:
        now_ms = int(self._clock.now().timestamp() * 1000)
        outcome, raw, ms_left = await self._script(
            self._claim, key, placeholder, self._ttl_ms, holder, "1" if force else "0", now_ms
        )
        name = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        return _Claim(name, rules.decode(raw), int(ms_left))

    async def _grant(
        self,
        ident: Identity,
        ticket_id: uuid.UUID,
        key: str,
        claim: LockValue,
        previous: LockValue | None,
    ) -> events_pb2.ReplyLock:
        """The caller won the mutex (or took it over): draw the fence, put it in Redis,
        record the grant with its event. Any failure takes the claim back out of Redis."""
        tenant = uuid.UUID(ident.tenant_id)
        holder = uuid.UUID(ident.operator_id)
        placeholder = claim.encode()
        final = ""
        try:
            async with self._db.pool.acquire() as conn:
                drawn = await conn.fetchrow(_DRAW, tenant, ticket_id, _visible(ident))
                if drawn is None:
                    raise NotFound("no such ticket", field="ticket_id")
                granted = claim.with_fence(drawn["fence"])
                final = granted.encode()
                now = self._clock.now()
                expires = rules.expires_at(now, self._ttl_ms)
                swapped = await self._script(self._finalize, key, placeholder, final, self._ttl_ms)
                if not swapped:
                    final = ""
                    raise FailedPrecondition(
                        "the reply lock was taken over while it was being granted"
                    )
                lock = lock_pb(granted, expires)
                env = self._envelope(
                    events.LOCK_TAKEN_OVER if previous is not None else events.LOCK_ACQUIRED,
                    ident.tenant_id,
                    _grant_change(ticket_id, lock, previous, drawn),
                    ident,
                    now,
                )
                record = (
                    tenant,
                    ticket_id,
                    granted.fence,
                    holder,
                    granted.holder_name,
                    granted.acquired_at,
                    expires,
                )
                if drawn["assignee_id"] is not None:
                    await conn.fetchval(_RECORD_WITH_EVENT, *record, *_outbox_args(env))
                else:
                    async with conn.transaction():
                        row = await conn.fetchrow(_RECORD_AND_ASSIGN, *record, now)
                        if row is not None:
                            await self._outbox.add(conn, env)
                            if row["old_assignee_id"] is None:
                                await self._assigned(conn, ident, ticket_of(row), lock, now)
        except BaseException:
            await self._undo(key, placeholder, final)
            raise
        self._changed("taken_over" if previous is not None else "acquired").inc()
        self._publish_soon()
        return lock

    async def _assigned(
        self,
        conn: asyncpg.Connection,
        ident: Identity,
        row: Ticket,
        lock: events_pb2.ReplyLock,
        now: datetime,
    ) -> None:
        """WEBCAS: the lock holder became the assignee of an unassigned ticket."""
        holder = _ref(ident.operator_id, lock.holder.display_name)
        await self._repo.add_audit(
            conn,
            id=self._ids.new(),
            tenant_id=ident.tenant_id,
            ticket_id=row.id,
            at=now,
            actor=operator_actor(ident),
            action="assign",
            changes=[Change("assignee", "", holder.display_name or holder.id)],
            comment="assigned to the operator who started the reply",
        )
        assigned = events_pb2.TicketAssigned(ticket=summary_pb(row), assignee=holder)
        await self._outbox.add(
            conn, self._envelope(events.TICKET_ASSIGNED, ident.tenant_id, assigned, ident, now)
        )

    async def _undo(self, key: str, placeholder: str, final: str) -> None:
        values = [v for v in (placeholder, final) if v]
        try:
            await self._script(self._drop, key, *values)
        except Unavailable as exc:  # it expires with its TTL anyway
            self._log.warning("could not undo a failed lock grant", error=str(exc))

    async def _renewed(
        self, ident: Identity, ticket_id: uuid.UUID, value: LockValue, inbox_id: object
    ) -> events_pb2.ReplyLock:
        """Redis extended `value`: record the new expiry and announce lock.renewed."""
        now = self._clock.now()
        expires = rules.expires_at(now, self._ttl_ms)
        lock = lock_pb(value, expires)
        change = events_pb2.ReplyLockChanged(
            ticket_id=str(ticket_id), lock=lock, inbox_id=str(inbox_id)
        )
        env = self._envelope(events.LOCK_RENEWED, ident.tenant_id, change, ident, now)
        await self._db.pool.fetchval(
            _RECORD_WITH_EVENT,
            uuid.UUID(ident.tenant_id),
            ticket_id,
            value.fence,
            uuid.UUID(value.holder_id),
            value.holder_name,
            value.acquired_at,
            expires,
            *_outbox_args(env),
        )
        self._changed("renewed").inc()
        self._publish_soon()
        return lock

    async def _read_key(self, tenant_id: str, ticket_id: uuid.UUID) -> tuple[LockValue | None, int]:
        raw, ms_left = await self._script(self._read, rules.lock_key(tenant_id, str(ticket_id)))
        return rules.decode(raw), int(ms_left or 0)

    async def _script(self, script: AsyncScript, key: str, *args: str | int) -> Any:
        """Run a Lua script on one lock (its key, and the key of when its holder acquired it
        again), at most REDIS_CONCURRENCY at once; a connection that Redis closed (it
        restarted) is retried once on a fresh one. Unavailable otherwise."""
        keys = [key, key + AGAIN_SUFFIX]
        async with self._redis_slots:
            with _redis_errors():
                try:
                    return await script(keys=keys, args=list(args))
                except aioredis.ConnectionError:
                    return await script(keys=keys, args=list(args))

    async def _require_ticket(self, ident: Identity, ticket_id: uuid.UUID) -> uuid.UUID:
        """The ticket's inbox; NotFound unless the caller may see the ticket."""
        inbox = await self._db.pool.fetchval(
            "SELECT inbox_id FROM tickets WHERE tenant_id = $1 AND id = $2 "
            "AND ($3::uuid[] IS NULL OR inbox_id = ANY($3))",
            uuid.UUID(ident.tenant_id),
            ticket_id,
            _visible(ident),
        )
        if inbox is None:
            raise NotFound("no such ticket", field="ticket_id")
        return uuid.UUID(str(inbox))

    def _envelope(
        self,
        etype: events.EventType,
        tenant_id: str,
        payload: Any,
        ident: Identity | None,
        now: datetime | None = None,
    ) -> events_pb2.EventEnvelope:
        return events.envelope(
            etype,
            event_id=self._ids.new_str(),
            tenant_id=tenant_id,
            occurred_at=now or self._clock.now(),
            payload=payload,
            actor=operator_actor(ident) if ident else events.system_actor("tickets"),
            correlation_id=ident.correlation_id if ident else "",
        )

    def _publish_soon(self) -> None:
        """After the commit: wake the outbox relay within PUBLISH_DELAY_S, once for every
        event written meanwhile, so a burst of lock changes is published in one pass."""
        if self._wake_pending is None:
            self._wake_pending = asyncio.get_running_loop().call_later(
                PUBLISH_DELAY_S, self._wake_relay
            )

    def _wake_relay(self) -> None:
        self._wake_pending = None
        self._outbox.wake()


class LockExpirySweeper(PeriodicTask):
    """Every quarter of the TTL (0.2–5 s): lock.expired for locks not renewed in time."""

    def __init__(self, locks: ReplyLocks, every_s: float | None = None) -> None:
        super().__init__("lock-expiry", every_s or rules.sweep_every_s(locks.ttl_s))
        self._locks = locks

    async def step(self) -> bool:
        try:
            return await self._locks.sweep_once() >= 100
        except Unavailable:
            return False  # Redis is away: nothing can be judged expired now
