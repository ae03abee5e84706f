"""Ingestion figures (issue 3), each beside bare `email.message_from_bytes` of the same
mails measured in the same run:

- SMTP: mails per second from the first send to the last `ticket.created`;
- import: mails per second from the upload to the job's end (every mail stored, parsed
  and its event acknowledged); the consumers then catch up (all tickets created) before
  the next figure is taken, so that their backlog slows down no other measurement;
  for the 60 KB mails also the same import with routing and tickets paused (what
  ingestion alone reaches with both cores, a diagnostic);
for 3 KB plain, 60 KB multipart/alternative and 2 MB-attachment mails; and IMAP IDLE
arrival (APPEND done on a real Dovecot) to `ticket.created`, p50/p99.
"""

from __future__ import annotations

import asyncio
import email
import io
import os
import signal
import statistics
import time
import uuid
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import nats

from services.accounts.seed import DEMO_INBOXES
from services.devstack.stack import Stack

SUPPORT = DEMO_INBOXES["Support"][0]
SCALE = float(os.environ.get("SB_BENCH_SCALE", "1"))


def plain_3k(tag: str) -> bytes:
    from tests.bench.e2e import make_mail

    return make_mail(tag)


def alternative_60k(tag: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Bench Customer <bench@example.com>"
    m["To"] = "support@demo.example"
    m["Subject"] = tag
    m["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    m.set_content("Line of text about the order and the shipping and more words here.\n" * 450)
    html = "".join(
        f"<p>Paragraph {i} with <b>bold</b> and <a href='https://x.example/{i}'>link</a></p>"
        for i in range(330)
    )
    m.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    return m.as_bytes()


_BLOB = os.urandom(1_450_000)


def attachment_2m(tag: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Bench Customer <bench@example.com>"
    m["To"] = "support@demo.example"
    m["Subject"] = tag
    m["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    m.set_content("Please find the file attached.\n")
    m.add_attachment(
        _BLOB + uuid.uuid4().bytes, maintype="application", subtype="pdf", filename="scan.pdf"
    )
    return m.as_bytes()


KINDS = {
    "plain_3k": (plain_3k, 1500),
    "alternative_60k": (alternative_60k, 600),
    "attachment_2m": (attachment_2m, 40),
}


def bare_rate(mails: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in mails:
        m = email.message_from_bytes(raw)
        m["Subject"], m["From"]
    return len(mails) / (time.perf_counter() - started)


class Tickets:
    """Counts ticket.created events by subject prefix (the benchmark's own tags)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    async def start(self, url: str) -> nats.aio.client.Client:
        from switchboard.v1 import events_pb2

        nc = await nats.connect(url)

        async def on_msg(msg: Any) -> None:
            env = events_pb2.EventEnvelope.FromString(msg.data)
            self.seen[env.ticket_created.ticket.subject] = time.perf_counter()

        await nc.subscribe("sb.tickets.ticket.created", cb=on_msg)
        return nc

    async def wait(self, subjects: list[str], timeout: float) -> float:
        end = time.perf_counter() + timeout
        while not all(s in self.seen for s in subjects):
            if time.perf_counter() > end:
                missing = sum(1 for s in subjects if s not in self.seen)
                raise TimeoutError(f"{missing} tickets missing")
            await asyncio.sleep(0.02)
        return max(self.seen[s] for s in subjects)


async def smtp_rate(stack: Stack, tickets: Tickets, build: Any, n: int) -> float:
    tag = f"smtp-{uuid.uuid4().hex[:6]}"
    mails = [(f"{tag} {i}", build(f"{tag} {i}")) for i in range(n)]
    queue = list(mails)

    async def sender() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=120)
        await smtp.connect()
        while queue:
            _, raw = queue.pop()
            await smtp.sendmail("bench@example.com", ["support@demo.example"], raw)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(8)))
    last = await tickets.wait([s for s, _ in mails], timeout=600)
    return n / (last - started)


async def import_rate(
    stack: Stack, token: str, tickets: Tickets | None, build: Any, n: int, tag: str = ""
) -> float:
    tag = tag or f"imp-{uuid.uuid4().hex[:6]}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(f"{i:05d}.eml", build(f"{tag} {i}"))
    data = buf.getvalue()
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(stack.gateway_url) as http:
        started = time.perf_counter()
        async with http.post(
            "/api/v1/imports",
            params={"inbox_id": SUPPORT, "filename": "bench.zip"},
            data=data,
            headers=auth,
        ) as r:
            job = await r.json()
        while True:
            async with http.get(f"/api/v1/imports/{job['id']}", headers=auth) as r:
                job = await r.json()
            if job["state"] in ("done", "failed"):
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    if job["state"] != "done" or job["created"] != n:
        raise RuntimeError(f"import did not finish cleanly: {job}")
    # Not part of the figure: the consumers catch up with the imported mails before
    # anything else is measured (a backlog would slow the next measurement down).
    if tickets is not None:
        await tickets.wait([f"{tag} {i}" for i in range(n)], timeout=600)
    return n / elapsed


async def import_rate_alone(
    stack: Stack, token: str, tickets: Tickets, build: Any, n: int
) -> float:
    """The import rate with routing and tickets paused (SIGSTOP) while it runs: what
    ingestion alone reaches when it has both cores; a diagnostic beside the real figure,
    in which the consumers file every imported mail at the same time."""
    paused = [stack.procs[name] for name in ("routing", "tickets")]
    tag = f"alone-{uuid.uuid4().hex[:6]}"
    for proc in paused:
        proc.send_signal(signal.SIGSTOP)
    try:
        rate = await import_rate(stack, token, None, build, n, tag=tag)
    finally:
        for proc in paused:
            proc.send_signal(signal.SIGCONT)
    # not part of the figure: the consumers file the backlog before anything else runs
    await tickets.wait([f"{tag} {i}" for i in range(n)], timeout=600)
    return rate


async def imap_latency(stack: Stack, token: str, tickets: Tickets, base: Path) -> dict[str, float]:
    from tests.dovecot import Dovecot

    server = Dovecot(base / "dovecot").start()
    try:
        server.add_user("bench", "bench-pw")
        async with aiohttp.ClientSession(stack.gateway_url) as http:
            async with http.post(
                "/api/v1/mailboxes",
                json={
                    "inbox_id": SUPPORT,
                    "host": "127.0.0.1",
                    "port": server.port,
                    "security": "none",
                    "username": "bench",
                    "auth": "password",
                    "secret": "bench-pw",
                },
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                assert r.status == 201, await r.text()
        await asyncio.sleep(3)  # connected and idling
        client = server.client("bench")
        lat: list[float] = []
        count = int(60 * SCALE) or 10
        for i in range(count):
            subject = f"imap-{uuid.uuid4().hex[:6]} {i}"
            m = email.message_from_bytes(plain_3k(subject))
            await asyncio.to_thread(client.append, "INBOX", None, None, m.as_bytes())
            appended = time.perf_counter()
            arrived = await tickets.wait([subject], timeout=30)
            lat.append((arrived - appended) * 1000)
            await asyncio.sleep(0.2)
        client.logout()
    finally:
        server.stop()
    ordered = sorted(lat)
    return {
        "mails": len(lat),
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 1),
        "max_ms": round(max(lat), 1),
        "target_p99_ms": 2000.0,
        "met": ordered[round(0.99 * (len(ordered) - 1))] <= 2000.0,
    }


async def run(stack: Stack, token: str, base: Path) -> dict[str, Any]:
    tickets = Tickets()
    nc = await tickets.start(stack.nats_url)
    out: dict[str, Any] = {}
    try:
        for kind, (build, n) in KINDS.items():
            n = max(10, int(n * SCALE))
            sample = [build(f"bare {i}") for i in range(min(n, 300))]
            bare = bare_rate(sample)
            smtp = await smtp_rate(stack, tickets, build, n)
            imp = await import_rate(stack, token, tickets, build, n)
            out[kind] = {
                "mail_bytes": len(sample[0]),
                "mails": n,
                "bare_parse_per_second": round(bare, 1),
                "smtp_per_second": round(smtp, 1),
                "import_per_second": round(imp, 1),
                "smtp_ratio_to_bare": round(smtp / bare, 3),
                "import_ratio_to_bare": round(imp / bare, 3),
            }
        alt = out["alternative_60k"]
        alt["import_target_ratio"] = 0.5
        alt["import_met"] = alt["import_ratio_to_bare"] >= 0.5
        build, n = KINDS["alternative_60k"]
        n = max(10, int(n * SCALE))
        alone = await import_rate_alone(stack, token, tickets, build, n)
        alt["diagnostic_import_alone"] = {
            "what": "the same import with routing and tickets paused: ingestion on both cores",
            "import_per_second": round(alone, 1),
            "import_ratio_to_bare": round(alone / alt["bare_parse_per_second"], 3),
        }
        out["imap_idle_latency"] = await imap_latency(stack, token, tickets, base)
    finally:
        await nc.close()
    return out
