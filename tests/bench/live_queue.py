"""The supervisor's live queue (issue 19, RPT-7): a new mail visible on a supervisor's
live socket — the time from the SMTP 250 to the first `report.live_queue` push that
counts it among the inbox's waiting tickets; p50/p99/max, target p99 ≤ 2 s.

Mails are sent one by one at `RATE` per second to the demo tenant's Support inbox, whose
tickets nobody answers meanwhile: mail i is visible once a push shows at least
(waiting before the first mail) + i + 1 waiting. The baseline, in the same run and on the
same socket, is the `ticket.created` push of the same mail (the path every operator's
list takes); `ratio_to_baseline` = live-queue p99 / ticket push p99.

`python -m tests.bench.live_queue` runs it alone on a fresh stack; `--scale` the same on
the scale data set (`SB_SCALE_DIR` or `.data/scale`, with its live rows: `make
seed-scale`, or `--live-only` for an older set): a stack started on it, its supervisor's
socket, the mails sent to the address of the inbox of theirs with the most waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiohttp
import aiosmtplib

from services.devstack.seed_scale import Manifest
from services.devstack.stack import Stack

MAILS = int(os.environ.get("SB_BENCH_LIVE_MAILS", "100"))
RATE = 5.0  # mails per second
TARGET_P99_S = 2.0


@dataclass(frozen=True)
class Target:
    """Who watches (a supervisor's login) and the inbox the mails go to."""

    login: str
    password: str
    inbox: str  # its name, as the push shows it
    address: str


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(stack: Stack, password: str, make_mail: Callable[[str], bytes]) -> dict[str, Any]:
    """On the demo tenant: its supervisor, its Support inbox."""
    target = Target("supervisor@demo.example", password, "Support", "support@demo.example")
    return await measure(stack, target, make_mail)


async def measure(
    stack: Stack, target: Target, make_mail: Callable[[str], bytes]
) -> dict[str, Any]:
    tag = f"live-{uuid.uuid4().hex[:6]}"

    def _waiting(push: dict[str, Any]) -> int | None:
        return next((i["waiting"] for i in push["inboxes"] if i["name"] == target.inbox), None)

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": target.login, "password": target.password},
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
                await smtp.sendmail("bench@example.com", [target.address], make_mail(subject))
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
        "inbox": target.inbox,
        "waiting_before": before,
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


# -- on the scale data set -----------------------------------------------------------------


def _mail(to: str) -> Callable[[str], bytes]:
    def make(subject: str) -> bytes:
        msg = EmailMessage()
        msg["From"] = "Bench Customer <bench@example.com>"
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain="example.com")
        msg.set_content("お問い合わせです。The live queue bench.\n" * 20)
        return msg.as_bytes()

    return make


async def _target(stack: Stack, manifest: Manifest) -> Target:
    """The supervisor's inbox with the most waiting tickets, its address from the API."""
    base = stack.gateway_url
    async with aiohttp.ClientSession() as http:
        login = {"login": manifest.supervisor, "password": manifest.password}
        async with http.post(f"{base}/api/v1/sessions", json=login) as r:
            headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
        async with http.get(f"{base}/api/v1/reports/live-queue", headers=headers) as r:
            queue = await r.json()
        async with http.get(f"{base}/api/v1/inboxes", headers=headers) as r:
            inboxes = {i["id"]: i for i in (await r.json())["items"]}
    busiest = max(queue["inboxes"], key=lambda i: i["waiting"])
    inbox = inboxes[busiest["inbox_id"]]
    return Target(manifest.supervisor, manifest.password, inbox["name"], inbox["addresses"][0])


async def run_scale() -> dict[str, Any]:
    from tests.bench.scale import data_dir, scale_stack

    manifest = Manifest.read(data_dir())
    if manifest is None:
        return {"skipped": f"no scale data set in {data_dir()} (make seed-scale)"}
    if not manifest.live:
        return {"skipped": f"{data_dir()} holds no live rows (seed_scale --live-only)"}
    stack = scale_stack()
    try:
        print("live queue: starting the stack on the scale data set…", file=sys.stderr)
        await stack.start()
        target = await _target(stack, manifest)
        load_before = os.getloadavg()
        figures = await measure(stack, target, _mail(target.address))
        load_after = os.getloadavg()
    finally:
        await asyncio.to_thread(stack.stop)
    return {
        "data_set": {
            "tickets": manifest.tickets,
            "live_rows": manifest.live,
            "folder": str(data_dir()),
        },
        "load_average": {"before": load_before, "after": load_after},
        **figures,
    }


if __name__ == "__main__":
    if "--scale" in sys.argv:
        print(json.dumps({"live_queue_scale": asyncio.run(run_scale())}, indent=2,
                         ensure_ascii=False))  # fmt: skip
        sys.exit(0)
    from tests.bench.e2e import PASSWORD, make_mail, run_alone

    sys.exit(run_alone("live_queue", lambda stack: run(stack, PASSWORD, make_mail)))
