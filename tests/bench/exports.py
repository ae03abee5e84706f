"""Export figures (issue 19, DAT-1; in `make bench`, or alone with
`python -m tests.bench.exports`): a CSV of tickets in rows per second (target ≥ 50,000),
and a zip of .eml files in megabytes per second beside the raw store's own read rate in
the same run (target ≥ 0.5 × it).

Seeding, at a size a 2-core machine affords: a tenant of its own with TICKETS tickets
(SB_BENCH_CSV_TICKETS, 200,000; 0 skips the CSV) and MAILS raw mails (SB_BENCH_EML_MAILS,
50,000 of about 10 KB, Japanese and English: 500 MB, enough that what a job costs once is
a small part of it — a month of a million-ticket tenant is about 130,000 mails) written
straight into tickets' and ingestion's databases with COPY (the bench's bulk path; the
services only read them). Each export is timed from POST /api/v1/exports to the job's own
`finished_at` (reporting's clock, this machine), through the gateway, reporting's worker
and the owners' streams, the file written and fsynced; the job is polled every POLL_S only
to learn that it is done, so polling adds no load that the figure would pay for. The
CPU-seconds each process spent meanwhile (PostgreSQL with its backends) are printed with it.

Baseline: the raw store's read rate — the same mails read from ingestion's database by
one asyncpg connection in keyset pages of 200, their bytes as the export gets them
(inline, or the content-addressed blob) — in megabytes per second. The target is its ratio
to that. For scale only (no target), the same read doing in this one process the least any
zip export must do with the bytes — a CRC-32 per mail (the zip's), the SHA-256 of all (the
export's recorded checksum), written to a file and fsynced — and the export's ratio to it:
the baseline itself leaves the bytes in memory untouched, and an export also carries them
across a process (ingestion → reporting) and makes an HTTP request and a job.

`python -m tests.bench.exports --scale` exports instead the last month of the scale data
set (`make seed-scale`; SB_SCALE_DIR or .data/scale) as its administrator, on a stack
started on it, beside the same baseline and floor for that month's mails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psutil

from services.devstack.seed_scale import Manifest
from services.devstack.stack import Ports, Stack, StackConfig
from services.runtime.db import with_database
from tests.bench.scale import data_dir
from tests.helpers import Tenant, api_call, api_get, create_tenant, login

TICKETS = int(os.environ.get("SB_BENCH_CSV_TICKETS", "200000"))  # 0: no CSV export
# enough mails that what a job costs once (the request, its rows, the owners' first
# queries) is a small part of the time, as in a month of the scale data set (~130,000)
MAILS = int(os.environ.get("SB_BENCH_EML_MAILS", "50000"))
# the time is the job's own finished_at: polling less often changes nothing but the load
POLL_S = 0.25
CSV_TARGET_ROWS_S = 50_000
EML_TARGET_RATIO = 0.5
BASE = datetime(2025, 1, 1, tzinfo=UTC)


async def _seed_tickets(stack: Stack, tenant: Tenant) -> None:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        await conn.execute(
            "INSERT INTO tickets (id, tenant_id, subject, status, inbox_id, inbox_name, "
            "from_name, from_address, received_at, created_at, updated_at, waiting_since, "
            "number, labels, category, priority, last_message_at, message_count) "
            "SELECT gen_random_uuid(), $1, CASE WHEN g % 2 = 0 THEN '注文番号 ' || g || "
            "' の配送について' ELSE 'Question about order ' || g END, "
            "(ARRAY['open','pending','resolved'])[1 + g % 3], $2, 'Help', "
            "'顧客 ' || g, 'customer' || g || '@example.com', at, at, at, at, g, "
            "ARRAY['billing', 'vip'], 'orders', 'normal', at, 2 FROM generate_series(1, $4) g, "
            "LATERAL (SELECT $3::timestamptz + g * interval '1 second' AS at) t",
            uuid.UUID(tenant.tenant_id),
            uuid.UUID(tenant.inbox_id),
            BASE,
            TICKETS,
        )
        await conn.execute("ANALYZE tickets")
    finally:
        await conn.close()


def _mail(i: int, to: str) -> bytes:
    body = ("お問い合わせありがとうございます。注文の配送状況を確認しています。\r\n" * 60) + (
        "Thank you for your message; we are looking into your order.\r\n" * 60
    )
    head = (
        f"From: Customer {i} <customer{i}@example.com>\r\nTo: {to}\r\n"
        f"Subject: =?utf-8?b?5rOo5paH?= {i}\r\n"
        f"Message-ID: <bench-{i}-{uuid.uuid4().hex}@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body.encode()


async def _seed_mails(stack: Stack, tenant: Tenant) -> int:
    """MAILS mails written as blobs; their bytes in all."""
    mails = [_mail(i, tenant.address) for i in range(MAILS)]
    shas = [hashlib.sha256(m).digest() for m in mails]
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
    try:
        await conn.copy_records_to_table(
            "blobs",
            records=[(s, len(m), m) for s, m in zip(shas, mails, strict=True)],
            columns=["sha256", "size_bytes", "data"],
        )
        tenant_id, inbox_id = uuid.UUID(tenant.tenant_id), uuid.UUID(tenant.inbox_id)
        await conn.copy_records_to_table(
            "raw_messages",
            records=[
                (
                    uuid.uuid4(),
                    tenant_id,
                    inbox_id,
                    "Help",
                    "smtp",
                    s,
                    len(m),
                    uuid.uuid4(),
                    BASE + timedelta(seconds=i),
                    f"sha:{s.hex()}",
                )
                for i, (s, m) in enumerate(zip(shas, mails, strict=True))
            ],
            columns=[
                "id",
                "tenant_id",
                "inbox_id",
                "inbox_name",
                "channel",
                "sha256",
                "size_bytes",
                "event_id",
                "received_at",
                "dedupe_key",
            ],
        )
        await conn.execute("ANALYZE raw_messages")
        await conn.execute("ANALYZE blobs")
    finally:
        await conn.close()
    return sum(map(len, mails))


class Cpu:
    """CPU-seconds of the stack's processes (PostgreSQL with all its backends, living and
    gone) and of this one, between `start()` and `taken()`."""

    def __init__(self, stack: Stack) -> None:
        self._procs = {n: psutil.Process(p.pid) for n, p in stack.procs.items()}
        if stack.postgres is not None:
            pid = int((stack.postgres.data_dir / "postmaster.pid").read_text().split()[0])
            self._postmaster = psutil.Process(pid)
        self._bench = psutil.Process()
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        def own(p: psutil.Process) -> float:
            t = p.cpu_times()
            return float(t.user + t.system)

        out = {n: own(p) for n, p in self._procs.items()}
        pm = self._postmaster
        t = pm.cpu_times()
        alive = 0.0
        for child in pm.children():
            with contextlib.suppress(psutil.Error):
                alive += own(child)
        out["postgres"] = own(pm) + t.children_user + t.children_system + alive
        out["bench"] = own(self._bench)
        return out

    def start(self) -> None:
        self._before = self._now()

    def taken(self) -> dict[str, float]:
        now = self._now()
        spent = {n: round(now[n] - self._before.get(n, 0.0), 2) for n in now}
        return {n: v for n, v in spent.items() if v >= 0.01}


async def _raw_read_rate(
    stack: Stack, tenant_id: str, period: tuple[datetime, datetime], floor: bool = False
) -> dict[str, Any]:
    """The baseline: the period's mails read straight from ingestion's database; with
    `floor`, each mail's bytes also CRC-32'd, SHA-256'd and written to a file, fsynced."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
    total, count = 0, 0
    sha = hashlib.sha256()
    out = tempfile.TemporaryFile() if floor else None
    cpu = Cpu(stack)
    try:
        cpu.start()
        started = time.perf_counter()
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            rows = await conn.fetch(
                "SELECT m.id, m.received_at, coalesce(m.raw, b.data, b.data_plain) AS raw "
                "FROM raw_messages m LEFT JOIN blobs b ON b.sha256 = m.sha256 "
                "WHERE m.tenant_id = $1 AND m.received_at >= $2 AND m.received_at < $3 "
                "AND ($4::timestamptz IS NULL OR (m.received_at, m.id) > ($4, $5)) "
                "ORDER BY m.received_at, m.id LIMIT 200",
                uuid.UUID(tenant_id),
                *period,
                after[0] if after else None,
                after[1] if after else None,
            )
            if not rows:
                break
            for r in rows:
                total += len(r["raw"])
                if out is not None:
                    zlib.crc32(r["raw"])
                    sha.update(r["raw"])
                    out.write(r["raw"])
            count += len(rows)
            after = (rows[-1]["received_at"], rows[-1]["id"])
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
        took = time.perf_counter() - started
        spent = cpu.taken()
    finally:
        await conn.close()
        if out is not None:
            out.close()
    return {"mails": count, "bytes": total, "seconds": round(took, 3),
            "mb_per_second": round(total / took / 1e6, 1), "cpu_seconds": spent}  # fmt: skip


