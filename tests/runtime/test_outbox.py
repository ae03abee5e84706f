"""The transactional outbox and exactly-once-in-effect consumers, on real PostgreSQL and
NATS: a relay that dies after publishing and before stamping the row publishes it again,
and the consumer still applies the event once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from switchboard.v1 import events_pb2

from services.runtime import metrics as m
from services.runtime.bus import Bus, ConsumerSpec, Delivery, StreamSpec
from services.runtime.db import Database, runtime_migrations, with_database
from services.runtime.events import Stream
from services.runtime.outbox import Outbox, first_time
from tests.conftest import Infra


class RelayCrashed(Exception):
    pass


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    name = f"test_outbox_{uuid.uuid4().hex[:8]}"
    d = Database(with_database(infra.postgres.url, name))
    await d.open(runtime_migrations())
    await d.pool.execute("CREATE TABLE effects (event_id uuid, note text)")
    yield d
    await d.close()


@pytest.fixture
async def bus(infra: Infra) -> AsyncIterator[Bus]:
    b = Bus(infra.nats.url, "test-outbox")
    await b.connect()
    yield b
    await b.drain()


def _env() -> events_pb2.EventEnvelope:
    return events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()), type="test.event", tenant_id=str(uuid.uuid4())
    )


async def _wait(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_relay_crash_after_publish_republishes_and_consumer_acts_once(
    db: Database, bus: Bus
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = Stream(f"O{tag.upper()}", f"o{tag}")
    # A tiny dedupe window, so the second publish really reaches the consumer and the
    # consumer's own idempotency (not JetStream's dedupe) is what is tested.
    await bus.provision([StreamSpec(stream, duplicate_window_s=0.1)])
    spec = ConsumerSpec(stream, f"test__{stream.domain}", (f"sb.{stream.domain}.>",))
    await bus.provision([], [spec])

    deliveries: list[str] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        deliveries.append(env.event_id)
        async with db.transaction() as conn:
            if await first_time(conn, spec.durable, env):
                await conn.execute(
                    "INSERT INTO effects VALUES ($1, 'applied')", uuid.UUID(env.event_id)
                )

    runner = bus.consumer(spec, handler)
    runner.start()

    async def crash(ids: Sequence[str]) -> None:
        raise RelayCrashed  # after JetStream acked, before the row is stamped

    env = _env()
    crashing = Outbox(db, bus, on_published=crash)
    async with db.transaction() as conn:
        await crashing.add(conn, env, subject=f"sb.{stream.domain}.thing")
    with pytest.raises(RelayCrashed):
        await crashing.relay_once()
    pending = await db.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert pending == 1  # the crash rolled the stamp back: the row is still due

    await asyncio.sleep(0.3)  # past the dedupe window
    healthy = Outbox(db, bus)
    assert await healthy.relay_once() == 1
    assert await healthy.relay_once() == 0

    async def both_delivered() -> bool:
        return len(deliveries) == 2

    await _wait(both_delivered)
    await runner.stop()
    info = await bus.js.stream_info(stream.name)
    assert info.state.messages == 2  # the event really went out twice
    assert deliveries == [env.event_id, env.event_id]
    rows = await db.pool.fetch("SELECT * FROM effects")
    assert [r["event_id"] for r in rows] == [uuid.UUID(env.event_id)]  # applied once
    assert await db.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_relay_loop_publishes_rows_committed_with_the_state_change(
    db: Database, bus: Bus
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = Stream(f"O{tag.upper()}", f"o{tag}")
    await bus.provision([StreamSpec(stream)])
    outbox = Outbox(db, bus, poll_s=0.2)
    outbox.start()
    committed, rolled_back = _env(), _env()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO effects VALUES ($1, 'state')", uuid.UUID(committed.event_id)
        )
        await outbox.add(conn, committed, subject=f"sb.{stream.domain}.a")
    outbox.wake()
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await outbox.add(conn, rolled_back, subject=f"sb.{stream.domain}.a")
            raise RuntimeError("the state change fails: its event must never be published")

    async def published() -> bool:
        return (await bus.js.stream_info(stream.name)).state.messages >= 1

    await _wait(published)
    await asyncio.sleep(0.5)
    await outbox.stop()
    sub = await bus.js.pull_subscribe(f"sb.{stream.domain}.>", stream=stream.name)
    msgs = await sub.fetch(10, timeout=2)
    ids = [events_pb2.EventEnvelope.FromString(m.data).event_id for m in msgs]
    assert ids == [committed.event_id]
    assert msgs[0].headers["Nats-Msg-Id"] == committed.event_id


async def test_publish_now_fails_loudly_when_nats_is_gone_and_keeps_the_row(
    db: Database, infra: Infra
) -> None:
    from services.devstack.infra import Nats, free_port

    lonely = Nats(free_port(), infra.base / f"nats-{uuid.uuid4().hex[:6]}")
    await lonely.start()
    b = Bus(lonely.url, "test-outbox-down")
    await b.connect()
    tag = uuid.uuid4().hex[:10]
    stream = Stream(f"O{tag.upper()}", f"o{tag}")
    await b.provision([StreamSpec(stream)])
    outbox = Outbox(db, b)
    env = _env()
    async with db.transaction() as conn:
        await outbox.add(conn, env, subject=f"sb.{stream.domain}.a")
    lonely.stop()
    with pytest.raises(ConnectionError):
        await outbox.publish_now([env.event_id])
    row = await db.pool.fetchrow(
        "SELECT published_at, attempts FROM outbox WHERE event_id = $1", uuid.UUID(env.event_id)
    )
    assert row["published_at"] is None and row["attempts"] == 1
    await b.drain()


async def test_a_batch_is_published_in_order_and_recorded_published_with_its_state(
    db: Database, bus: Bus
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = Stream(f"O{tag.upper()}", f"o{tag}")
    await bus.provision([StreamSpec(stream)])
    outbox = Outbox(db, bus)
    envs = [_env() for _ in range(20)]
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO effects VALUES ($1, 'state')", [(uuid.UUID(e.event_id),) for e in envs]
        )
        await outbox.add_and_publish_many(conn, envs, subject=f"sb.{stream.domain}.a")
    sub = await bus.js.pull_subscribe(f"sb.{stream.domain}.>", stream=stream.name)
    msgs = await sub.fetch(30, timeout=2)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [e.event_id for e in envs]
    rows = await db.pool.fetch(
        "SELECT event_id, published_at, attempts FROM outbox WHERE event_id = ANY($1::uuid[])",
        [uuid.UUID(e.event_id) for e in envs],
    )
    assert len(rows) == 20 and all(r["published_at"] and r["attempts"] == 1 for r in rows)
    assert await outbox.relay_once() == 0  # nothing left for the relay

    queued = [_env(), _env()]
    async with db.transaction() as conn:
        await outbox.add_many(conn, queued, subject=f"sb.{stream.domain}.b")
    assert await outbox.relay_once() == 2  # queued, not published: the relay's


async def test_a_batch_the_bus_does_not_acknowledge_rolls_back_with_its_state(
    db: Database, bus: Bus
) -> None:
    envs = [_env(), _env()]
    with pytest.raises(ConnectionError):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO effects VALUES ($1, 'state')", uuid.UUID(envs[0].event_id)
            )
            # no stream takes this subject: JetStream cannot acknowledge it
            await Outbox(db, bus).add_and_publish_many(
                conn, envs, subject=f"sb.nowhere{uuid.uuid4().hex[:8]}.a"
            )
    ids = [uuid.UUID(e.event_id) for e in envs]
    assert await db.pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", ids[0]) == 0
    assert (
        await db.pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[])", ids)
        == 0
    )


async def test_the_backlog_and_the_age_of_its_oldest_event_are_sampled(
    db: Database, bus: Bus
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = Stream(f"O{tag.upper()}", f"o{tag}")
    await bus.provision([StreamSpec(stream)])
    outbox = Outbox(db, bus)

    def value(series: m.Series) -> float:
        return bus.metrics.registry.get_sample_value(series.name, {}) or 0.0

    published_before = value(m.OUTBOX_PUBLISHED)
    waiting = [_env(), _env()]
    async with db.transaction() as conn:
        await outbox.add_many(conn, waiting, subject=f"sb.{stream.domain}.a")
        await conn.execute(
            "UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE event_id = $1",
            uuid.UUID(waiting[0].event_id),
        )
    await outbox.sample()
    assert value(m.OUTBOX_BACKLOG) == 2
    assert 90 <= value(m.OUTBOX_OLDEST_AGE) < 150
    assert await outbox.relay_once() == 2
    await outbox.sample()
    assert value(m.OUTBOX_BACKLOG) == 0 and value(m.OUTBOX_OLDEST_AGE) == 0
    assert value(m.OUTBOX_PUBLISHED) - published_before == 2
