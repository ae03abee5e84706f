"""Outbound figures (issue 7), beside a baseline measured in the same run:

- sent per second: 1,000 mails due at the same moment, sent by the stack's outbound
  service (claimed from PostgreSQL under leases, the phase recorded before each message,
  the SMTP result recorded after it) to a local aiosmtpd sink in its own process — from
  the moment they fell due to the last one recorded as sent; beside aiosmtplib sending
  the same 1,000 messages straight to the same sink over as many connections (16, the
  connections outbound opens per route);
- lateness: for the same 1,000 mails, each one's `sent_at - send_at`, p50/p99/max
  (target p99 ≤ 1 s).

The items are written into outbound's table by its own repository code (as SubmitDraft
writes them), for an inbox that does not exist, so that the steps after sending (the
copy in the ticket) are refused at once and are not part of these figures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import aiosmtplib
import asyncpg

from services.devstack.infra import free_port
from services.devstack.stack import ROOT, Stack
from services.runtime.db import with_database
from tests.outbox import write_due

ITEMS = int(os.environ.get("SB_BENCH_SENDS", "1000"))
CONNECTIONS = 16
TARGET_RATIO = 0.5
TARGET_LATENESS_P99_S = 1.0

SINK = """
import asyncio, signal, sys
from aiosmtpd.smtp import SMTP
count = 0
class H:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        return "250 OK"
async def main():
    loop = asyncio.get_running_loop()
    port = int(sys.argv[1])
    server = await loop.create_server(lambda: SMTP(H(), hostname="sink"), "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    print(count, flush=True)
asyncio.run(main())
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def message(n: int, message_id: str) -> bytes:
    body = "ご注文ありがとうございます。発送のご連絡です。\r\n" * 20
    return (
        f"From: Support <support@demo.example>\r\nTo: customer{n}@sink.example\r\n"
        f"Subject: Your order {n}\r\nMessage-ID: <{message_id}>\r\n"
        "Date: Fri, 04 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode()


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SINK, str(self.port), stdout=asyncio.subprocess.PIPE, cwd=ROOT
        )
        assert self.proc.stdout is not None
        assert (await self.proc.stdout.readline()).strip() == b"ready"

    async def stop(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        self.proc.send_signal(signal.SIGTERM)
        out = await self.proc.stdout.read()
        await self.proc.wait()
        return int(out.strip() or 0)


async def direct(port: int, mails: list[bytes]) -> float:
    """aiosmtplib straight to the sink: mails per second over CONNECTIONS connections."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in mails:
        queue.put_nowait(m)

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        while not queue.empty():
            raw = queue.get_nowait()
            await smtp.sendmail("support@demo.example", ["customer@sink.example"], raw)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return len(mails) / (time.perf_counter() - started)


async def _due(pool: asyncpg.Pool, tenant_id: str, count: int, at: datetime) -> None:
    await write_due(
        pool,
        tenant_id,
        count,
        at,
        sender="support@demo.example",
        recipient_domain="sink.example",
        raw=message,
    )


async def _wait_sent(pool: asyncpg.Pool, tenant_id: str, since: datetime, count: int) -> list[Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = await pool.fetch(
            "SELECT state, send_at, sent_at FROM sends WHERE tenant_id = $1 AND created_at >= $2",
            uuid.UUID(tenant_id),
            since,
        )
        if len(rows) >= count and all(
            r["state"] not in ("scheduled", "sending", "retrying") for r in rows
        ):
            return rows
        await asyncio.sleep(0.2)
    raise TimeoutError("the outbox did not drain")


async def run(stack: Stack, admin: str, tenant_id: str) -> dict[str, Any]:
    sink = Sink()
    await sink.start()
    pool = await asyncpg.create_pool(
        with_database(stack.database_url, "sb_outbound"), min_size=1, max_size=2
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{stack.gateway_url}/api/v1/smtp-routes",
                json={
                    "name": "bench sink",
                    "host": "127.0.0.1",
                    "port": sink.port,
                    "security": "none",
                },
                headers={"Authorization": f"Bearer {admin}"},
            ) as r:
                assert r.status == 201, await r.text()
        await asyncio.sleep(2.5)  # outbound's route cache
        # warm up: connections, prepared statements
        since = datetime.now(UTC)
        await _due(pool, tenant_id, 50, datetime.now(UTC))
        await _wait_sent(pool, tenant_id, since, 50)

        mails = [message(n, f"direct{n}@demo.example") for n in range(ITEMS)]
        base_rate = await direct(sink.port, mails)

        since = datetime.now(UTC)
        at = datetime.now(UTC) + timedelta(seconds=3)
        await _due(pool, tenant_id, ITEMS, at)
        rows = await _wait_sent(pool, tenant_id, since, ITEMS)
        sent = [r for r in rows if r["state"] == "sent"]
        late = [(r["sent_at"] - r["send_at"]).total_seconds() for r in sent]
        span = (max(r["sent_at"] for r in sent) - at).total_seconds()
        rate = len(sent) / span if span > 0 else float("inf")
    finally:
        await pool.close()
        received = await sink.stop()
    return {
        "items": ITEMS,
        "sent": len(sent),
        "sink_received": received,
        "sent_per_second": round(rate, 1),
        "baseline": {
            "what": f"aiosmtplib sending the same {ITEMS} mails straight to the sink, "
            f"{CONNECTIONS} connections",
            "sent_per_second": round(base_rate, 1),
        },
        "ratio_to_baseline": round(rate / base_rate, 4),
        "target_ratio": TARGET_RATIO,
        "ratio_met": rate / base_rate >= TARGET_RATIO,
        "lateness": {
            "p50_s": round(statistics.median(late), 3),
            "p99_s": round(pct(late, 99), 3),
            "max_s": round(max(late), 3),
            "target_p99_s": TARGET_LATENESS_P99_S,
            "met": pct(late, 99) <= TARGET_LATENESS_P99_S,
        },
    }
