"""The metrics runtime (services/runtime/metrics.py): the catalogue's conventions, one
registry per process exposed with its component label, samplers run before a scrape,
the /metrics listener over real HTTP, the gateway's HTTP middleware on a real aiohttp
server, IMAP fetch lag, and the log ids an operation finds as it goes."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from switchboard.v1 import events_pb2

from services.devstack.infra import free_port
from services.ingestion.imap import ImapMetrics, MailboxStats
from services.runtime import events, log
from services.runtime import metrics as m
from services.runtime.settings import RuntimeSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# -- the catalogue ---------------------------------------------------------------------------


def test_every_series_follows_prometheus_naming_and_is_declared_once() -> None:
    names = [s.name for s in m.CATALOGUE]
    assert len(names) == len(set(names))
    for s in m.CATALOGUE:
        assert re.fullmatch(r"switchboard_[a-z0-9_]+", s.name), s.name
        assert (s.kind == "counter") == s.name.endswith("_total"), s.name
        if s.kind == "histogram":
            assert s.name.endswith("_seconds"), s.name  # base units
        assert m.COMPONENT_LABEL not in s.labels  # added to every sample on the way out
        assert s.help, s.name


def test_every_series_is_documented_with_its_labels() -> None:
    text = DOCS.read_text()
    for s in m.CATALOGUE:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{s.name}`")]
        assert len(rows) == 1, f"docs/metrics.md has no row for {s.name}"
        for label in s.labels:
            assert f"`{label}`" in rows[0], f"{s.name}: label {label} not documented"


# -- one process's registry ------------------------------------------------------------------


def test_every_sample_carries_the_component_and_no_created_series() -> None:
    metrics = m.Metrics("tickets")
    metrics.counter(m.LOCK_CHANGES).labels("acquired").inc(2)
    metrics.histogram(m.GRPC_DURATION).labels("svc", "Get").observe(0.003)
    assert metrics.counter(m.LOCK_CHANGES) is metrics.counter(m.LOCK_CHANGES)
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    got = samples(body.decode())
    acquired = frozenset({("change", "acquired"), ("component", "tickets")})
    assert got[("switchboard_reply_lock_changes_total", acquired)] == 2
    bucket = frozenset(
        {("grpc_service", "svc"), ("grpc_method", "Get"), ("le", "0.005"), ("component", "tickets")}
    )
    assert got[("switchboard_grpc_server_request_duration_seconds_bucket", bucket)] == 1
    assert all(dict(labels).get("component") == "tickets" for _, labels in got)
    assert not [name for name, _ in got if name.endswith("_created")]
    assert any(name == "process_resident_memory_bytes" for name, _ in got)


def test_openmetrics_is_answered_when_asked_for() -> None:
    metrics = m.Metrics("gateway")
    metrics.gauge(m.WEBSOCKET_CLIENTS).set(3)
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert 'switchboard_websocket_clients{component="gateway"} 3.0' in body.decode()
    assert body.decode().rstrip().endswith("# EOF")


def test_labelled_children_are_looked_up_once() -> None:
    counter = m.Metrics("x").counter(m.OUTBOUND_SENDS)
    children = m.Children(counter)
    assert children("sent") is children("sent")
    children("sent").inc()
    assert counter.labels("sent")._value.get() == 1


def test_the_metrics_address_is_the_registrys_unless_set_or_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert RuntimeSettings().metrics_address("tickets") == ("127.0.0.1", 9103)
    assert RuntimeSettings().metrics_address("gateway") == ("127.0.0.1", 9100)
    monkeypatch.setenv("SB_METRICS_PORT", "9500")
    monkeypatch.setenv("SB_METRICS_HOST", "0.0.0.0")
    assert RuntimeSettings().metrics_address("tickets") == ("0.0.0.0", 9500)
    monkeypatch.setenv("SB_METRICS_ENABLED", "false")
    assert RuntimeSettings().metrics_address("tickets") is None


# -- samplers --------------------------------------------------------------------------------


async def test_samplers_run_before_a_scrape_at_most_once_a_second() -> None:
    metrics = m.Metrics("outbound")
    due = metrics.gauge(m.OUTBOUND_DUE)
    runs: list[int] = []

    async def sample() -> None:
        runs.append(1)
        due.set(len(runs) * 10)

    metrics.sampler("due", sample)
    await asyncio.gather(metrics.refresh(), metrics.refresh(), metrics.refresh())
    assert runs == [1]
    got = samples(metrics.exposition()[0].decode())
    assert got[("switchboard_outbound_due_sends", frozenset({("component", "outbound")}))] == 10
    metrics.min_refresh_s = 0
    await metrics.refresh()
    assert len(runs) == 2


async def test_a_failing_or_slow_sampler_is_counted_and_does_not_stop_the_others() -> None:
    metrics = m.Metrics("tickets", sample_timeout_s=0.2)
    held = metrics.gauge(m.LOCKS_HELD)

    async def broken() -> None:
        raise ConnectionError("database away")

    async def stuck() -> None:
        await asyncio.sleep(30)

    async def fine() -> None:
        held.set(4)

    for name, sample in (("broken", broken), ("stuck", stuck), ("fine", fine)):
        metrics.sampler(name, sample)
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        await metrics.refresh()
    assert time.monotonic() - started < 5  # the stuck one was given up on
    got = samples(metrics.exposition()[0].decode())
    tickets = ("component", "tickets")
    assert got[("switchboard_reply_locks_held", frozenset({tickets}))] == 4
    for name in ("broken", "stuck"):
        key = ("switchboard_metrics_sample_failures_total", frozenset({tickets, ("sampler", name)}))
        assert got[key] == 1
    assert {e["sampler"] for e in logs if e["event"] == "metrics sample failed"} == {
        "broken",
        "stuck",
    }


# -- the listener ----------------------------------------------------------------------------


async def test_metrics_are_served_over_http_on_their_own_port() -> None:
    metrics = m.Metrics("routing")
    metrics.counter(m.BUS_REDELIVERIES).labels("routing__messages").inc()
    port = await metrics.serve("127.0.0.1", free_port())
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            async with http.get(f"http://127.0.0.1:{port}/other") as resp:
                assert resp.status == 404
    finally:
        await metrics.close()
    key = frozenset({("consumer", "routing__messages"), ("component", "routing")})
    assert samples(text)[("switchboard_bus_redeliveries_total", key)] == 1
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def test_a_taken_port_is_a_clear_error() -> None:
    first, second = m.Metrics("a"), m.Metrics("b")
    port = await first.serve("127.0.0.1", free_port())
    try:
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await second.serve("127.0.0.1", port)
    finally:
        await first.close()
        await second.close()


# -- the HTTP middleware ---------------------------------------------------------------------


@pytest.fixture
async def http_app() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], m.Metrics]]:
    metrics = m.Metrics("gateway")

    async def item(request: web.Request) -> web.Response:
        if request.match_info["item_id"] == "secret":
            raise web.HTTPForbidden()
        return web.json_response({"id": request.match_info["item_id"]})

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.sleep(0.3)
        await ws.close()
        return ws

    app = web.Application(middlewares=[m.http_middleware(metrics)])
    app.router.add_get("/items/{item_id}", item)
    app.router.add_get("/live", socket)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, metrics
    await client.close()


async def test_http_requests_are_counted_by_route_template_method_and_code(
    http_app: tuple[TestClient[web.Request, web.Application], m.Metrics],
) -> None:
    client, metrics = http_app
    for path in ("/items/1", "/items/2", "/items/secret", "/no/such/path", "/items/3"):
        await (await client.get(path)).release()
    await (await client.post("/items/1")).release()
    async with client.ws_connect("/live") as ws:
        await ws.receive()
    for _ in range(100):  # the server's handler returns a moment after the client saw close
        got = samples(metrics.exposition()[0].decode())
        if any(dict(labels).get("route") == "/live" for _, labels in got):
            break
        await asyncio.sleep(0.02)

    def count(method: str, route: str, code: str) -> float:
        labels = {("method", method), ("route", route), ("code", code), ("component", "gateway")}
        return got.get(("switchboard_http_requests_total", frozenset(labels)), 0)

    assert count("GET", "/items/{item_id}", "200") == 3
    assert count("GET", "/items/{item_id}", "403") == 1
    assert count("GET", m.UNMATCHED, "404") == 1
    assert count("POST", m.UNMATCHED, "405") + count("POST", "/items/{item_id}", "405") == 1
    assert count("GET", "/live", "101") == 1
    routes = {dict(labels).get("route") for _, labels in got if "route" in dict(labels)}
    assert not [r for r in routes if r and re.search(r"/items/\d|secret", r)]  # no raw paths
    timed = {("method", "GET"), ("route", "/items/{item_id}"), ("component", "gateway")}
    assert got[("switchboard_http_request_duration_seconds_count", frozenset(timed))] == 4
    socket = {("method", "GET"), ("route", "/live"), ("component", "gateway")}
    assert ("switchboard_http_request_duration_seconds_count", frozenset(socket)) not in got


# -- IMAP fetch lag --------------------------------------------------------------------------


def test_imap_fetch_lag_is_zero_while_idle_and_grows_while_behind() -> None:
    now = time.monotonic()
    stats = {
        "idle-mailbox": MailboxStats(caught_up_at=now - 200, idle=True),
        "polled-mailbox": MailboxStats(caught_up_at=now - 30, waiting=2, fetched=5, errors=1),
    }
    metrics = m.Metrics("ingestion")
    metrics.register(ImapMetrics(stats))
    got = samples(metrics.exposition()[0].decode())

    def value(name: str, mailbox: str) -> float:
        return got[(name, frozenset({("mailbox_id", mailbox), ("component", "ingestion")}))]

    assert value("switchboard_imap_fetch_lag_seconds", "idle-mailbox") == 0
    assert 30 <= value("switchboard_imap_fetch_lag_seconds", "polled-mailbox") < 60
    assert value("switchboard_imap_mails_waiting", "polled-mailbox") == 2
    assert value("switchboard_imap_fetched_total", "polled-mailbox") == 5
    assert value("switchboard_imap_errors_total", "polled-mailbox") == 1
    del stats["polled-mailbox"]  # fetched by another replica now: its series go from here
    got = samples(metrics.exposition()[0].decode())
    assert not [k for k in got if ("mailbox_id", "polled-mailbox") in k[1]]


# -- log ids ---------------------------------------------------------------------------------


def test_ids_an_operation_finds_are_bound_until_its_end_and_no_longer() -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service="tickets")
    log.also(ticket_id="outside")  # no operation: nothing is bound for good
    assert "ticket_id" not in structlog.contextvars.get_contextvars()
    with log.operation(tenant_id="t1", ticket_id=""):
        assert "ticket_id" not in structlog.contextvars.get_contextvars()
        log.also(ticket_id="k1", draft_id="d1")
        log.also(ticket_id="k2")
        assert structlog.contextvars.get_contextvars()["ticket_id"] == "k2"
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            log.get("x").info("saved")
        assert logs[0]["ticket_id"] == "k2" and logs[0]["tenant_id"] == "t1"
    assert structlog.contextvars.get_contextvars() == {"service": "tickets"}


def test_an_events_ticket_is_found_in_its_payload() -> None:
    created = events_pb2.EventEnvelope(type="ticket.created")
    created.ticket_created.ticket.id = "t-1"
    draft = events_pb2.EventEnvelope(type="draft.changed")
    draft.draft_changed.ticket_id = "t-2"
    received = events_pb2.EventEnvelope(type="message.received")
    received.message_received.message_id = "m"
    assert events.ticket_id_of(created) == "t-1"
    assert events.ticket_id_of(draft) == "t-2"
    assert events.ticket_id_of(received) == ""
    assert events.ticket_id_of(events_pb2.EventEnvelope()) == ""


async def test_an_id_found_in_a_task_of_the_operation_ends_with_it() -> None:
    """The consumer loop runs each handler in a task of its own (a copy of the context):
    what the handler binds must neither break the operation's end nor outlive it."""
    structlog.contextvars.clear_contextvars()
    seen: dict[str, object] = {}

    async def handler() -> None:
        log.also(ticket_id="k9")
        seen.update(structlog.contextvars.get_contextvars())

    with log.operation(event_id="e1"):
        await asyncio.ensure_future(handler())
    assert seen == {"event_id": "e1", "ticket_id": "k9"}
    assert structlog.contextvars.get_contextvars() == {}
