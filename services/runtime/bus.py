"""The NATS JetStream bus: streams and durable pull consumers declared in code and
provisioned idempotently, publishing with `Nats-Msg-Id` = event id, and a consumer loop
that acks on success, naks with a delay on a transient error, and terms a poison message
after writing it to the dead-letter stream (also after the last allowed delivery)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from switchboard.v1 import events_pb2

from . import log
from . import metrics as m
from .errors import Poison
from .events import DEADLETTER, STREAMS, Stream, subject_of, ticket_id_of

__all__ = [
    "BatchHandler",
    "Bus",
    "ConsumerRunner",
    "ConsumerSpec",
    "Delivery",
    "Item",
    "Poison",
    "StreamSpec",
]

HDR_MSG_ID = "Nats-Msg-Id"
DAY = 86_400.0


@dataclass(frozen=True)
class StreamSpec:
    stream: Stream
    max_age_s: float = 14 * DAY
    duplicate_window_s: float = 120.0
    replicas: int = 1

    def config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream.name,
            subjects=self.stream.subjects,
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
        )


def default_streams(replicas: int = 1) -> list[StreamSpec]:
    return [
        StreamSpec(s, max_age_s=(30 if s is DEADLETTER else 14) * DAY, replicas=replicas)
        for s in STREAMS
    ]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer, named `<service>__<purpose>`."""

    stream: Stream
    durable: str
    filter_subjects: tuple[str, ...]
    max_deliver: int = 6
    ack_wait_s: float = 10.0  # a killed consumer's messages come back after this
    max_ack_pending: int = 2000
    nak_delays_s: tuple[float, ...] = (0.2, 1.0, 2.0, 5.0, 10.0)
    batch: int = 64
    concurrency: int = 1

    def config(self) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            # A few deliveries beyond our own limit, so that a failed dead-letter publish
            # at the last attempt is retried rather than the message silently dropped.
            max_deliver=self.max_deliver + 3,
            ack_wait=self.ack_wait_s,
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )

    def nak_delay(self, num_delivered: int) -> float:
        return self.nak_delays_s[min(max(num_delivered, 1), len(self.nak_delays_s)) - 1]


@dataclass
class Delivery:
    """What a handler knows of the delivery besides the envelope."""

    msg: Msg
    num_delivered: int
    stream_seq: int
    consumer: str

    async def in_progress(self) -> None:
        await self.msg.in_progress()


Handler = Callable[[events_pb2.EventEnvelope, Delivery], Awaitable[None]]
Item = tuple[events_pb2.EventEnvelope, Delivery]
# The messages of one fetch together, in stream order (one transaction of the handler's)
BatchHandler = Callable[[Sequence[Item]], Awaitable[None]]
StateCallback = Callable[[bool], Awaitable[None]]


