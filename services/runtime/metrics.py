"""Prometheus metrics (prometheus-client): the catalogue of every series Switchboard
exports, one registry per process, samplers, and the /metrics listener.

Every series is declared here, once (as events.py declares every event): its name, kind,
labels and help. docs/metrics.md explains each to an on-call engineer, and the chart's
Grafana dashboard queries only these names (tests keep the three equal). A process builds
one `Metrics` in its composition root (ServiceRuntime does it for a service) and passes it
to what it instruments, which takes its metric objects from it once, at construction,
and binds their labels ahead of time where it can: the per-call work is a dictionary
lookup and an increment, never I/O.

Values that live elsewhere (JetStream consumer lag, the outbox backlog, reply locks held)
are read by samplers: async functions run just before a scrape is answered (at most once
a second, each bounded by a timeout), so nothing is queried while nobody scrapes.

Every sample is exposed with the label `component` (the process kind: tickets, gateway,
…), so dashboards need no scrape-side relabelling. Labels are bounded by design: methods,
route templates (never raw paths), consumers, states, reasons, mailbox ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from . import log

__all__ = ["CATALOGUE", "Children", "Metrics", "http_middleware"]

# Latency buckets in seconds, for calls answered in milliseconds that may take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMPONENT_LABEL = "component"


# -- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One metric family as it is exposed: `name` is the name a query uses (counters end
    in _total; a histogram's samples add _bucket, _sum and _count)."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class CounterSeries(Series):
    kind: ClassVar[str] = "counter"

    def family(self) -> CounterMetricFamily:
        """An empty family for a collector that reads its values at scrape time."""
        return CounterMetricFamily(self.name, self.help, labels=self.labels)


@dataclass(frozen=True)
class GaugeSeries(Series):
    kind: ClassVar[str] = "gauge"

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


@dataclass(frozen=True)
class HistogramSeries(Series):
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    kind: ClassVar[str] = "histogram"


# The runtime: every service (and the gateway for HTTP).
GRPC_REQUESTS = CounterSeries(
    "switchboard_grpc_server_requests_total",
    "gRPC calls answered, by method and status code",
    ("grpc_service", "grpc_method", "grpc_code"),
)
GRPC_DURATION = HistogramSeries(
    "switchboard_grpc_server_request_duration_seconds",
    "Time to answer a gRPC call, from its arrival to its status",
    ("grpc_service", "grpc_method"),
)
HTTP_REQUESTS = CounterSeries(
    "switchboard_http_requests_total",
    "HTTP requests answered by the gateway, by route template, method and status code",
    ("method", "route", "code"),
)
HTTP_DURATION = HistogramSeries(
    "switchboard_http_request_duration_seconds",
    "Time to answer an HTTP request (not WebSocket sessions), by route template and method",
    ("method", "route"),
)
BUS_MESSAGES = CounterSeries(
    "switchboard_bus_messages_total",
    "JetStream messages handled by a durable consumer, by outcome (acked, retried, dead_lettered)",
    ("consumer", "outcome"),
)
BUS_HANDLE_DURATION = HistogramSeries(
    "switchboard_bus_handle_duration_seconds",
    "Time a consumer's handler took for one message",
    ("consumer",),
)
BUS_REDELIVERIES = CounterSeries(
    "switchboard_bus_redeliveries_total",
    "Messages delivered again to a consumer (after a nak, a crash or an ack timeout)",
    ("consumer",),
)
BUS_DEAD_LETTERS = CounterSeries(
    "switchboard_bus_dead_letters_total",
    "Messages a consumer gave up on and wrote to the dead-letter stream, by reason "
    "(undecodable, poison, max_deliveries)",
    ("consumer", "reason"),
)
BUS_PENDING = GaugeSeries(
    "switchboard_bus_consumer_pending_messages",
    "Messages in the stream that the durable consumer has not been given yet (its lag)",
    ("consumer",),
)
BUS_ACK_PENDING = GaugeSeries(
    "switchboard_bus_consumer_ack_pending_messages",
    "Messages given to the durable consumer and not yet acknowledged",
    ("consumer",),
)
OUTBOX_BACKLOG = GaugeSeries(
    "switchboard_outbox_backlog_events",
    "Events written to the service's outbox and not yet published to JetStream",
)
OUTBOX_OLDEST_AGE = GaugeSeries(
    "switchboard_outbox_oldest_event_age_seconds",
    "Age of the oldest unpublished outbox event (0 when none waits)",
)
OUTBOX_PUBLISHED = CounterSeries(
    "switchboard_outbox_published_total", "Outbox events published and acknowledged"
)
OUTBOX_FAILURES = CounterSeries(
    "switchboard_outbox_publish_failures_total",
    "Outbox events whose publish failed (retried by the relay)",
)
SAMPLE_FAILURES = CounterSeries(
    "switchboard_metrics_sample_failures_total",
    "Samplers that failed or timed out before a scrape (their gauges keep the last value)",
    ("sampler",),
)
# ingestion
SMTP_ACCEPTED = CounterSeries(
    "switchboard_smtp_intake_accepted_total",
    "Mails the SMTP intake answered 250 to (stored and announced)",
)
SMTP_REFUSED = CounterSeries(
    "switchboard_smtp_intake_refused_total",
    "Refusals the SMTP intake answered, by reason (per recipient at RCPT, per mail at DATA)",
    ("reason",),
)
IMAP_FETCH_LAG = GaugeSeries(
    "switchboard_imap_fetch_lag_seconds",
    "Seconds since the mailbox was last known to be fetched up to date (0 while IDLE waits "
    "on a live connection)",
    ("mailbox_id",),
)
IMAP_WAITING = GaugeSeries(
    "switchboard_imap_mails_waiting",
    "Mails the last search of the mailbox found that are not stored yet",
    ("mailbox_id",),
)
IMAP_FETCHED = CounterSeries(
    "switchboard_imap_fetched_total", "Mails fetched from the mailbox and stored", ("mailbox_id",)
)
IMAP_ERRORS = CounterSeries(
    "switchboard_imap_errors_total",
    "Connection or server troubles of the mailbox's fetcher (each followed by a reconnect)",
    ("mailbox_id",),
)
# outbound
OUTBOUND_SENDS = CounterSeries(
    "switchboard_outbound_sends_total",
    "Outgoing mails entering a delivery state (scheduled, sending, retrying, sent, failed, "
    "unknown, cancelled, bounced)",
    ("state",),
)
OUTBOUND_DUE = GaugeSeries(
    "switchboard_outbound_due_sends",
    "Outgoing mails whose time has come and that no worker has taken yet",
)
OUTBOUND_DUE_AGE = GaugeSeries(
    "switchboard_outbound_oldest_due_age_seconds",
    "How long the oldest due outgoing mail has waited past its time (0 when none)",
)
# tickets
LOCKS_HELD = GaugeSeries(
    "switchboard_reply_locks_held",
    "Reply locks held now, across every replica (read from the tickets database)",
)
LOCK_CHANGES = CounterSeries(
    "switchboard_reply_lock_changes_total",
    "Reply lock changes made by this replica (acquired, taken_over, renewed, released, expired)",
    ("change",),
)
# channels (issue 21): ingestion's deliveries of replies to API channels and LINE
CHANNEL_DELIVERY_ATTEMPTS = CounterSeries(
    "switchboard_channel_delivery_attempts_total",
    "Attempts to deliver a reply to an API channel's webhook or to LINE, by channel kind and "
    "outcome (delivered, retrying, dead)",
    ("kind", "outcome"),
)
CHANNEL_DELIVERY_DURATION = HistogramSeries(
    "switchboard_channel_delivery_duration_seconds",
    "Time one delivery attempt took (the webhook's or LINE's answer, or the failure)",
    ("kind",),
)
# the customer-data lookup (issue 21): tickets' calls to the tenants' systems
CUSTOMER_LOOKUPS = CounterSeries(
    "switchboard_customer_lookups_total",
    "Customer-data lookups fetched from a tenant's system, by outcome (ok, or why it was "
    "unavailable: timeout, refused, connect, http_status, invalid_json, too_large, redirect); "
    "cached answers and lookups that asked nothing (no address, switched off) are not counted",
    ("outcome",),
)
CUSTOMER_LOOKUP_DURATION = HistogramSeries(
    "switchboard_customer_lookup_duration_seconds",
    "Time a customer-data lookup's fetch took, whatever its outcome",
)
# gateway
WEBSOCKET_CLIENTS = GaugeSeries(
    "switchboard_websocket_clients", "Live WebSocket clients connected to this gateway"
)
WEBSOCKET_SLOW = CounterSeries(
    "switchboard_websocket_slow_closed_total",
    "Live WebSocket clients closed because they could not keep up with their pushes",
)

CATALOGUE: tuple[Series, ...] = (
    GRPC_REQUESTS,
    GRPC_DURATION,
    HTTP_REQUESTS,
    HTTP_DURATION,
    BUS_MESSAGES,
    BUS_HANDLE_DURATION,
    BUS_REDELIVERIES,
    BUS_DEAD_LETTERS,
    BUS_PENDING,
    BUS_ACK_PENDING,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_FAILURES,
    SAMPLE_FAILURES,
    SMTP_ACCEPTED,
    SMTP_REFUSED,
    IMAP_FETCH_LAG,
    IMAP_WAITING,
    IMAP_FETCHED,
    IMAP_ERRORS,
    OUTBOUND_SENDS,
    OUTBOUND_DUE,
    OUTBOUND_DUE_AGE,
    LOCKS_HELD,
    LOCK_CHANGES,
    CHANNEL_DELIVERY_ATTEMPTS,
    CHANNEL_DELIVERY_DURATION,
    CUSTOMER_LOOKUPS,
    CUSTOMER_LOOKUP_DURATION,
    WEBSOCKET_CLIENTS,
    WEBSOCKET_SLOW,
)


# -- one process's metrics -----------------------------------------------------------------

M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """A labelled metric's children, looked up once per set of label values: the hot paths
    then pay one dictionary lookup instead of prometheus-client's checks and lock."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._cache: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


