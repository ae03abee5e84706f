"""Report figures (issue 19 §3): every report over a 13-month range in Asia/Tokyo —
`volume` and `response_times` by day, `operators` by month, `topics` by week — through the
gateway (`GET /api/v1/reports/{report}`), p50/p95 of SB_BENCH_REPORT_RUNS each (target
p95 ≤ 300 ms); and in the same run the same reports from reporting's gRPC API twice: from
the rollups, and computed from the facts without the rollups (`from_facts`), whose ratio
says what the rollups buy.

The data: SB_BENCH_REPORT_TICKETS tickets (default 100,000) spread over 14 months, 20
inboxes, 200 operators, 30 labels, 8 categories — about 8 facts each (arrival, customer
messages, sends, first reply, replies, resolution, approvals, send-backs, transfers,
deletions, with wall and business durations) — written into reporting's database through
its bulk path (services/reporting/facts_bulk.write_facts: COPY, folded into the rollups in
the same transaction), for a tenant of its own (until `make seed-scale` writes them from
the scale tenant).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from switchboard.v1 import reporting_pb2, reporting_pb2_grpc

from services.devstack.stack import Stack
from services.reporting.facts import NewFact
from services.reporting.facts_bulk import write_facts
from services.runtime.db import Database, with_database
from services.runtime.identity import Identity
from tests.helpers import create_tenant, login

TICKETS = int(os.environ.get("SB_BENCH_REPORT_TICKETS", "100000"))
RUNS = int(os.environ.get("SB_BENCH_REPORT_RUNS", "20"))
FACT_RUNS = int(os.environ.get("SB_BENCH_REPORT_FACT_RUNS", "3"))
TARGET_P95_MS = 300.0
CHUNK = 50_000
REPORTS = (("volume", "day"), ("response_times", "day"), ("operators", "month"),
           ("topics", "week"))  # fmt: skip
ZONE = "Asia/Tokyo"


def _facts(tenant: str, now: datetime) -> list[NewFact]:
    rnd = random.Random(19)
    inboxes = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(20)]
    operators = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(200)]
    labels = [f"label-{i}" for i in range(30)]
    categories = ["inquiry", "order", "delivery", "return", "billing", "complaint", "other",
                  "feedback"]  # fmt: skip
    span = timedelta(days=425).total_seconds()
    out: list[NewFact] = []
    for i in range(TICKETS):
        at = now - timedelta(seconds=rnd.random() * span)
        common: dict[str, Any] = {
            "tenant_id": tenant,
            "inbox_id": rnd.choice(inboxes),
            "ticket_id": str(uuid.UUID(int=rnd.getrandbits(128))),
            "category": rnd.choice(categories),
            "labels": tuple(rnd.sample(labels, rnd.choice((0, 1, 1, 2)))),
        }
        op = rnd.choice(operators)

        def fact(metric: str, key: str, when: datetime, wall: float | None = None,
                 common: dict[str, Any] = common, **kw: Any) -> NewFact:  # fmt: skip
            business = None if wall is None else wall * 0.4
            return NewFact(metric=metric, key=key, at=when, wall_s=wall, business_s=business,
                           **{**common, **kw})  # fmt: skip

        first = rnd.expovariate(1 / 7200)
        out += [
            fact("arrival", f"t{i}", at),
            fact("received", f"m{i}", at),
            fact("first_reply", f"t{i}", at + timedelta(seconds=first), first, operator_id=op),
            fact("reply", f"r{i}", at + timedelta(seconds=first), first, operator_id=op),
            fact("sent", f"s{i}", at + timedelta(seconds=first), operator_id=op),
        ]
        if rnd.random() < 0.8:
            took = first + rnd.expovariate(1 / 86400)
            out.append(fact("resolution", f"t{i}:1", at + timedelta(seconds=took), took,
                            operator_id=op))  # fmt: skip
        if rnd.random() < 0.1:
            out.append(fact("approval_request", f"a{i}", at, operator_id=op))
            decided = at + timedelta(seconds=600)
            kind = "send_back" if rnd.random() < 0.3 else "approval_given"
            out.append(fact(kind, f"a{i}:1", decided, 600.0, operator_id=op))
        if rnd.random() < 0.03:
            out.append(fact("transfer", f"x{i}", at + timedelta(hours=1), operator_id=op))
        if rnd.random() < 0.02:
            out.append(fact("trash", f"d{i}", at + timedelta(hours=2), operator_id=op))
    return [f for f in out if f.at <= now]


async def seed(stack: Stack, tenant: str) -> dict[str, Any]:
    facts = _facts(tenant, datetime.now(UTC))
    db = Database(with_database(stack.database_url, "sb_reporting"))
    await db.open([])
    try:
        began = time.perf_counter()
        for i in range(0, len(facts), CHUNK):
            async with db.transaction() as conn:
                await write_facts(conn, facts[i : i + CHUNK])
        async with db.pool.acquire() as conn:
            # as autovacuum would soon after a bulk load: the planner's statistics
            await conn.execute("ANALYZE facts; ANALYZE rollups_hour; ANALYZE rollups_15m")
            rows = await conn.fetchval(
                "SELECT count(*) FROM rollups_hour WHERE tenant_id = $1", uuid.UUID(tenant)
            )
    finally:
        await db.close()
    return {
        "tickets": TICKETS,
        "facts": len(facts),
        "rollups_hour_rows": rows,
        "seed_s": round(time.perf_counter() - began, 1),
    }


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1)}  # fmt: skip


async def run(stack: Stack) -> dict[str, Any]:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    data = await seed(stack, tenant.tenant_id)
    today = datetime.now(UTC).date()
    frm = (today - timedelta(days=396)).isoformat()  # 13 months through today
    figures: dict[str, Any] = {"data": data, "range": {"from": frm, "to": today.isoformat(),
                                                      "tz": ZONE}}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{stack.gateway_url}/api/v1/me", headers=auth) as r:
            me = await r.json()
    viewer = Identity(
        tenant_id=tenant.tenant_id,
        operator_id=me["id"],
        permissions=frozenset({"see_reports"}),
        inboxes=None,
        time_zone=ZONE,
    ).metadata()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['reporting']}")
    stub = reporting_pb2_grpc.ReportingServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
    worst = 0.0
    try:
        async with aiohttp.ClientSession() as http:
            for name, granularity in REPORTS:
                url = (f"{stack.gateway_url}/api/v1/reports/{name}?from={frm}&to={today}"
                       f"&granularity={granularity}&tz={ZONE}")  # fmt: skip
                samples = []
                for i in range(RUNS + 2):
                    began = time.perf_counter()
                    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                        assert r.status == 200, await r.text()
                        await r.read()
                    if i >= 2:  # two warm-ups
                        samples.append(time.perf_counter() - began)
                req = reporting_pb2.GetReportRequest(
                    report=name, to=today.isoformat(), granularity=granularity, time_zone=ZONE
                )
                setattr(req, "from", frm)
                rolled, from_facts = [], []
                for _ in range(FACT_RUNS):
                    for source, into in ((False, rolled), (True, from_facts)):
                        req.from_facts = source
                        began = time.perf_counter()
                        got = await stub.GetReport(req, metadata=viewer, timeout=300)
                        into.append(time.perf_counter() - began)
                        assert got.source == ("facts" if source else "rollups_hour")
                http_ms = _ms(samples)
                worst = max(worst, http_ms["p95_ms"])
                grpc_rollups, grpc_facts = _ms(rolled), _ms(from_facts)
                figures[name] = {
                    "granularity": granularity,
                    "http": http_ms,
                    "grpc_rollups": grpc_rollups,
                    "grpc_from_facts": grpc_facts,
                    "ratio_facts_to_rollups": round(
                        grpc_facts["p50_ms"] / max(grpc_rollups["p50_ms"], 0.1), 1
                    ),
                }
    finally:
        await channel.close()
    figures["p95_ms_worst"] = worst
    figures["target_p95_ms"] = TARGET_P95_MS
    figures["met"] = worst <= TARGET_P95_MS
    return figures


async def main() -> int:
    """The report figures alone, on a fresh stack."""
    from tests.bench.e2e import bench_stack

    with tempfile.TemporaryDirectory(prefix="sb-bench-reports-") as tmp:
        stack = bench_stack(Path(tmp))
        try:
            print("starting the stack…", file=sys.stderr)
            await stack.start()
            print(f"reports ({TICKETS} tickets)…", file=sys.stderr)
            result = await run(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    print(json.dumps({"reports": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