class Bus:
    """One NATS connection with JetStream, shared by a process's publishers and consumers."""

    def __init__(self, url: str, name: str, metrics: m.Metrics | None = None) -> None:
        self._url = url
        self._name = name
        self.metrics = metrics or m.Metrics(name)
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._log = log.get("bus")
        self._on_state: list[StateCallback] = []
        self._draining = False

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("bus not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus not connected")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def on_state(self, callback: StateCallback) -> None:
        """Called with False on a disconnect and True on a reconnect."""
        self._on_state.append(callback)

    async def connect(self, timeout_s: float = 30.0) -> None:
        async def disconnected() -> None:
            if self._draining:
                return
            self._log.warning("nats disconnected")
            for cb in self._on_state:
                await cb(False)

        async def reconnected() -> None:
            self._log.info("nats reconnected")
            for cb in self._on_state:
                await cb(True)

        async def error(exc: Exception) -> None:
            self._log.warning("nats error", error=str(exc))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                self._nc = await nats.connect(
                    self._url,
                    name=self._name,
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                )
                break
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                if loop.time() > deadline:
                    raise ConnectionError(f"cannot reach NATS at {self._url}: {exc}") from exc
                self._log.info("waiting for nats", url=self._url, error=str(exc))
                await asyncio.sleep(0.5)
        self._js = self._nc.jetstream(timeout=5)

    async def provision(
        self, streams: Sequence[StreamSpec], consumers: Sequence[ConsumerSpec] = ()
    ) -> None:
        """Create or update streams and consumers; safe to run from every replica."""
        for spec in streams:
            cfg = spec.config()
            try:
                await self.js.add_stream(cfg)
            except nats.js.errors.BadRequestError:
                await self.js.update_stream(cfg)
        for cspec in consumers:
            await self.js.add_consumer(cspec.stream.name, cspec.config())

    async def publish(self, env: events_pb2.EventEnvelope) -> api.PubAck:
        return await self.publish_bytes(subject_of(env), env.SerializeToString(), env.event_id)

    async def publish_bytes(
        self,
        subject: str,
        data: bytes,
        msg_id: str,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> api.PubAck:
        hdrs = {HDR_MSG_ID: msg_id, **(headers or {})}
        return await self.js.publish(subject, data, timeout=timeout, headers=hdrs)

    async def publish_many(
        self, items: Sequence[tuple[str, bytes, str]], timeout: float = 5.0
    ) -> list[api.PubAck | BaseException]:
        """Publish (subject, data, msg_id) items pipelined, in this order on the wire (so a
        stream keeps them in order), and wait for every ack; a failure per item."""
        futures: list[asyncio.Future[api.PubAck] | BaseException] = []
        for subject, data, msg_id in items:
            try:
                futures.append(
                    await self.js.publish_async(
                        subject, data, wait_stall=timeout, headers={HDR_MSG_ID: msg_id}
                    )
                )
            except (nats.errors.Error, OSError) as exc:
                futures.append(exc)
        pending = [f for f in futures if isinstance(f, asyncio.Future)]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        results: list[api.PubAck | BaseException] = []
        for f in futures:
            if not isinstance(f, asyncio.Future):
                results.append(f)
            elif not f.done():
                f.cancel()
                results.append(TimeoutError("no ack from JetStream"))
            elif f.exception() is not None:
                results.append(f.exception())  # type: ignore[arg-type]
            else:
                results.append(f.result())
        return results

    def consumer(
        self, spec: ConsumerSpec, handler: Handler, batch: BatchHandler | None = None
    ) -> ConsumerRunner:
        return ConsumerRunner(self, spec, handler, batch)

    async def drain(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            self._draining = True
            try:
                await self._nc.drain()
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                self._log.warning("nats drain failed", error=str(exc))
                try:
                    await self._nc.close()
                except (nats.errors.Error, OSError, TimeoutError):
                    pass


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(text.split())[:limit]


@dataclass
class ConsumerRunner:
    """Fetches from one durable pull consumer and hands each event to `handler` — or, with
    a `batch` handler, each fetch's events to it at once: all acked when it returns; when
    it raises, each event again on its own through `handler` (so a poison event is
    dead-lettered alone and a transient failure retried per event)."""

    bus: Bus
    spec: ConsumerSpec
    handler: Handler
    batch: BatchHandler | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._log = log.get("consumer").bind(consumer=self.spec.durable)
        self._sem = asyncio.Semaphore(self.spec.concurrency)
        metrics, durable = self.bus.metrics, self.spec.durable
        messages = metrics.counter(m.BUS_MESSAGES)
        self._acked = messages.labels(durable, "acked")
        self._retried = messages.labels(durable, "retried")
        self._dead = messages.labels(durable, "dead_lettered")
        self._duration = metrics.histogram(m.BUS_HANDLE_DURATION).labels(durable)
        self._redelivered = metrics.counter(m.BUS_REDELIVERIES).labels(durable)
        self._dead_reasons = m.Children(metrics.counter(m.BUS_DEAD_LETTERS))
        self._pending = metrics.gauge(m.BUS_PENDING).labels(durable)
        self._ack_pending = metrics.gauge(m.BUS_ACK_PENDING).labels(durable)

    async def sample(self) -> None:
        """The consumer's lag from JetStream (one request): for the metrics sampler."""
        info = await self.bus.js.consumer_info(self.spec.stream.name, self.spec.durable)
        self._pending.set(info.num_pending or 0)
        self._ack_pending.set(info.num_ack_pending or 0)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"consumer:{self.spec.durable}")
        return self._task

    async def stop(self) -> None:
        """Stop fetching; let the messages in hand finish; return when the loop is done."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        sub = await self.bus.js.pull_subscribe_bind(
            durable=self.spec.durable, stream=self.spec.stream.name
        )
        self._log.info("consuming", stream=self.spec.stream.name)
        try:
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(self.spec.batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                    break
                except nats.errors.Error as exc:
                    self._log.warning("fetch failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                if self.batch is not None and len(msgs) > 1:
                    await self.handle_batch(msgs)
                elif self.spec.concurrency == 1:
                    for msg in msgs:
                        await self.handle(msg)
                else:
                    await asyncio.gather(*(self._bounded(m) for m in msgs))
        finally:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass
            self._log.info("stopped consuming")

    async def _bounded(self, msg: Msg) -> None:
        async with self._sem:
            await self.handle(msg)

    def _delivery(self, msg: Msg) -> Delivery:
        meta = msg.metadata
        return Delivery(
            msg=msg,
            num_delivered=meta.num_delivered,
            stream_seq=meta.sequence.stream,
            consumer=self.spec.durable,
        )

    @staticmethod
    def _decode(msg: Msg) -> events_pb2.EventEnvelope:
        env = events_pb2.EventEnvelope()
        env.ParseFromString(msg.data)
        uuid.UUID(env.event_id)
        uuid.UUID(env.tenant_id)
        return env

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        items: list[Item] = []
        for msg in msgs:
            try:
                items.append((self._decode(msg), self._delivery(msg)))
            except (DecodeError, ValueError):
                await self.handle(msg)  # dead-lettered alone
        if not items or self.batch is None:
            return
        started = time.perf_counter()
        try:
            await self._with_progress(self.batch(items), [d for _, d in items])
        except Exception as exc:
            self._log.warning("batch failed; one by one", error=repr(exc), size=len(items))
            for _, d in items:
                await self.handle(d.msg)
            return
        each = (time.perf_counter() - started) / len(items)
        for _, d in items:
            if d.num_delivered > 1:
                self._redelivered.inc()
            self._duration.observe(each)
            self._acked.inc()
            await self._settle(d.msg.ack())

    async def handle(self, msg: Msg) -> None:
        delivery = self._delivery(msg)
        if delivery.num_delivered > 1:
            self._redelivered.inc()
        try:
            env = self._decode(msg)
        except (DecodeError, ValueError) as exc:
            await self._dead_letter(msg, delivery, "undecodable", f"undecodable envelope: {exc}")
            return
        with log.operation(
            event_id=env.event_id,
            event_type=env.type,
            tenant_id=env.tenant_id,
            correlation_id=env.correlation_id,
            ticket_id=ticket_id_of(env),
        ):
            started = time.perf_counter()
            try:
                await self._with_progress(self.handler(env, delivery), [delivery])
            except Poison as exc:
                self._duration.observe(time.perf_counter() - started)
                await self._dead_letter(msg, delivery, "poison", f"poison: {exc}")
                return
            except Exception as exc:
                self._duration.observe(time.perf_counter() - started)
                if delivery.num_delivered >= self.spec.max_deliver:
                    self._log.exception("giving up after max deliveries")
                    await self._dead_letter(
                        msg,
                        delivery,
                        "max_deliveries",
                        f"failed {delivery.num_delivered} times: {exc!r}",
                    )
                    return
                delay = self.spec.nak_delay(delivery.num_delivered)
                self._log.warning(
                    "handler failed; will retry",
                    error=repr(exc),
                    attempt=delivery.num_delivered,
                    retry_in_s=delay,
                )
                self._retried.inc()
                await self._settle(msg.nak(delay=delay))
                return
            self._duration.observe(time.perf_counter() - started)
            self._acked.inc()
            await self._settle(msg.ack())

    async def _with_progress(self, work: Awaitable[None], deliveries: Sequence[Delivery]) -> None:
        """Run the handler; tell JetStream we are still at it every ack_wait/3."""
        task = asyncio.ensure_future(work)
        every = max(self.spec.ack_wait_s / 3, 0.1)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=every)
                if done:
                    break
                for delivery in deliveries:
                    await self._settle(delivery.in_progress())
        except asyncio.CancelledError:
            task.cancel()
            raise
        task.result()

    async def _dead_letter(self, msg: Msg, delivery: Delivery, kind: str, reason: str) -> None:
        """Write the message to the dead-letter stream and term it; `kind` is the reason's
        class for the metrics (undecodable, poison, max_deliveries)."""
        self._log.error("dead-lettered", reason=_one_line(reason), seq=delivery.stream_seq)
        headers = {
            "Sb-Consumer": self.spec.durable,
            "Sb-Original-Subject": msg.subject,
            "Sb-Original-Stream-Seq": str(delivery.stream_seq),
            "Sb-Deliveries": str(delivery.num_delivered),
            "Sb-Reason": _one_line(reason),
        }
        try:
            await self.bus.publish_bytes(
                f"sb.{DEADLETTER.domain}.{self.spec.durable}",
                msg.data,
                msg_id=f"{self.spec.durable}:{delivery.stream_seq}",
                headers=headers,
            )
        except (nats.errors.Error, TimeoutError) as exc:
            # Keep the message: without its dead-letter record it must not be dropped.
            self._log.warning("dead-letter publish failed; will retry", error=str(exc))
            self._retried.inc()
            await self._settle(msg.nak(delay=self.spec.nak_delays_s[-1]))
            return
        self._dead.inc()
        self._dead_reasons(self.spec.durable, kind).inc()
        await self._settle(msg.term())

    async def _settle(self, op: Awaitable[Any]) -> None:
        try:
            await op
        except (nats.errors.Error, TimeoutError) as exc:
            # The server will redeliver after ack_wait; idempotent handlers absorb it.
            self._log.warning("ack/nak failed", error=str(exc))
