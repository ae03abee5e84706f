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
the same transaction), for a tenant of its own whose zone is Asia/Tokyo (its day rollups:
the bench waits until the reports read them, and says how long their rebuild took).

`python -m tests.bench.reports --scale` (or SB_BENCH_REPORTS_SCALE=1) measures the same on
the scale data set instead (`make seed-scale`; SB_SCALE_DIR or `.data/scale`, started as
tests/bench/scale.py starts it): the manifest's supervisor over the 13 months ending the
data set's last day, the tenant's zone Asia/Tokyo. A data set folded before the day
rollups existed gets them from its first report (a rebuild in the background; or fold it
again first: `python -m services.devstack.seed_scale --fold-only --dir DIR`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
from switchboard.v1 import reporting_pb2, reporting_pb2_grpc

from services.devstack.seed_scale import DEFAULT_DIR, Manifest
from services.devstack.stack import Ports, Stack, StackConfig
from services.reporting.facts import NewFact
from services.reporting.facts_bulk import write_facts
from services.runtime.db import Database, with_database
from services.runtime.identity import Identity
from tests.helpers import api_call, create_tenant, login

TICKETS = int(os.environ.get("SB_BENCH_REPORT_TICKETS", "100000"))
RUNS = int(os.environ.get("SB_BENCH_REPORT_RUNS", "20"))
FACT_RUNS = int(os.environ.get("SB_BENCH_REPORT_FACT_RUNS", "3"))
TARGET_P95_MS = 300.0
CHUNK = 50_000
REPORTS = (("volume", "day"), ("response_times", "day"), ("operators", "month"),
           ("topics", "week"))  # fmt: skip
ZONE = "Asia/Tokyo"
DAYS_READY_S = float(os.environ.get("SB_BENCH_REPORT_DAYS_WAIT_S", "1800"))


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


async def _sizes(stack: Stack) -> dict[str, Any]:
    """Rows and megabytes of reporting's facts and rollups (all tenants)."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_reporting"))
    try:
        out: dict[str, Any] = {}
        for table in (
            "facts",
            "rollups_month",
            "rollups_week",
            "rollups_day",
            "rollups_hour",
            "rollups_15m",
        ):
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            out[table] = {"rows": rows, "mb": round(size / 2**20, 1)}
        return out
    finally:
        await conn.close()


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def _days_ready(stack: Stack, token: str, frm: str, to: str) -> float:
    """Wait until the reports read the day rollups (their rebuild after the tenant's zone
    was learned, when there was one to make); how long it took."""
    url = (f"{stack.gateway_url}/api/v1/reports/volume?from={frm}&to={to}&granularity=day"
           f"&tz={ZONE}")  # fmt: skip
    began = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        while (await _get(http, url, token))["source"] != "rollups_day":
            if time.perf_counter() - began > DAYS_READY_S:
                raise RuntimeError("the day rollups were not ready in time")
            await asyncio.sleep(1)
    return round(time.perf_counter() - began, 1)


async def measure(stack: Stack, token: str, frm: str, to: str) -> dict[str, Any]:
    """Every report through the gateway (RUNS), then from reporting's gRPC API from the
    rollups and from the facts (FACT_RUNS each)."""
    async with aiohttp.ClientSession() as http:
        me = await _get(http, f"{stack.gateway_url}/api/v1/me", token)
    viewer = Identity(
        tenant_id=me["tenant_id"],
        operator_id=me["id"],
        permissions=frozenset({"see_reports"}),
        inboxes=None,
        time_zone=ZONE,
    ).metadata()
    figures: dict[str, Any] = {"range": {"from": frm, "to": to, "tz": ZONE}}
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['reporting']}")
    stub = reporting_pb2_grpc.ReportingServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
    worst = 0.0
    figures["load_before"] = _load()
    try:
        async with aiohttp.ClientSession() as http:
            for name, granularity in REPORTS:
                url = (f"{stack.gateway_url}/api/v1/reports/{name}?from={frm}&to={to}"
                       f"&granularity={granularity}&tz={ZONE}")  # fmt: skip
                samples = []
                size = 0
                source = ""
                for i in range(RUNS + 2):
                    began = time.perf_counter()
                    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                        assert r.status == 200, await r.text()
                        raw = await r.read()
                    if i >= 2:  # two warm-ups
                        samples.append(time.perf_counter() - began)
                    size = len(raw)
                    source = json.loads(raw)["source"]
                req = reporting_pb2.GetReportRequest(
                    report=name, to=to, granularity=granularity, time_zone=ZONE
                )
                setattr(req, "from", frm)
                rolled: list[float] = []
                from_facts: list[float] = []
                for _ in range(FACT_RUNS):
                    for facts, into in ((False, rolled), (True, from_facts)):
                        req.from_facts = facts
                        began = time.perf_counter()
                        got = await stub.GetReport(req, metadata=viewer, timeout=600)
                        into.append(time.perf_counter() - began)
                        assert got.source == ("facts" if facts else source)
                http_ms = _ms(samples)
                worst = max(worst, http_ms["p95_ms"])
                grpc_rollups, grpc_facts = _ms(rolled), _ms(from_facts)
                figures[name] = {
                    "granularity": granularity,
                    "source": source,
                    "response_bytes": size,
                    "http": http_ms,
                    "grpc_rollups": grpc_rollups,
                    "grpc_from_facts": grpc_facts,
                    "ratio_facts_to_rollups": round(
                        grpc_facts["p50_ms"] / max(grpc_rollups["p50_ms"], 0.1), 1
                    ),
                }
    finally:
        await channel.close()
    figures["load_after"] = _load()
    figures["p95_ms_worst"] = worst
    figures["target_p95_ms"] = TARGET_P95_MS
    figures["met"] = worst <= TARGET_P95_MS
    return figures


async def run(stack: Stack) -> dict[str, Any]:
    """Own data: a tenant of its own in Asia/Tokyo, TICKETS tickets' facts."""
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    code, body = await api_call(stack, token, "PATCH", "/api/v1/tenant/settings",
                                {"time_zone": ZONE})  # fmt: skip
    assert code == 200, body
    data = await seed(stack, tenant.tenant_id)
    today = datetime.now(UTC).date()
    frm = (today - timedelta(days=396)).isoformat()  # 13 months through today
    data["day_rollups_ready_s"] = await _days_ready(stack, token, frm, today.isoformat())
    figures = await measure(stack, token, frm, today.isoformat())
    return {"data": data, "sizes": await _sizes(stack), **figures}


def scale_dir() -> Path:
    return Path(os.environ.get("SB_SCALE_DIR", str(DEFAULT_DIR))).resolve()


async def run_scale() -> dict[str, Any]:
    """On the scale data set: its supervisor, the 13 months ending its last day."""
    manifest = Manifest.read(scale_dir())
    if manifest is None:
        return {"skipped": f"no scale data set in {scale_dir()} (make seed-scale)"}
    stack = Stack(
        StackConfig(
            data_dir=scale_dir(),
            ports=Ports.free(),
            env="production",
            service_logs_to_files=True,
            log_level="warning",
        )
    )
    try:
        print("reports: starting the stack on the scale data set…", file=sys.stderr)
        await stack.start()
        token = await login(stack, manifest.supervisor, manifest.password)
        last = datetime.fromisoformat(manifest.end).date() - timedelta(days=1)
        frm, to = (last - timedelta(days=396)).isoformat(), last.isoformat()
        ready = await _days_ready(stack, token, frm, to)
        figures = await measure(stack, token, frm, to)
        figures["sizes"] = await _sizes(stack)
    finally:
        await asyncio.to_thread(stack.stop)
    return {
        "data_set": {
            "tickets": manifest.tickets,
            "facts": manifest.facts,
            "folder": str(scale_dir()),
            "day_rollups_ready_s": ready,
        },
        **figures,
    }


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    if "--scale" in sys.argv or os.environ.get("SB_BENCH_REPORTS_SCALE") == "1":
        print(json.dumps({"reports_scale": asyncio.run(run_scale())}, indent=2))
        sys.exit(0)
    print(f"reports ({TICKETS} tickets)", file=sys.stderr)
    sys.exit(run_alone("reports", run))
