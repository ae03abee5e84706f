"""The JetStream bus against a real nats-server: redelivery after nak, dedupe by
Nats-Msg-Id, dead letters for poison messages and after the last delivery, and
in_progress keeping long work from being redelivered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from switchboard.v1 import events_pb2

from services.runtime import metrics as m
from services.runtime.bus import (
    Bus,
    ConsumerSpec,
    Delivery,
    Item,
    Poison,
    StreamSpec,
    default_streams,
)
from services.runtime.events import DEADLETTER, Stream
from tests.conftest import Infra


@pytest.fixture
async def bus(infra: Infra) -> AsyncIterator[Bus]:
    b = Bus(infra.nats.url, "test-bus")
    await b.connect()
    await b.provision([s for s in default_streams() if s.stream is DEADLETTER])
    yield b
    await b.drain()


def _stream() -> Stream:
    tag = uuid.uuid4().hex[:10]
    return Stream(f"T{tag.upper()}", f"t{tag}")


def _env(event_id: str | None = None) -> events_pb2.EventEnvelope:
    return events_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()), type="test.event", tenant_id=str(uuid.uuid4())
    )


async def _until(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


async def _dead_letters(bus: Bus, durable: str) -> list:  # type: ignore[type-arg]
    sub = await bus.js.pull_subscribe(f"sb.deadletter.{durable}", stream="DEADLETTER")
    try:
        return await sub.fetch(10, timeout=2)
    except TimeoutError:
        return []
    finally:
        await sub.unsubscribe()


def _value(bus: Bus, series: m.Series, suffix: str = "", **labels: str) -> float:
    return bus.metrics.registry.get_sample_value(series.name + suffix, labels) or 0.0


async def _setup(bus: Bus, **spec_kw) -> tuple[Stream, ConsumerSpec]:  # type: ignore[no-untyped-def]
    stream = _stream()
    spec = ConsumerSpec(stream, f"test__{stream.domain}", (f"sb.{stream.domain}.>",), **spec_kw)
    await bus.provision([StreamSpec(stream)], [spec])
    return stream, spec


async def test_failed_message_is_redelivered_after_nak_and_then_acked(bus: Bus) -> None:
    stream, spec = await _setup(bus, nak_delays_s=(0.05,))
    attempts: list[int] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        attempts.append(d.num_delivered)
        if d.num_delivered == 1:
            raise ConnectionError("database briefly away")

    runner = bus.consumer(spec, handler)
    runner.start()
    await bus.publish_bytes(f"sb.{stream.domain}.x", _env().SerializeToString(), str(uuid.uuid4()))
    await _until(lambda: attempts == [1, 2])
    await runner.stop()
    info = await bus.js.consumer_info(stream.name, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert await _dead_letters(bus, spec.durable) == []
    c = spec.durable
    assert _value(bus, m.BUS_REDELIVERIES, consumer=c) == 1
    assert _value(bus, m.BUS_MESSAGES, consumer=c, outcome="retried") == 1
    assert _value(bus, m.BUS_MESSAGES, consumer=c, outcome="acked") == 1
    assert _value(bus, m.BUS_HANDLE_DURATION, "_count", consumer=c) == 2


async def test_publishing_the_same_event_id_twice_stores_it_once(bus: Bus) -> None:
    stream, _ = await _setup(bus)
    env = _env()
    first = await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    second = await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    assert not first.duplicate and second.duplicate
    info = await bus.js.stream_info(stream.name)
    assert info.state.messages == 1


async def test_message_failing_every_delivery_is_dead_lettered_after_max_deliveries(
    bus: Bus,
) -> None:
    stream, spec = await _setup(bus, max_deliver=3, nak_delays_s=(0.05,))
    attempts: list[int] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        attempts.append(d.num_delivered)
        raise RuntimeError("always broken")

    runner = bus.consumer(spec, handler)
    runner.start()
    env = _env()
    await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    await _until(lambda: len(attempts) >= 3)
    await asyncio.sleep(0.5)  # nothing more may come
    await runner.stop()
    assert attempts == [1, 2, 3]
    dead = await _dead_letters(bus, spec.durable)
    assert len(dead) == 1
    assert events_pb2.EventEnvelope.FromString(dead[0].data).event_id == env.event_id
    assert dead[0].headers["Sb-Deliveries"] == "3"
    assert "always broken" in dead[0].headers["Sb-Reason"]
    assert dead[0].headers["Sb-Original-Subject"] == f"sb.{stream.domain}.x"
    c = spec.durable
    assert _value(bus, m.BUS_DEAD_LETTERS, consumer=c, reason="max_deliveries") == 1
    assert _value(bus, m.BUS_MESSAGES, consumer=c, outcome="dead_lettered") == 1
    assert _value(bus, m.BUS_REDELIVERIES, consumer=c) == 2


async def test_poison_and_undecodable_messages_are_dead_lettered_at_once(bus: Bus) -> None:
    stream, spec = await _setup(bus)
    seen: list[str] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        seen.append(env.event_id)
        raise Poison("payload names no inbox")

    runner = bus.consumer(spec, handler)
    runner.start()
    env = _env()
    await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    await bus.publish_bytes(f"sb.{stream.domain}.x", b"\xff\xfenot protobuf", "garbage-1")
    bad_id = events_pb2.EventEnvelope(event_id="not-a-uuid", tenant_id=str(uuid.uuid4()))
    await bus.publish_bytes(f"sb.{stream.domain}.x", bad_id.SerializeToString(), "garbage-2")
    await _until(lambda: len(seen) == 1)
    dead: list = []  # type: ignore[type-arg]
    for _ in range(50):
        dead = await _dead_letters(bus, spec.durable)
        if len(dead) == 3:
            break
        await asyncio.sleep(0.1)
    await runner.stop()
    assert seen == [env.event_id]  # poison: one attempt, no retry
    reasons = sorted(m.headers["Sb-Reason"] for m in dead)
    assert reasons[0].startswith("poison: payload names no inbox")
    assert reasons[1].startswith("undecodable envelope")
    assert reasons[2].startswith("undecodable envelope")
    info = await bus.js.consumer_info(stream.name, spec.durable)
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    c = spec.durable
    assert _value(bus, m.BUS_DEAD_LETTERS, consumer=c, reason="poison") == 1
    assert _value(bus, m.BUS_DEAD_LETTERS, consumer=c, reason="undecodable") == 2
    assert _value(bus, m.BUS_REDELIVERIES, consumer=c) == 0


async def test_a_consumers_lag_is_sampled_from_jetstream(bus: Bus) -> None:
    stream, spec = await _setup(bus)
    handled: list[str] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        handled.append(env.event_id)

    runner = bus.consumer(spec, handler)
    for _ in range(3):
        env = _env()
        await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    await runner.sample()  # nothing consumed yet: all three wait
    assert _value(bus, m.BUS_PENDING, consumer=spec.durable) == 3
    runner.start()
    await _until(lambda: len(handled) == 3)
    await runner.stop()
    await runner.sample()
    assert _value(bus, m.BUS_PENDING, consumer=spec.durable) == 0
    assert _value(bus, m.BUS_ACK_PENDING, consumer=spec.durable) == 0


async def test_long_work_reports_progress_and_is_not_redelivered(bus: Bus) -> None:
    stream, spec = await _setup(bus, ack_wait_s=1.0)
    attempts: list[int] = []

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        attempts.append(d.num_delivered)
        await asyncio.sleep(2.5)  # longer than ack_wait: only in_progress keeps it ours

    runner = bus.consumer(spec, handler)
    runner.start()
    env = _env()
    await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    await _until(lambda: attempts == [1])
    await asyncio.sleep(3.0)
    await runner.stop()
    assert attempts == [1]
    info = await bus.js.consumer_info(stream.name, spec.durable)
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    assert _value(bus, m.BUS_REDELIVERIES, consumer=spec.durable) == 0


async def test_a_batch_handler_takes_a_fetch_at_once_and_a_failed_batch_goes_one_by_one(
    bus: Bus,
) -> None:
    stream, spec = await _setup(bus)
    envs = [_env() for _ in range(5)]
    bad = envs[3].event_id
    batches: list[list[str]] = []
    alone: list[str] = []

    async def batch(items: Sequence[Item]) -> None:
        ids = [env.event_id for env, _ in items]
        batches.append(ids)
        if bad in ids:
            raise Poison("one of them names no inbox")

    async def handler(env: events_pb2.EventEnvelope, d: Delivery) -> None:
        if env.event_id == bad:
            raise Poison("names no inbox")
        alone.append(env.event_id)

    for env in envs:  # all stored before the first fetch
        await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    runner = bus.consumer(spec, handler, batch)
    runner.start()
    await _until(lambda: len(alone) == 4)
    await runner.stop()
    assert batches == [[e.event_id for e in envs]]  # in stream order
    assert alone == [e.event_id for e in envs if e.event_id != bad]
    dead = await _dead_letters(bus, spec.durable)
    assert [events_pb2.EventEnvelope.FromString(d.data).event_id for d in dead] == [bad]
    info = await bus.js.consumer_info(stream.name, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0

    # a batch that succeeds: every event acked, none handled alone
    more = [_env() for _ in range(3)]
    for env in more:
        await bus.publish_bytes(f"sb.{stream.domain}.x", env.SerializeToString(), env.event_id)
    runner = bus.consumer(spec, handler, batch)
    runner.start()
    await _until(lambda: len(batches) == 2)
    await runner.stop()
    assert batches[1] == [e.event_id for e in more] and len(alone) == 4
    info = await bus.js.consumer_info(stream.name, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert _value(bus, m.BUS_MESSAGES, consumer=spec.durable, outcome="acked") == 7
