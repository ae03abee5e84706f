"""The supervisor's live queue (issue 19, RPT-7): a new mail visible on a supervisor's
live socket — the time from the SMTP 250 to the first `report.live_queue` push that
counts it among the inbox's waiting tickets; p50/p99/max, target p99 ≤ 2 s.

Mails are sent one by one at `RATE` per second to the demo tenant's Support inbox, whose
tickets nobody answers meanwhile: mail i is visible once a push shows at least
(waiting before the first mail) + i + 1 waiting. The baseline, in the same run and on the
same socket, is the `ticket.created` push of the same mail (the path every operator's
list takes); `ratio_to_baseline` = live-queue p99 / ticket push p99.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import aiosmtplib

from services.devstack.stack import Stack

MAILS = int(os.environ.get("SB_BENCH_LIVE_MAILS", "100"))
RATE = 5.0  # mails per second
TARGET_P99_S = 2.0
INBOX = "Support"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _waiting(push: dict[str, Any]) -> int | None:
    return next((i["waiting"] for i in push["inboxes"] if i["name"] == INBOX), None)


async def run(stack: Stack, password: str, make_mail: Callable[[str], bytes]) -> dict[str, Any]:
    tag = f"live-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": "supervisor@demo.example", "password": password},
        ) as r:
            token = (await r.json())["token"]
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            await ws.receive()  # hello
            await ws.send_str(json.dumps({"type": "subscribe", "topic": "report.live_queue"}))
            counts: list[tuple[float, int]] = []  # (when, waiting) of each push
            created: dict[str, float] = {}
            first = asyncio.get_running_loop().create_future()
            done = asyncio.Event()
            before = -1  # waiting before the first mail, once the first push tells it

            def finished() -> bool:
                return bool(counts) and counts[-1][1] >= before + MAILS and len(created) >= MAILS

            async def reader() -> None:
                async for msg in ws:
                    now = time.perf_counter()
                    event = json.loads(msg.data)
                    if event.get("type") == "report.live_queue":
                        waiting = _waiting(event)
                        if waiting is not None:
                            counts.append((now, waiting))
                            if not first.done():
                                first.set_result(waiting)
                    elif event.get("type") == "ticket.created":
                        subject = event.get("ticket", {}).get("subject", "")
                        if subject.startswith(tag):
                            created.setdefault(subject, now)
                    if before >= 0 and finished():
                        done.set()

            read = asyncio.create_task(reader())
            before = await asyncio.wait_for(first, timeout=30)
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
            await smtp.connect()
            accepted: list[tuple[str, float]] = []
            start = time.perf_counter()
            for i in range(MAILS):
                await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
                subject = f"{tag} {i}"
                await smtp.sendmail(
                    "bench@example.com", ["support@demo.example"], make_mail(subject)
                )
                accepted.append((subject, time.perf_counter()))
            await smtp.quit()
            if finished():
                done.set()
            try:
                await asyncio.wait_for(done.wait(), timeout=60)
            except TimeoutError:
                pass  # counted below as not visible
            read.cancel()
    seen: list[float] = []
    for i, (_, at) in enumerate(accepted):
        shown = next((t for t, w in counts if t >= at and w >= before + i + 1), None)
        if shown is not None:
            seen.append(shown - at)
    pushed = [created[s] - at for s, at in accepted if s in created]
    p99 = _pct(seen, 99) if seen else None
    base_p99 = _pct(pushed, 99) if pushed else None
    return {
        "mails": MAILS,
        "rate_per_second": RATE,
        "visible": len(seen),
        "p50_s": round(statistics.median(seen), 3) if seen else None,
        "p99_s": round(p99, 3) if p99 is not None else None,
        "max_s": round(max(seen), 3) if seen else None,
        "target_p99_s": TARGET_P99_S,
        "met": p99 is not None and len(seen) == MAILS and p99 <= TARGET_P99_S,
        "baseline": {
            "what": "the ticket.created push of the same mails on the same socket",
            "p99_s": round(base_p99, 3) if base_p99 is not None else None,
        },
        "ratio_to_baseline": round(p99 / base_p99, 2) if p99 and base_p99 else None,
    }
