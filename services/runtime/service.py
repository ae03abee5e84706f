"""One service process: its resources, gRPC server, consumers and background work, and
graceful shutdown on SIGTERM/SIGINT:

  health NOT_SERVING → stop intake and consumers (finish what is in hand) → stop the relay
  → drain NATS → stop gRPC with grace → close database, Redis and channels.

Each service's `app.py` (its composition root) builds one `ServiceRuntime`, adds what it
needs, and calls `serve()`.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
import redis.asyncio as aioredis

from . import grpc_client, log, redis_client, registry
from .bus import BatchHandler, Bus, ConsumerRunner, ConsumerSpec, Handler, default_streams
from .clock import Clock, SystemClock
from .db import Database, Migration, load_migrations, runtime_migrations, with_database
from .grpc_server import GrpcServer
from .ids import IdGenerator
from .metrics import Metrics
from .outbox import Outbox
from .registry import DEFAULT_PORTS
from .settings import RuntimeSettings, ServiceSettings
from .settings import load as load_settings

Stopper = Callable[[], Awaitable[None]]


def run(main: Callable[[], Coroutine[Any, Any, int | None]]) -> None:
    """Run a process's main coroutine (with uvloop) and exit with its code."""
    try:
        import uvloop

        code = uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency
        code = asyncio.run(main())
    sys.exit(code or 0)


def service_migrations(service: str) -> list[Migration]:
    return [*runtime_migrations(), *load_migrations(service, f"services.{service}.migrations")]