async def _timed_export(stack: Stack, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """An export from POST to its recorded end (`finished_at`, reporting's clock on this
    machine), the CPU-seconds each process spent meanwhile."""
    cpu = Cpu(stack)
    cpu.start()
    started = datetime.now(UTC)
    code, made = await api_call(stack, token, "POST", "/api/v1/exports", body)
    assert code == 202, made
    while True:
        await asyncio.sleep(POLL_S)
        code, seen = await api_get(stack, token, f"/api/v1/exports/{made['id']}")
        assert code == 200 and seen["state"] != "failed", seen
        if seen["state"] == "done":
            ended = datetime.fromisoformat(seen["finished_at"])
            return {**seen, "seconds": (ended - started).total_seconds(),
                    "cpu_seconds": cpu.taken()}  # fmt: skip


async def _eml(
    stack: Stack, token: str, tenant_id: str, period: tuple[datetime, datetime], size: int
) -> dict[str, Any]:
    """The .eml zip of the period beside the raw store's read rate and the floor."""
    raw = await _raw_read_rate(stack, tenant_id, period)
    floor = await _raw_read_rate(stack, tenant_id, period, floor=True)
    body = {"kind": "eml_zip", "from": period[0].isoformat(), "to": period[1].isoformat()}
    eml = await _timed_export(stack, token, body)
    assert eml["done"] == raw["mails"], (eml, raw)
    eml_mb_s = size / eml["seconds"] / 1e6
    ratio = eml_mb_s / raw["mb_per_second"]
    return {
        "mails": raw["mails"],
        "mail_bytes": size,
        "seconds": round(eml["seconds"], 3),
        "zip_bytes": eml["size_bytes"],
        "mb_per_second": round(eml_mb_s, 1),
        "cpu_seconds": eml["cpu_seconds"],
        "baseline": {
            "what": "the same mails read from ingestion's database (asyncpg, pages of 200)",
            **raw,
        },
        "ratio_to_baseline": round(ratio, 3),
        "target_ratio": EML_TARGET_RATIO,
        "met": ratio >= EML_TARGET_RATIO,
        "floor": {
            "what": "the same read, each mail CRC-32'd, SHA-256'd, written, fsynced "
            "(for scale; no target)",
            **floor,
        },
        "ratio_to_floor": round(eml_mb_s / floor["mb_per_second"], 3),
    }


async def _csv(stack: Stack, token: str, when: dict[str, str]) -> dict[str, Any]:
    """The tickets of the period as CSV with all 19 columns (after a warm-up export of
    one column), rows/s."""
    await _timed_export(stack, token, {"kind": "tickets_csv", **when, "columns": ["id"]})
    csv_run = await _timed_export(stack, token, {"kind": "tickets_csv", **when})
    rows_s = csv_run["done"] / csv_run["seconds"]
    return {
        "rows": csv_run["done"],
        "columns": 19,
        "seconds": round(csv_run["seconds"], 3),
        "file_bytes": csv_run["size_bytes"],
        "rows_per_second": round(rows_s),
        "target_rows_per_second": CSV_TARGET_ROWS_S,
        "met": rows_s >= CSV_TARGET_ROWS_S,
    }


async def run(stack: Stack) -> dict[str, Any]:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    print(f"  seeding {TICKETS} tickets and {MAILS} mails…", file=sys.stderr)
    await _seed_tickets(stack, tenant)
    size = await _seed_mails(stack, tenant)
    period = (BASE, BASE + timedelta(days=30))
    when = {"from": period[0].isoformat(), "to": period[1].isoformat()}
    out: dict[str, Any] = {
        "what": "exports through the gateway and reporting's worker, POST to done",
        "load_average_1m": round(os.getloadavg()[0], 1),  # the machine is shared
    }
    if TICKETS:
        out["tickets_csv"] = await _csv(stack, token, when)
        assert out["tickets_csv"]["rows"] == TICKETS, out
    out["eml_zip"] = await _eml(stack, token, tenant.tenant_id, period, size)
    out["load_average_1m_after"] = round(os.getloadavg()[0], 1)
    return out


def _month_before(end: datetime) -> tuple[datetime, datetime]:
    last = (end - timedelta(days=1)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return last, end


async def run_scale() -> dict[str, Any]:
    """The .eml export of the last month of the scale data set (`make seed-scale`, in
    SB_SCALE_DIR or .data/scale) by its administrator, and the CSV of its last half year's
    tickets."""
    folder = data_dir()
    manifest = Manifest.read(folder)
    if manifest is None:
        return {"skipped": f"no scale data set in {folder} (make seed-scale)"}
    stack = Stack(
        StackConfig(
            data_dir=folder,
            ports=Ports.free(),
            env="production",
            demo_password="bench-password",
            service_logs_to_files=True,
            log_level="warning",
        )
    )
    try:
        print("scale: starting the stack on the data set…", file=sys.stderr)
        await stack.start()
        token = await login(stack, manifest.admin, manifest.password)
        period = _month_before(datetime.fromisoformat(manifest.end))
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
        try:
            size = await conn.fetchval(
                "SELECT coalesce(sum(size_bytes), 0) FROM raw_messages "
                "WHERE tenant_id = $1 AND received_at >= $2 AND received_at < $3",
                uuid.UUID(manifest.tenant_id),
                *period,
            )
        finally:
            await conn.close()
        eml = await _eml(stack, token, manifest.tenant_id, period, int(size))
        half_year = {"from": (period[1] - timedelta(days=182)).isoformat(),
                     "to": period[1].isoformat()}  # fmt: skip
        csv = await _csv(stack, token, half_year)
    finally:
        await asyncio.to_thread(stack.stop)
    return {
        "what": "a month's .eml zip of the scale data set, POST to done, by its admin",
        "data_set": {
            "tickets": manifest.tickets,
            "messages": manifest.messages,
            "folder": str(folder),
        },
        "period": [period[0].isoformat(), period[1].isoformat()],
        "load_average_1m": round(os.getloadavg()[0], 1),
        "eml_zip": eml,
        "tickets_csv": {"period": [half_year["from"], half_year["to"]], **csv},
    }


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    if "--scale" in sys.argv[1:]:
        print(json.dumps({"exports_scale": asyncio.run(run_scale())}, indent=2))
        sys.exit(0)
    sys.exit(run_alone("exports", run))
