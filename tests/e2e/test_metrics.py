"""Metrics on the running system (PLT-4): every process answers GET /metrics on a port of
its own with the series of what it does, and after real traffic — mail by SMTP, API
calls, a reply lock, a reply sent to the SMTP peer, a live socket — the counters of the
processes that did the work have moved."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.devstack.stack import PROCESSES, Stack
from services.runtime import metrics as m
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import eventually, make_mail, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

GRPC = {m.GRPC_REQUESTS, m.GRPC_DURATION}
OUTBOX = {m.OUTBOX_BACKLOG, m.OUTBOX_OLDEST_AGE, m.OUTBOX_PUBLISHED, m.OUTBOX_FAILURES}
BUS = {
    m.BUS_MESSAGES,
    m.BUS_HANDLE_DURATION,
    m.BUS_REDELIVERIES,
    m.BUS_DEAD_LETTERS,
    m.BUS_PENDING,
    m.BUS_ACK_PENDING,
}
# What each process must show from its start, before any traffic.
EXPECTED: dict[str, set[m.Series]] = {
    "ingestion": GRPC
    | OUTBOX
    | {m.SMTP_ACCEPTED, m.SMTP_REFUSED}
    | {m.IMAP_FETCH_LAG, m.IMAP_WAITING, m.IMAP_FETCHED, m.IMAP_ERRORS}
    | {m.CHANNEL_DELIVERY_ATTEMPTS, m.CHANNEL_DELIVERY_DURATION},
    "routing": GRPC | OUTBOX | BUS,
    "tickets": GRPC
    | OUTBOX
    | BUS
    | {m.LOCKS_HELD, m.LOCK_CHANGES, m.CUSTOMER_LOOKUPS, m.CUSTOMER_LOOKUP_DURATION},
    "composition": GRPC | OUTBOX,
    "approval": GRPC,
    "outbound": GRPC | OUTBOX | BUS | {m.OUTBOUND_SENDS, m.OUTBOUND_DUE, m.OUTBOUND_DUE_AGE},
    "reporting": GRPC,
    "accounts": GRPC | BUS,
    "gateway": {m.HTTP_REQUESTS, m.HTTP_DURATION, m.WEBSOCKET_CLIENTS, m.WEBSOCKET_SLOW},
}


async def scrape_text(stack: Stack, name: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.metrics_url(name), timeout=aiohttp.ClientTimeout(10)) as resp:
            assert resp.status == 200, name
            assert resp.headers["Content-Type"].startswith("text/plain")
            return await resp.text()


async def scrape(stack: Stack, name: str) -> Samples:
    text = await scrape_text(stack, name)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` that have these labels (and any others)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in got.items() if n == name and want <= ls)


def test_every_series_of_the_catalogue_is_served_by_some_process() -> None:
    served = set().union(*EXPECTED.values())
    assert {s.name for s in m.CATALOGUE} - {s.name for s in served} == {
        m.SAMPLE_FAILURES.name  # only once a sampler has failed
    }
    assert set(EXPECTED) == set(PROCESSES)


async def test_every_process_answers_metrics_on_its_own_port_with_its_series(
    stack: Stack,
) -> None:
    for name in PROCESSES:
        text = await scrape_text(stack, name)
        declared = set(re.findall(r"^# TYPE (switchboard_\S+) ", text, re.M))
        missing = {s.name for s in EXPECTED[name]} - declared
        assert not missing, f"{name} does not show {missing}"
        components = set(re.findall(r'component="([^"]+)"', text))
        assert components == {name}, f"{name}: {components}"
        assert "process_resident_memory_bytes" in text
    async with aiohttp.ClientSession() as http:  # not on the gateway's public port
        async with http.get(f"{stack.gateway_url}/metrics") as resp:
            assert resp.status == 404


async def test_real_traffic_moves_the_counters_of_the_processes_that_did_the_work(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    names = ("ingestion", "routing", "tickets", "outbound", "gateway")
    before = {n: await scrape(stack, n) for n in names}
    tenant, _admin, agent, _ = await desk(stack)

    # a mail by SMTP becomes a ticket; one to nobody is refused
    subject = f"Metrics {uuid.uuid4().hex[:6]}"
    ticket = await mail_ticket(stack, tenant, agent, subject)
    nobody = make_mail("lost", to=f"nobody@{uuid.uuid4().hex[:6]}.example")
    with pytest.raises(Exception, match="No such mailbox"):
        await asyncio.to_thread(send, stack.smtp_port, nobody)

    # the API: the list, the ticket, a live socket, a reply sent under the lock
    code, _body, _ = await call(stack, "GET", "/api/v1/tickets?status=open", token=agent)
    assert code == 200
    code, _body, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
    assert code == 200
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {agent}"}
        ) as ws:
            await ws.receive_json(timeout=5)  # hello: the socket is registered

            async def clients() -> Any:
                return value(await scrape(stack, "gateway"), m.WEBSOCKET_CLIENTS.name) >= 1

            await eventually(clients)
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    assert value(await scrape(stack, "tickets"), m.LOCKS_HELD.name) >= 1  # max over replicas
    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")

    async def after(name: str) -> Samples:
        return await scrape(stack, name)

    def moved(name: str, got: Samples, series: str, **labels: str) -> float:
        return value(got, series, **labels) - value(before[name], series, **labels)

    # tickets: its gRPC methods by code, timed; the reply lock; the events it consumed
    tickets = await after("tickets")
    list_ok = {"grpc_method": "ListTickets", "grpc_code": "OK"}
    assert moved("tickets", tickets, m.GRPC_REQUESTS.name, **list_ok) >= 1
    assert moved("tickets", tickets, f"{m.GRPC_DURATION.name}_count", grpc_method="GetTicket") >= 1
    assert moved("tickets", tickets, m.LOCK_CHANGES.name, change="acquired") >= 1
    routed = {"consumer": "tickets__routed", "outcome": "acked"}
    assert moved("tickets", tickets, m.BUS_MESSAGES.name, **routed) >= 1
    assert moved("tickets", tickets, m.OUTBOX_PUBLISHED.name) >= 1
    assert (
        m.BUS_PENDING.name,
        frozenset({("consumer", "tickets__routed"), ("component", "tickets")}),
    ) in tickets

    # the gateway: requests by route template, never by raw path
    gateway = await after("gateway")
    listed = {"method": "GET", "route": "/api/v1/tickets", "code": "200"}
    assert moved("gateway", gateway, m.HTTP_REQUESTS.name, **listed) >= 1
    one = {"method": "GET", "route": "/api/v1/tickets/{ticket_id}", "code": "200"}
    assert moved("gateway", gateway, m.HTTP_REQUESTS.name, **one) >= 1
    assert moved("gateway", gateway, m.HTTP_REQUESTS.name, route="/api/v1/live", code="101") >= 1
    routes = {dict(ls).get("route", "") for n, ls in gateway if n == m.HTTP_REQUESTS.name}
    assert not [r for r in routes if ticket["id"] in r]

    # ingestion: the mail accepted, the stranger refused, its events published
    ingestion = await after("ingestion")
    assert moved("ingestion", ingestion, m.SMTP_ACCEPTED.name) >= 1
    refused = {"reason": "no_such_mailbox"}
    assert moved("ingestion", ingestion, m.SMTP_REFUSED.name, **refused) >= 1
    assert moved("ingestion", ingestion, m.OUTBOX_PUBLISHED.name) >= 1

    # routing consumed the mail; outbound moved the reply through its states
    routing = await after("routing")
    consumed = {"consumer": "routing__messages", "outcome": "acked"}
    assert moved("routing", routing, m.BUS_MESSAGES.name, **consumed) >= 1
    outbound = await after("outbound")
    for state in ("scheduled", "sending", "sent"):
        assert moved("outbound", outbound, m.OUTBOUND_SENDS.name, state=state) >= 1, state
