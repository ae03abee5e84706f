"""`make bench`: end-to-end figures of the first path, printed as JSON.

- throughput: 3 KB mails sent over several SMTP connections as fast as the system takes
  them; mails per second from the first send to the last `ticket.created` (each ticket
  committed in PostgreSQL before its event goes out).
- latency: at a steady 20 mails/s, the time from the SMTP 250 to the WebSocket push of
  the new ticket to a connected operator; p50 and p99.
- baseline: bare `email.message_from_bytes` of the same mails, in the same run, so the
  figures can be compared across machines.
- locks: reply-lock acquire/release rates and latencies beside raw redis-py, and lock
  event → WebSocket push latency (`tests/bench/locks.py`).
- api: authenticated GET /api/v1/tickets (50 items) beside a bare aiohttp endpoint,
  closed loop with 64 clients and paced at 200 requests/s (`tests/bench/api.py`).
- compose: template rendering and pre-send checks through the composition gRPC API
  beside the same work in process (`tests/bench/compose.py`).
- approval: a trainee's request pushed to an approver's WebSocket, and approve-and-send
  to the SMTP peer, beside an agent's plain send (`tests/bench/approval.py`).
- rules: what 500 rules per inbox add to a mail's received → routed time, beside a tenant
  without rules in the same run, and the engine alone (`tests/bench/rules.py`).
- assignment: 1,000 waiting tickets to 200 present operators by least loaded, beside the
  plan in process plus one bare UPDATE of as many rows (`tests/bench/assignment.py`).
- outbound: 1,000 mails due together, sent to a local aiosmtpd sink, beside aiosmtplib
  sending them directly; their lateness p50/p99 (`tests/bench/outbound.py`).
- campaigns: a campaign to N contacts sent to a local sink, beside N ready mails sent by
  the same outbound (`tests/bench/campaigns.py`).
- live_queue: a new mail visible on a supervisor's live socket (`report.live_queue`),
  beside the `ticket.created` push of the same mail (`tests/bench/live_queue.py`).
- facts_intake: reporting's consumer lag each second while mail comes in at 200/s for a
  minute over SMTP, then while the recorded events are republished at 200 mails' worth a
  second (reporting alone), beside no-op consumers of the same subjects
  (`tests/bench/facts_intake.py`).
- exports: a CSV of 200,000 tickets in rows/s, and a zip of 6,000 .eml files beside the
  raw store's read rate (`tests/bench/exports.py`).
- segments: the live segment count over 1,000,000 contacts of one tenant, six shapes
  through `POST /api/v1/segments/count`, beside a bare `count(*)` of the tenant
  (`tests/bench/segments.py`).
- chat: a web chat visitor's message on an operator's live socket with 500 visitors
  connected, beside the visitor's own ack; the widget's first message after a page load
  beside the bare page's load (`tests/bench/chat.py`).
- ui: the web UI in headless chromium — first load of the inbox page, ticket open time,
  and scrolling a list of 10,000 tickets without long tasks (`tests/bench/ui.py`).
- scale: the ticket list (50 rows, common filters) and a Japanese keyword search on the
  scale data set of `make seed-scale` (.data/scale), beside the demo tenant's same
  requests on the same stack (`tests/bench/scale.py`; skipped without the data set).
- before_after: SMTP intake, lock pairs and the ticket list's p99 of this code beside the
  code before issue 15 (a git worktree), in fresh stacks taking turns
  (`tests/bench/before_after.py`; `SB_BENCH_BEFORE=none` leaves it out).

The stack is the one `make run` starts (durable PostgreSQL: fsync on), on free ports in a
temporary folder. Nothing here is part of `make test`'s pass/fail.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import nats

from services.devstack.stack import Ports, Stack, StackConfig
from tests.bench import (
    api,
    approval,
    assignment,
    before_after,
    campaigns,
    chat,
    compose,
    exports,
    facts_intake,
    ingestion,
    live_queue,
    locks,
    outbound,
    reports,
    rules,
    scale,
    segments,
    sla,
    ui,
)

PASSWORD = "bench-password"
THROUGHPUT_MAILS = int(os.environ.get("SB_BENCH_MAILS", "3000"))
CONNECTIONS = 8
LATENCY_RATE = 20.0
LATENCY_SECONDS = float(os.environ.get("SB_BENCH_LATENCY_SECONDS", "20"))
TARGET_RATE = 150.0
TARGET_P99_MS = 250.0


MAIL_BYTES = 3 * 1024


def make_mail(subject: str, size: int = MAIL_BYTES) -> bytes:
    """A plain-text mail of `size` bytes on the wire."""

    def build(body_len: int) -> bytes:
        msg = EmailMessage()
        msg["From"] = "Bench Customer <bench@example.com>"
        msg["To"] = "support@demo.example"
        msg["Subject"] = subject
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain="example.com")
        line = "The quick brown fox jumps over the lazy dog, again and again.\n"
        msg.set_content((line * (body_len // len(line) + 1))[:body_len], cte="7bit")
        return msg.as_bytes()

    first = build(size)
    return build(size - (len(first) - size))


def parse_rate(mails: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in mails:
        m = email.message_from_bytes(raw)
        m["Subject"], m["From"]
    return len(mails) / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def throughput(stack: Stack, tag: str) -> dict[str, float]:
    mails = [make_mail(f"{tag} {i}") for i in range(THROUGHPUT_MAILS)]
    created = 0
    done = asyncio.Event()
    nc = await nats.connect(stack.nats_url)

    async def on_created(msg: nats.aio.msg.Msg) -> None:
        nonlocal created
        if tag.encode() in msg.data:
            created += 1
            if created == len(mails):
                done.set()

    await nc.subscribe("sb.tickets.ticket.created", cb=on_created)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in mails:
        queue.put_nowait(raw)

    async def sender() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
        await smtp.connect()
        while not queue.empty():
            raw = queue.get_nowait()
            await smtp.sendmail("bench@example.com", ["support@demo.example"], raw)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    accepted_s = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=300)
    total_s = time.perf_counter() - started
    await nc.close()
    return {
        "mails": len(mails),
        "mail_bytes": len(mails[0]),
        "smtp_connections": CONNECTIONS,
        "seconds_to_last_250": round(accepted_s, 3),
        "seconds_to_last_ticket": round(total_s, 3),
        "mails_per_second": round(len(mails) / total_s, 1),
    }


async def latency(stack: Stack, tag: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": "agent1@demo.example", "password": PASSWORD},
        ) as r:
            token = (await r.json())["token"]
        accepted: dict[str, float] = {}
        pushed: dict[str, float] = {}
        count = int(LATENCY_RATE * LATENCY_SECONDS)
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            await ws.receive()  # hello

            async def reader() -> None:
                async for msg in ws:
                    now = time.perf_counter()
                    event = json.loads(msg.data)
                    subject = event.get("ticket", {}).get("subject", "")
                    if subject.startswith(tag):
                        pushed[subject] = now
                        if len(pushed) == count:
                            return

            read = asyncio.create_task(reader())
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
            await smtp.connect()
            start = time.perf_counter()
            for i in range(count):
                due = start + i / LATENCY_RATE
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                subject = f"{tag} {i}"
                raw = make_mail(subject)
                await smtp.sendmail("bench@example.com", ["support@demo.example"], raw)
                accepted[subject] = time.perf_counter()
            await smtp.quit()
            await asyncio.wait_for(read, timeout=60)
    ms = [(pushed[s] - accepted[s]) * 1000 for s in accepted]
    return {
        "mails": count,
        "rate_per_second": LATENCY_RATE,
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(pct(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


async def tenant_of(stack: Stack, token: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return str((await r.json())["tenant_id"])


def bench_stack(data_dir: Path) -> Stack:
    """A stack like `make run`'s (durable PostgreSQL) on free ports in `data_dir`; the
    local SMTP peers of the benchmarks allow-listed."""
    return Stack(
        StackConfig(
            data_dir=data_dir,
            ports=Ports.free(),
            env="production",
            demo_password=PASSWORD,
            connect_allow="127.0.0.1,::1,localhost",
            service_logs_to_files=True,
            log_level="warning",
            # the chat bench's visitors come from many client addresses through a proxy
            extra_env={"gateway": {"SB_TRUSTED_PROXIES": "127.0.0.1"}},
        )
    )


def run_alone(name: str, work: Callable[[Stack], Awaitable[Any]]) -> int:
    """`python -m tests.bench.<name>`: one bench's figures alone — a fresh stack in a
    temporary folder, `work(stack)`, the stack stopped — printed as JSON under `name`."""

    async def alone() -> int:
        with tempfile.TemporaryDirectory(prefix=f"sb-bench-{name}-") as tmp:
            stack = bench_stack(Path(tmp))
            try:
                print("starting the stack…", file=sys.stderr)
                await stack.start()
                print(f"{name}…", file=sys.stderr)
                result = await work(stack)
            finally:
                await asyncio.to_thread(stack.stop)
        print(json.dumps({name: result}, indent=2, ensure_ascii=False))
        return 0

    return asyncio.run(alone())


async def login_token(stack: Stack, login: str) -> str:
    """A session token of the demo tenant's `login` through the gateway."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.gateway_url}/api/v1/sessions", json={"login": login, "password": PASSWORD}
        ) as r,
    ):
        return str((await r.json())["token"])


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        stack = bench_stack(Path(tmp))
        try:
            print("starting the stack…", file=sys.stderr)
            await stack.start()
            warm = [make_mail(f"warm {i}") for i in range(50)]
            for raw in warm:  # warm caches and connections
                async with aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port) as s:
                    await s.sendmail("bench@example.com", ["support@demo.example"], raw)
            print("throughput…", file=sys.stderr)
            tp = await throughput(stack, f"tp-{uuid.uuid4().hex[:6]}")
            print("latency…", file=sys.stderr)
            lat = await latency(stack, f"lat-{uuid.uuid4().hex[:6]}")
            print("ingestion…", file=sys.stderr)
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{stack.gateway_url}/api/v1/sessions",
                    json={"login": "admin@demo.example", "password": PASSWORD},
                ) as r:
                    admin = (await r.json())["token"]
            ingest = await ingestion.run(stack, admin, Path(tmp))
            print("locks…", file=sys.stderr)
            lock_figures = await locks.run(stack, admin)
            print("api…", file=sys.stderr)
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{stack.gateway_url}/api/v1/sessions",
                    json={"login": "agent1@demo.example", "password": PASSWORD},
                ) as r:
                    agent = (await r.json())["token"]
            api_figures = await api.run(stack, agent)
            print("compose…", file=sys.stderr)
            compose_figures = await compose.run(stack, admin, agent, compose.agent_metadata())
            print("approval…", file=sys.stderr)
            approval_figures = await approval.run(stack, admin, PASSWORD)
            print("rules…", file=sys.stderr)
            rules_figures = await rules.run(stack)
            print("assignment…", file=sys.stderr)
            assignment_figures = await assignment.run(stack)
            print("outbound…", file=sys.stderr)
            outbound_figures = await outbound.run(stack, admin, await tenant_of(stack, admin))
            print("campaigns…", file=sys.stderr)
            campaign_figures = await campaigns.run(stack, admin, await tenant_of(stack, admin))
            print("sla timers…", file=sys.stderr)
            sla_figures = await sla.run(stack)
            print("segments…", file=sys.stderr)
            segments_figures = await segments.run(stack)
            print("exports…", file=sys.stderr)
            exports_figures = await exports.run(stack)
            print("reports…", file=sys.stderr)
            report_figures = await reports.run(stack)
            print("live queue…", file=sys.stderr)
            live_figures = await live_queue.run(stack, PASSWORD, make_mail)
            print("facts intake…", file=sys.stderr)
            facts_figures = await facts_intake.run(stack, make_mail)
            print("chat…", file=sys.stderr)
            chat_figures = await chat.run(stack, admin)
            print("ui…", file=sys.stderr)
            ui_figures = await ui.run(stack, "agent1@demo.example", PASSWORD, agent, make_mail)
        finally:
            await asyncio.to_thread(stack.stop)
    base = parse_rate([make_mail(f"parse {i}") for i in range(THROUGHPUT_MAILS)])
    result = {
        "benchmark": "smtp-to-ticket",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "throughput": {
            **tp,
            "target_mails_per_second": TARGET_RATE,
            "met": tp["mails_per_second"] >= TARGET_RATE,
        },
        "push_latency": {
            **lat,
            "target_p99_ms": TARGET_P99_MS,
            "met": lat["p99_ms"] <= TARGET_P99_MS,
        },
        "baseline": {
            "what": "email.message_from_bytes of the same mails, one process",
            "mails_per_second": round(base, 1),
        },
        "ratio_to_baseline": {"throughput": round(tp["mails_per_second"] / base, 4)},
        "ingestion": ingest,
        "locks": lock_figures,
        "api": api_figures,
        "compose": compose_figures,
        "approval": approval_figures,
        "rules": rules_figures,
        "assignment": assignment_figures,
        "outbound": outbound_figures,
        "campaigns": campaign_figures,
        "sla": sla_figures,
        "segments": segments_figures,
        "exports": exports_figures,
        "reports": report_figures,
        "live_queue": live_figures,
        "facts_intake": facts_figures,
        "chat": chat_figures,
        "ui": ui_figures,
    }
    print("scale data set…", file=sys.stderr)
    result["scale"] = await scale.run()
    if before_after.BEFORE != "none":
        print("before/after…", file=sys.stderr)
        result["before_after"] = await before_after.run()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
