"""Export figures (issue 19, DAT-1; in `make bench`, or alone with
`python -m tests.bench.exports`): a CSV of tickets in rows per second (target ≥ 50,000),
and a zip of .eml files in megabytes per second beside the raw store's own read rate in
the same run (target ≥ 0.5 × it).

Seeding, at a size a 2-core machine affords: a tenant of its own with TICKETS tickets and
MAILS raw mails (about 12 KB each, Japanese and English) written straight into tickets'
and ingestion's databases with COPY (the bench's bulk path; the services only read them).
Each export is timed from POST /api/v1/exports to the moment GET /api/v1/exports/{id}
says done (polled every 20 ms), through the gateway, reporting's worker and the owners'
streams, the file written and fsynced.

Baseline: the raw store's read rate — the same mails read from ingestion's database by
one asyncpg connection in keyset pages of 200, their bytes as the export gets them
(inline, or the content-addressed blob) — in megabytes per second. The target is its ratio
to that. For scale only (no target), the same read doing in this one process the least any
zip export must do with the bytes — a CRC-32 per mail (the zip's), the SHA-256 of all (the
export's recorded checksum), written to a file and fsynced — and the export's ratio to it:
the baseline itself leaves the bytes in memory untouched, and an export also carries them
across a process (ingestion → reporting) and makes an HTTP request and a job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.helpers import Tenant, api_call, api_get, create_tenant, login

TICKETS = 200_000
MAILS = 6_000
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


async def _seed_mails(stack: Stack, tenant: Tenant) -> list[bytes]:
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
    finally:
        await conn.close()
    return mails


async def _raw_read_rate(stack: Stack, tenant: Tenant, floor: bool = False) -> dict[str, Any]:
    """The baseline: the period's mails read straight from ingestion's database; with
    `floor`, each mail's bytes also CRC-32'd, SHA-256'd and written to a file, fsynced."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
    total, count = 0, 0
    sha = hashlib.sha256()
    out = tempfile.TemporaryFile() if floor else None
    try:
        started = time.perf_counter()
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            rows = await conn.fetch(
                "SELECT m.id, m.received_at, coalesce(m.raw, b.data, b.data_plain) AS raw "
                "FROM raw_messages m LEFT JOIN blobs b ON b.sha256 = m.sha256 "
                "WHERE m.tenant_id = $1 AND ($2::timestamptz IS NULL OR "
                "(m.received_at, m.id) > ($2, $3)) ORDER BY m.received_at, m.id LIMIT 200",
                uuid.UUID(tenant.tenant_id),
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
    finally:
        await conn.close()
        if out is not None:
            out.close()
    return {"mails": count, "bytes": total, "seconds": round(took, 3),
            "mb_per_second": round(total / took / 1e6, 1)}  # fmt: skip


async def _timed_export(stack: Stack, token: str, body: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    code, made = await api_call(stack, token, "POST", "/api/v1/exports", body)
    assert code == 202, made
    while True:
        code, seen = await api_get(stack, token, f"/api/v1/exports/{made['id']}")
        assert code == 200 and seen["state"] != "failed", seen
        if seen["state"] == "done":
            return {**seen, "seconds": time.perf_counter() - started}
        await asyncio.sleep(0.02)


async def run(stack: Stack) -> dict[str, Any]:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    print(f"  seeding {TICKETS} tickets and {MAILS} mails…", file=sys.stderr)
    await _seed_tickets(stack, tenant)
    mails = await _seed_mails(stack, tenant)
    period = {"from": BASE.isoformat(), "to": (BASE + timedelta(days=30)).isoformat()}

    await _timed_export(stack, token, {"kind": "tickets_csv", **period, "columns": ["id"]})  # warm
    csv_run = await _timed_export(stack, token, {"kind": "tickets_csv", **period})
    assert csv_run["done"] == TICKETS, csv_run
    rows_s = TICKETS / csv_run["seconds"]

    raw = await _raw_read_rate(stack, tenant)
    floor = await _raw_read_rate(stack, tenant, floor=True)
    eml = await _timed_export(stack, token, {"kind": "eml_zip", **period})
    assert eml["done"] == MAILS, eml
    eml_mb_s = sum(len(m) for m in mails) / eml["seconds"] / 1e6
    ratio = eml_mb_s / raw["mb_per_second"]
    return {
        "what": "exports through the gateway and reporting's worker, POST to done",
        "load_average_1m": round(os.getloadavg()[0], 1),  # the machine is shared
        "tickets_csv": {
            "rows": TICKETS,
            "columns": 19,
            "seconds": round(csv_run["seconds"], 3),
            "file_bytes": csv_run["size_bytes"],
            "rows_per_second": round(rows_s),
            "target_rows_per_second": CSV_TARGET_ROWS_S,
            "met": rows_s >= CSV_TARGET_ROWS_S,
        },
        "eml_zip": {
            "mails": MAILS,
            "seconds": round(eml["seconds"], 3),
            "zip_bytes": eml["size_bytes"],
            "mb_per_second": round(eml_mb_s, 1),
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
        },
    }


async def main() -> int:
    from tests.bench.e2e import bench_stack

    with tempfile.TemporaryDirectory(prefix="sb-bench-exports-") as tmp:
        stack = bench_stack(Path(tmp))
        try:
            print("starting the stack…", file=sys.stderr)
            await stack.start()
            result = await run(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    print(json.dumps({"exports": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
