"""Segment counts over 1,000,000 contacts (issue 20, OUT-6): does the live count of
`POST /api/v1/segments/count` answer in p95 ≤ 500 ms for one tenant's million contacts?

The demo tenant gets `SB_BENCH_SEGMENT_CONTACTS` contacts (1,000,000), and a tenant of its
own a tenth as many, written with COPY into tickets' database of a bench stack: labels
(vip 5 %, trial 10 %, newsletter 40 %, fair2026 8 %, dormant 20 %), time zones (70 % the
tenant's), languages, one address each over 40 common domains and a long tail, custom
fields `plan` (text) and `spend` (number), creation over three years and, for 70 %, a last
contact over the last two; a list of 50,000 of them. Then 20 counts of each shape, one at
a time through the real gateway, p50/p95 per shape; beside them in the same run the
whole tenant's count through the same path (no condition) and a bare
`SELECT count(*) FROM contacts WHERE tenant_id = $1` on one asyncpg connection, and the
ratio of each shape's p50 to the bare count. The machine's load average is printed.
`python -m tests.bench.segments` runs it alone."""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from services.devstack.stack import Stack
from services.runtime.db import with_database

CONTACTS = int(os.environ.get("SB_BENCH_SEGMENT_CONTACTS", "1000000"))
OTHER_CONTACTS = CONTACTS // 10
LIST_MEMBERS = min(50_000, CONTACTS // 2)
ROUNDS = 20
TARGET_P95_MS = 500.0
CHUNK = 100_000
NOW = datetime(2026, 12, 1, tzinfo=UTC)
LABELS = (("vip", 0.05), ("trial", 0.10), ("newsletter", 0.40), ("fair2026", 0.08),
          ("dormant", 0.20))  # fmt: skip
ZONES = ("",) * 14 + ("Asia/Tokyo",) * 3 + ("America/New_York", "Europe/London", "Asia/Seoul")
LANGUAGES = ("ja",) * 12 + ("en",) * 5 + ("",) * 3
DOMAINS = [f"mail{i}.example.jp" for i in range(40)]
PLANS = ("free",) * 6 + ("pro",) * 3 + ("enterprise",)
COLUMNS = ["id", "tenant_id", "name", "company", "labels", "time_zone", "language", "address",
           "custom", "created_at", "updated_at"]  # fmt: skip


def _contacts(tenant: uuid.UUID, count: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of contact rows, then of their address and activity rows (as a triple)."""
    rnd = random.Random(seed)
    for start in range(0, count, CHUNK):
        contacts, addresses, activity = [], [], []
        for n in range(start, min(count, start + CHUNK)):
            cid = uuid.UUID(int=rnd.getrandbits(128), version=4)
            domain = DOMAINS[int(rnd.paretovariate(1.2)) % 40] if rnd.random() < 0.7 else (
                f"c{rnd.randrange(50_000)}.co.jp")  # fmt: skip
            address = f"u{n}.{seed}@{domain}"
            labels = [name for name, share in LABELS if rnd.random() < share]
            custom: dict[str, str] = {"plan": rnd.choice(PLANS)}
            if rnd.random() < 0.8:
                custom["spend"] = str(int(rnd.lognormvariate(7, 1.5)))
            created = NOW - timedelta(seconds=rnd.randrange(3 * 365 * 86400))
            contacts.append((cid, tenant, f"Customer {n}", "", labels, rnd.choice(ZONES),
                             rnd.choice(LANGUAGES), address, json.dumps(custom), created,
                             created))  # fmt: skip
            addresses.append((tenant, address, cid))
            if rnd.random() < 0.7:
                activity.append((tenant, cid, NOW - timedelta(seconds=rnd.randrange(730 * 86400))))
        yield [tuple(contacts), tuple(addresses), tuple(activity)]


async def _load(conn: asyncpg.Connection, tenant: uuid.UUID, count: int, seed: int) -> list[Any]:
    ids: list[Any] = []
    for contacts, addresses, activity in _contacts(tenant, count, seed):
        await conn.copy_records_to_table("contacts", records=contacts, columns=COLUMNS)
        await conn.copy_records_to_table(
            "contact_addresses", records=addresses, columns=["tenant_id", "address", "contact_id"]
        )
        await conn.copy_records_to_table(
            "contact_activity",
            records=activity,
            columns=["tenant_id", "contact_id", "last_contact_at"],
        )
        ids.extend(c[0] for c in contacts[:: max(1, count // LIST_MEMBERS)])
    return ids


async def _seed(stack: Stack, tenant_id: str) -> str:
    """The contacts and the list (its id)."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        # what the triggers keep (the mailing address, the numbers among custom values) is
        # written directly: no trigger per row
        await conn.execute("ALTER TABLE contact_addresses DISABLE TRIGGER contact_addresses_first")
        await conn.execute("ALTER TABLE contacts DISABLE TRIGGER contacts_numbers_new")
        tenant = uuid.UUID(tenant_id)
        members = await _load(conn, tenant, CONTACTS, 1)
        await _load(conn, uuid.uuid4(), OTHER_CONTACTS, 2)
        await conn.execute("ALTER TABLE contact_addresses ENABLE TRIGGER contact_addresses_first")
        await conn.execute("ALTER TABLE contacts ENABLE TRIGGER contacts_numbers_new")
        await conn.execute(
            "INSERT INTO contact_numbers (tenant_id, contact_id, key, value) "
            "SELECT c.tenant_id, c.id, 'spend', (c.custom->>'spend')::numeric FROM contacts c "
            "WHERE c.custom ? 'spend' ON CONFLICT DO NOTHING"
        )
        list_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO contact_lists (id, tenant_id, name, member_count, created_at, "
            "updated_at) VALUES ($1, $2, 'bench', $3, $4, $4)",
            list_id,
            tenant,
            len(members[:LIST_MEMBERS]),
            NOW,
        )
        await conn.copy_records_to_table(
            "contact_list_members",
            records=[(tenant, list_id, c, NOW) for c in members[:LIST_MEMBERS]],
            columns=["tenant_id", "list_id", "contact_id", "added_at"],
        )
        for table in ("contacts", "contact_addresses", "contact_activity", "contact_list_members",
                      "contact_numbers"):  # fmt: skip
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        return str(list_id)
    finally:
        await conn.close()


def _shapes(list_id: str) -> dict[str, dict[str, Any]]:
    def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
        return {"field": field, "op": op, "value": value}

    return {
        "whole_tenant": {"match": "all", "conditions": []},
        "single_label": {"match": "all", "conditions": [c("label", "has", "vip")]},
        "all_of_3": {"match": "all", "conditions": [
            c("domain", "eq", "mail1.example.jp"), c("language", "eq", "ja"),
            c("custom.plan", "eq", "pro")]},
        "any_of_3": {"match": "any", "conditions": [
            c("time_zone", "eq", "America/New_York"), c("label", "has", "trial"),
            c("custom.plan", "eq", "enterprise")]},
        "custom_number_range": {"match": "all", "conditions": [
            c("custom.spend", "gte", 1000), c("custom.spend", "lt", 5000)]},
        "within_days": {"match": "all", "conditions": [c("last_contact_at", "within_days", 30)]},
        "label_and_list": {"match": "all", "conditions": [
            c("label", "has", "newsletter"), c("list", "has", list_id)]},
    }  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(stack: Stack) -> dict[str, Any]:
    from tests.bench.e2e import login_token, tenant_of

    token = await login_token(stack, "admin@demo.example")
    tenant_id = await tenant_of(stack, token)
    await _define_fields(stack, token)
    print(f"  loading {CONTACTS} + {OTHER_CONTACTS} contacts…", file=sys.stderr)
    started = time.perf_counter()
    list_id = await _seed(stack, tenant_id)
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "what": "POST /api/v1/segments/count through the gateway, one at a time",
        "contacts": CONTACTS,
        "other_tenant_contacts": OTHER_CONTACTS,
        "load_seconds": round(load_s, 1),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "shapes": {},
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        for name, body in _shapes(list_id).items():
            times, count = [], None
            for i in range(ROUNDS + 1):
                t0 = time.perf_counter()
                async with http.post(
                    f"{stack.gateway_url}/api/v1/segments/count", json=body, headers=headers
                ) as r:
                    answer = await r.json()
                    assert r.status == 200, answer
                if i:  # the first warms caches
                    times.append((time.perf_counter() - t0) * 1000)
                count = answer["count"]
            out["shapes"][name] = {"count": count, "p50_ms": round(statistics.median(times), 1),
                                   "p95_ms": round(_pct(times, 95), 1)}  # fmt: skip
    out["baseline_sql_count"] = await _bare_count(stack, tenant_id)
    base = out["baseline_sql_count"]["p50_ms"]
    for figures in out["shapes"].values():
        figures["ratio_to_baseline"] = round(figures["p50_ms"] / base, 2)
    out["worst_p95_ms"] = max(s["p95_ms"] for s in out["shapes"].values())
    out["target_p95_ms"] = TARGET_P95_MS
    out["met"] = out["worst_p95_ms"] <= TARGET_P95_MS
    out["load_average_1m_after"] = round(os.getloadavg()[0], 1)
    return out


async def _define_fields(stack: Stack, token: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(
            f"{stack.gateway_url}/api/v1/contact-fields",
            json={"fields": [{"key": "plan", "label": "プラン", "type": "text"},
                             {"key": "spend", "label": "購入額", "type": "number"}]},
            headers={"Authorization": f"Bearer {token}"},
        ) as r:  # fmt: skip
            assert r.status == 200, await r.text()


async def _bare_count(stack: Stack, tenant_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        times = []
        for i in range(ROUNDS + 1):
            t0 = time.perf_counter()
            # fetch, not fetchval: with fetchval's row limit PostgreSQL runs no parallel
            # workers, and the counts measured do run them
            [(n,)] = await conn.fetch(
                "SELECT count(*) FROM contacts WHERE tenant_id = $1", uuid.UUID(tenant_id)
            )
            if i:
                times.append((time.perf_counter() - t0) * 1000)
        return {"count": n, "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(_pct(times, 95), 1)}  # fmt: skip
    finally:
        await conn.close()


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("segments", run))