class ServiceRuntime:
    def __init__(self, name: str, settings: RuntimeSettings, *, clock: Clock | None = None) -> None:
        self.name = name
        self.settings = settings
        log.configure(name, settings.effective_log_format, settings.log_level)
        self.log = log.get(name)
        self.clock: Clock = clock or SystemClock()
        self.ids = IdGenerator(self.clock)
        self.metrics = Metrics(name)
        self.db: Database | None = None
        self.bus: Bus | None = None
        self.outbox: Outbox | None = None
        self.redis: aioredis.Redis | None = None
        self.grpc: GrpcServer | None = None
        self._consumers: list[ConsumerRunner] = []
        self._intake: list[tuple[str, Stopper]] = []
        self._background: list[tuple[str, Callable[[], asyncio.Task[Any]]]] = []
        self._closers: list[Stopper] = []
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stop = asyncio.Event()
        self._failed: list[str] = []

    # -- resources -------------------------------------------------------------------

    async def open_database(self) -> Database:
        s = self.settings
        assert isinstance(s, ServiceSettings)
        url = with_database(s.database_url, s.database_name or f"sb_{self.name}")
        self.db = Database(url, min_size=s.database_pool_min, max_size=s.database_pool_max)
        await self.db.open(service_migrations(self.name), create=s.database_create)
        self._closers.append(self.db.close)
        return self.db

    async def open_bus(self, *, provision: bool = True) -> Bus:
        self.bus = Bus(self.settings.nats_url, f"sb-{self.name}", self.metrics)
        await self.bus.connect()
        if provision:
            await self.bus.provision(default_streams(self.settings.nats_replicas))
        return self.bus

    def open_outbox(self) -> Outbox:
        if self.db is None or self.bus is None:
            raise RuntimeError("the outbox needs the database and the bus")
        self.outbox = Outbox(self.db, self.bus, metrics=self.metrics)
        self.metrics.sampler("outbox", self.outbox.sample)
        return self.outbox

    async def open_redis(self) -> aioredis.Redis:
        self.redis = redis_client.connect(self.settings.redis_url)
        await self.redis.ping()
        self._closers.append(self.redis.aclose)
        return self.redis

    def channel(self, service: str) -> grpc.aio.Channel:
        """A shared channel to a peer service (closed at shutdown)."""
        if service not in self._channels:
            self._channels[service] = grpc_client.channel(self.settings.addr_of(service))
        return self._channels[service]

    def grpc_server(self) -> GrpcServer:
        s = self.settings
        assert isinstance(s, ServiceSettings)
        port = s.grpc_port or DEFAULT_PORTS[self.name]
        self.grpc = GrpcServer(self.name, s.grpc_host, port, self.ids, self.metrics)
        return self.grpc

    # -- work ------------------------------------------------------------------------

    async def add_consumer(
        self, spec: ConsumerSpec, handler: Handler, batch: BatchHandler | None = None
    ) -> None:
        """Run a durable consumer that this service's registry entry declares (so that
        the release bootstrap provisions it too); `batch`: each fetch's events at once
        (bus.py ConsumerRunner)."""
        if self.bus is None:
            raise RuntimeError("open the bus first")
        if spec not in registry.get(self.name).consumers:
            raise RuntimeError(
                f"{spec.durable} is not declared for {self.name} in services/runtime/registry.py"
            )
        await self.bus.provision((), (spec,))
        runner = self.bus.consumer(spec, handler, batch)
        self.metrics.sampler(f"consumer:{spec.durable}", runner.sample)
        self._consumers.append(runner)

    def add_background(
        self, name: str, start: Callable[[], asyncio.Task[Any]], stop: Stopper
    ) -> None:
        """Long-running work that takes in work from outside (IMAP fetchers): started with
        the service, watched (its death stops the process), stopped with the intake."""
        self._background.append((name, start))
        self._intake.append((name, stop))

    def add_intake(self, name: str, stop: Stopper) -> None:
        """Something that accepts work from outside (an SMTP listener): stopped first."""
        self._intake.append((name, stop))

    def on_close(self, closer: Stopper) -> None:
        self._closers.append(closer)

    def request_stop(self) -> None:
        self._stop.set()

    # -- lifecycle -------------------------------------------------------------------

    def _watch(self, task: asyncio.Task[Any], what: str) -> None:
        def done(t: asyncio.Task[Any]) -> None:
            if t.cancelled() or self._stop.is_set():
                return
            exc = t.exception()
            self.log.error("critical task ended", task=what, error=repr(exc) if exc else None)
            self._failed.append(what)
            self._stop.set()

        task.add_done_callback(done)

    async def serve(self) -> int:
        """Start everything, run until SIGTERM/SIGINT (or a critical task dies), shut down.
        Returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        if not await self._serve_metrics():
            await self.shutdown()
            return 2
        if self.grpc is not None:
            port = await self.grpc.start()
            self.log.info("grpc listening", port=port)
        if self.outbox is not None:
            self._watch(self.outbox.start(), "outbox-relay")
        for consumer in self._consumers:
            self._watch(consumer.start(), consumer.spec.durable)
        for name, start in self._background:
            self._watch(start(), name)
        if self.grpc is not None:
            await self.grpc.set_serving(True)
        # What start-up made (modules, generated protobuf classes, a language model…) lives
        # as long as the process: out of the collector's sight, so that a full collection
        # does not stall every request in hand while it walks all of it again.
        gc.collect()
        gc.freeze()
        self.log.info("service ready", frozen_objects=gc.get_freeze_count())
        await self._stop.wait()
        await self.shutdown()
        return 1 if self._failed else 0

    async def shutdown(self) -> None:
        grace = self.settings.shutdown_grace_s
        self.log.info("shutting down", grace_s=grace)
        if self.grpc is not None:
            await self.grpc.enter_graceful_shutdown()
        for name, stop in self._intake:
            await self._quietly(stop(), f"stop {name}")
        await asyncio.gather(*(self._quietly(c.stop(), c.spec.durable) for c in self._consumers))
        if self.outbox is not None:
            await self._quietly(self.outbox.stop(), "outbox relay")
        if self.bus is not None:
            await self._quietly(self.bus.drain(), "nats drain")
        if self.grpc is not None:
            await self.grpc.stop(grace)
        for ch in self._channels.values():
            await self._quietly(ch.close(), "channel close")
        for closer in reversed(self._closers):
            await self._quietly(closer(), "close")
        await self._quietly(self.metrics.close(), "metrics listener")
        self.log.info("stopped")

    async def _serve_metrics(self) -> bool:
        """Listen for /metrics (unless switched off); False when the port cannot be had."""
        address = self.settings.metrics_address(self.name)
        if address is None:
            return True
        try:
            port = await self.metrics.serve(*address)
        except OSError as exc:
            self.log.error("cannot serve metrics", error=str(exc))
            return False
        self.log.info("metrics listening", host=address[0], port=port)
        return True

    async def _quietly(self, aw: Awaitable[Any], what: str) -> None:
        try:
            await asyncio.wait_for(aw, timeout=max(self.settings.shutdown_grace_s, 1.0))
        except Exception as exc:
            self.log.warning("shutdown step failed", step=what, error=repr(exc))


async def health_only(name: str) -> int:
    """A service whose API has not been built yet: its process, settings, logging, gRPC
    server and health service, and nothing else (no placeholder methods)."""
    settings = load_settings(ServiceSettings)
    rt = ServiceRuntime(name, settings)
    rt.grpc_server()
    return await rt.serve()
