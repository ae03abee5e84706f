"""The transactional outbox and exactly-once-in-effect consumption.

Writers call `Outbox.add(conn, envelope)` inside the transaction that changes state, then
`wake()` after the commit. The relay publishes pending rows with `Nats-Msg-Id` = event id
and stamps them published after JetStream's ack. A crash between publish and stamp
re-publishes the same id: JetStream dedupes within its window and consumers dedupe by
`first_time(...)` always.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from switchboard.v1 import events_pb2

from . import log
from . import metrics as m
from .bus import Bus
from .db import Database
from .events import subject_of
from .periodic import PeriodicTask

PROCESSED_KEEP_DAYS = 30  # longer than any stream keeps a message
Observer = Callable[[Sequence[str]], Awaitable[None]]


async def first_time(
    conn: asyncpg.Connection, consumer: str, env: events_pb2.EventEnvelope
) -> bool:
    """Record that `consumer` applies `env` (in the caller's transaction). False when it has
    already been applied: the caller then does nothing and the message is acked."""
    status = await conn.execute(
        "INSERT INTO processed_events (consumer, event_id, tenant_id) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        consumer,
        uuid.UUID(env.event_id),
        uuid.UUID(env.tenant_id),
    )
    return bool(status == "INSERT 0 1")


async def first_times(
    conn: asyncpg.Connection, consumer: str, envs: Sequence[events_pb2.EventEnvelope]
) -> list[events_pb2.EventEnvelope]:
    """`first_time` of many events in one statement: the ones not applied before, in
    order (an event twice in `envs` once)."""
    unique: dict[str, events_pb2.EventEnvelope] = {}
    for env in envs:
        unique.setdefault(env.event_id, env)
    if not unique:
        return []
    recorded = await conn.fetch(
        "INSERT INTO processed_events (consumer, event_id, tenant_id) "
        "SELECT $1, e, t FROM unnest($2::uuid[], $3::uuid[]) AS x(e, t) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        [uuid.UUID(e) for e in unique],
        [uuid.UUID(env.tenant_id) for env in unique.values()],
    )
    new = {str(r["event_id"]) for r in recorded}
    return [env for e, env in unique.items() if str(uuid.UUID(e)) in new]


async def enqueue(
    conn: asyncpg.Connection, env: events_pb2.EventEnvelope, subject: str | None = None
) -> None:
    """Queue `env` in the caller's transaction (on its catalogue subject by default); the
    relay publishes it after the commit (at once when woken, else at its next poll)."""
    await conn.execute(
        "INSERT INTO outbox (event_id, tenant_id, subject, payload) VALUES ($1, $2, $3, $4)",
        uuid.UUID(env.event_id),
        uuid.UUID(env.tenant_id),
        subject or subject_of(env),
        env.SerializeToString(),
    )


_Row = tuple[uuid.UUID, uuid.UUID, str, bytes]  # event id, tenant id, subject, payload


def _rows(envs: Sequence[events_pb2.EventEnvelope], subject: str | None) -> list[_Row]:
    return [
        (
            uuid.UUID(env.event_id),
            uuid.UUID(env.tenant_id),
            subject or subject_of(env),
            env.SerializeToString(),
        )
        for env in envs
    ]


class Outbox(PeriodicTask):
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch: int = 256,
        poll_s: float = 1.0,
        keep_published_s: float = 86_400.0,
        on_published: Observer | None = None,
        metrics: m.Metrics | None = None,
    ) -> None:
        super().__init__("outbox-relay", poll_s)
        self._db = db
        self._bus = bus
        self._batch = batch
        self._keep_s = keep_published_s
        self._on_published = on_published
        self._next_prune = 0.0
        self._log = log.get("outbox")
        metrics = metrics or bus.metrics
        self._published = metrics.counter(m.OUTBOX_PUBLISHED)
        self._failures = metrics.counter(m.OUTBOX_FAILURES)
        self._backlog = metrics.gauge(m.OUTBOX_BACKLOG)
        self._oldest_age = metrics.gauge(m.OUTBOX_OLDEST_AGE)

    async def sample(self) -> None:
        """The backlog and the age of its oldest event, in one query (the partial index of
        unpublished rows): for the metrics sampler."""
        row = await self._db.pool.fetchrow(
            "SELECT count(*) AS n, "
            "coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age "
            "FROM outbox WHERE published_at IS NULL"
        )
        assert row is not None
        self._backlog.set(row["n"])
        self._oldest_age.set(max(row["age"], 0.0))

    async def add(
        self, conn: asyncpg.Connection, env: events_pb2.EventEnvelope, subject: str | None = None
    ) -> None:
        """Queue `env` in the caller's transaction (on its catalogue subject by default)."""
        await enqueue(conn, env, subject)

    async def add_and_publish(
        self, conn: asyncpg.Connection, env: events_pb2.EventEnvelope
    ) -> None:
        """Publish `env` now, inside the caller's transaction, and record it as published
        there: when the transaction commits, the event is both written and out. If the
        publish fails, this raises and the caller's transaction rolls back. If the commit
        fails after the publish, the event went out for a change that did not commit: use
        this only where that is harmless (the event's id is fixed beforehand and the state
        it announces is retried to the same end, so the re-publish is deduplicated)."""
        subject = subject_of(env)
        payload = env.SerializeToString()
        await self._bus.publish_bytes(subject, payload, env.event_id)
        self._published.inc()
        await conn.execute(
            "INSERT INTO outbox (event_id, tenant_id, subject, payload, published_at, attempts) "
            "VALUES ($1, $2, $3, $4, now(), 1)",
            uuid.UUID(env.event_id),
            uuid.UUID(env.tenant_id),
            subject,
            payload,
        )

    async def add_many(
        self,
        conn: asyncpg.Connection,
        envs: Sequence[events_pb2.EventEnvelope],
        subject: str | None = None,
    ) -> None:
        """`add` for several events, in one statement."""
        await self._insert(conn, _rows(envs, subject), published=False)

    async def add_and_publish_many(
        self,
        conn: asyncpg.Connection,
        envs: Sequence[events_pb2.EventEnvelope],
        subject: str | None = None,
    ) -> None:
        """`add_and_publish` for several events: published pipelined, in this order, and
        their acks awaited together, then recorded as published in one statement. Raises
        if any was not acknowledged (the caller's transaction then rolls back; those that
        did go out are deduplicated when published again under the same ids)."""
        rows = _rows(envs, subject)
        if not rows:
            return
        results = await self._bus.publish_many([(s, p, str(e)) for e, _t, s, p in rows])
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._failures.inc(len(failed))
            raise ConnectionError(
                f"the event bus did not acknowledge {len(failed)} of {len(rows)} events: "
                f"{failed[0]!r}"
            )
        await self._insert(conn, rows, published=True)
        self._published.inc(len(rows))

    async def _insert(
        self, conn: asyncpg.Connection, rows: Sequence[_Row], *, published: bool
    ) -> None:
        if not rows:
            return
        await conn.execute(
            "INSERT INTO outbox (event_id, tenant_id, subject, payload, published_at, attempts) "
            "SELECT e, t, s, p, CASE WHEN $5 THEN now() END, CASE WHEN $5 THEN 1 ELSE 0 END "
            "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[]) AS u(e, t, s, p)",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            published,
        )

    async def _publish_rows(self, conn: asyncpg.Connection, rows: Sequence[Any]) -> list[uuid.UUID]:
        results = await asyncio.gather(
            *(
                self._bus.publish_bytes(r["subject"], r["payload"], str(r["event_id"]))
                for r in rows
            ),
            return_exceptions=True,
        )
        done = [
            r["event_id"]
            for r, res in zip(rows, results, strict=True)
            if not isinstance(res, BaseException)
        ]
        failed = [
            (r["event_id"], repr(res)[:500])
            for r, res in zip(rows, results, strict=True)
            if isinstance(res, BaseException)
        ]
        if done:
            self._published.inc(len(done))
        if failed:
            self._failures.inc(len(failed))
        if self._on_published is not None and done:
            await self._on_published([str(i) for i in done])
        if done:
            await conn.execute(
                "UPDATE outbox SET published_at = now(), attempts = attempts + 1 "
                "WHERE event_id = ANY($1::uuid[])",
                done,
            )
        if failed:
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1",
                failed,
            )
            self._log.warning("publish failed", count=len(failed), error=failed[0][1])
        return done

    async def publish_now(self, event_ids: Sequence[str]) -> None:
        """Publish these rows before returning (waiting for a relay that holds them); raise if
        any could not be published. Used where an answer waits for the ack (SMTP 250)."""
        ids = [uuid.UUID(i) for i in event_ids]
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT event_id, subject, payload FROM outbox "
                "WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL FOR UPDATE",
                ids,
            )
            if not rows:
                return
            done = await self._publish_rows(conn, rows)
        if len(done) != len(rows):
            raise ConnectionError("the event bus did not acknowledge the publish")

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; the number published."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT event_id, subject, payload FROM outbox WHERE published_at IS NULL "
                "ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch,
            )
            if not rows:
                return 0
            return len(await self._publish_rows(conn, rows))

    async def prune(self) -> int:
        """Forget published rows, and processed-event records old enough that no
        redelivery can still come (JetStream keeps streams 14 days)."""
        status = await self._db.pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._keep_s,
        )
        await self._db.pool.execute(
            "DELETE FROM processed_events WHERE processed_at < now() - make_interval(days => $1)",
            PROCESSED_KEEP_DAYS,
        )
        return int(status.split()[-1])

    async def step(self) -> bool:
        """Relay one batch (True when there may be more); now and then forget old rows."""
        try:
            published = await self.relay_once()
            now = asyncio.get_running_loop().time()
            if now > self._next_prune:
                if self._next_prune:
                    await self.prune()
                self._next_prune = now + 600
        except (OSError, asyncpg.PostgresError, ConnectionError) as exc:
            self._log.warning("relay pass failed", error=str(exc))
            return False
        return published > 0