Sample = Callable[[], Awaitable[None]]


@dataclass
class _Sampler:
    name: str
    sample: Sample


@dataclass
class _Labelled:
    """The registry's families with the process's `component` label on every sample."""

    registry: CollectorRegistry
    component: str

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                labels = {**s.labels, COMPONENT_LABEL: self.component}
                out.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)
            yield out


@dataclass
class Metrics:
    """One process's metrics: the metric objects it uses (made on first request, from the
    catalogue), collectors and samplers, and the HTTP listener that serves them."""

    component: str
    sample_timeout_s: float = 2.0
    min_refresh_s: float = 1.0
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _made: dict[str, Counter | Gauge | Histogram] = field(default_factory=dict)
    _samplers: list[_Sampler] = field(default_factory=list)
    _refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _refreshed_at: float | None = None
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        # _created series double every counter and histogram for a value nobody graphs.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # not annotated upstream
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self._exposed = _Labelled(self.registry, self.component)
        self._log = log.get("metrics")

    # -- metric objects ------------------------------------------------------------------

    def counter(self, series: CounterSeries) -> Counter:
        made = self._made.get(series.name)
        if made is None:
            made = Counter(series.name, series.help, series.labels, registry=self.registry)
            self._made[series.name] = made
        assert isinstance(made, Counter)
        return made

    def gauge(self, series: GaugeSeries) -> Gauge:
        made = self._made.get(series.name)
        if made is None:
            made = Gauge(series.name, series.help, series.labels, registry=self.registry)
            self._made[series.name] = made
        assert isinstance(made, Gauge)
        return made

    def histogram(self, series: HistogramSeries) -> Histogram:
        made = self._made.get(series.name)
        if made is None:
            made = Histogram(
                series.name,
                series.help,
                series.labels,
                registry=self.registry,
                buckets=series.buckets,
            )
            self._made[series.name] = made
        assert isinstance(made, Histogram)
        return made

    def register(self, collector: Collector) -> None:
        """A collector that reads its values when scraped (from memory: it must not block)."""
        self.registry.register(collector)

    def sampler(self, name: str, sample: Sample) -> None:
        """`sample()` is awaited before a scrape is answered, to set gauges from where the
        values live (a query, a JetStream request). It must be cheap: one statement."""
        self._samplers.append(_Sampler(name, sample))

    # -- scraping ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Run every sampler (not again within min_refresh_s; concurrent scrapes share one
        run). A sampler that fails or times out is logged and counted, and its gauges keep
        their last value."""
        async with self._refresh_lock:
            now = asyncio.get_running_loop().time()
            if self._refreshed_at is not None and now - self._refreshed_at < self.min_refresh_s:
                return
            self._refreshed_at = now
            await asyncio.gather(*(self._sample(s) for s in self._samplers))

    async def _sample(self, sampler: _Sampler) -> None:
        try:
            await asyncio.wait_for(sampler.sample(), self.sample_timeout_s)
        except Exception as exc:
            self.counter(SAMPLE_FAILURES).labels(sampler.name).inc()
            self._log.warning("metrics sample failed", sampler=sampler.name, error=repr(exc))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The current values in the format `accept` asks for (Prometheus text by
        default, OpenMetrics on request): (body, content type)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self._exposed), content_type

    async def _handle(self, request: web.Request) -> web.Response:
        await self.refresh()
        body, content_type = self.exposition(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def serve(self, host: str, port: int) -> int:
        """Listen for GET /metrics on host:port (0: any free port); the port bound."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# -- HTTP servers (the gateway) --------------------------------------------------------------

UNMATCHED = "unmatched"  # a path no route matched: one label value for all of them


def http_middleware(metrics: Metrics) -> Middleware:
    """An aiohttp middleware counting and timing requests by route template (the
    registered pattern, e.g. /api/v1/tickets/{ticket_id}: never the raw path), method and
    status code. Put it first, so it sees the final status of every request. A WebSocket
    session is counted (101) but not timed: its length is not a latency."""
    requests = Children(metrics.counter(HTTP_REQUESTS))
    durations = Children(metrics.histogram(HTTP_DURATION))

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = (resource.canonical if resource is not None else "") or UNMATCHED
            method = request.method
            requests(method, route, str(status)).inc()
            if status != 101:
                durations(method, route).observe(time.perf_counter() - started)

    return middleware
