"""Gateway API figures (issue 5): authenticated `GET /api/v1/tickets` (50 items), beside a
bare aiohttp JSON endpoint measured in the same run against the same client:

- closed loop: 64 concurrent clients, each asking again as soon as it is answered —
  requests per second and latency p50/p99;
- open loop: 200 requests a second at a steady pace from the same 64 connections —
  latency p50/p99 (target: p99 ≤ 50 ms at 200 requests/s).

The bare endpoint (`python -m tests.bench.api PORT FILE`, its own process, uvloop) answers
every GET with the same 50-item body the gateway gave, without authentication, access
rules, gRPC or masking: what aiohttp alone costs on this machine.

Every gateway request goes the whole way: session (cached in Redis), access rules, the
tickets service over gRPC (PostgreSQL), JSON, security headers.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from services.devstack.infra import free_port
from services.devstack.stack import Stack

CLIENTS = 64
SECONDS = 8.0
RATE = 200.0
TARGET_P99_MS = 50.0
PATH = "/api/v1/tickets?limit=50"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _ms(latencies: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in latencies]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


async def closed_loop(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Any:
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + SECONDS

    async def loop() -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            async with http.get(url, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    return {"requests_per_second": round(len(latencies) / elapsed, 1), "errors": errors,
            **_ms(latencies)}  # fmt: skip


async def open_loop(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Any:
    latencies: list[float] = []
    errors = 0
    count = int(RATE * SECONDS)
    start = time.perf_counter()

    async def one(n: int) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, start + n / RATE - time.perf_counter()))
        t0 = time.perf_counter()
        async with http.get(url, headers=headers) as r:
            await r.read()
            if r.status != 200:
                errors += 1
        latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(n) for n in range(count)))
    return {"rate_per_second": RATE, "requests": count, "errors": errors, **_ms(latencies)}


async def run(stack: Stack, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{stack.gateway_url}{PATH}"
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(url, headers=headers) as r:
            body = await r.read()
            items = len(json.loads(body)["items"])
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(body)
            body_file = f.name
        port = free_port()
        bare = spawn_bare(port, body_file)
        bare_url = f"http://127.0.0.1:{port}{PATH}"
        try:
            for _ in range(100):
                try:
                    async with http.get(bare_url) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            await closed_loop(http, url, headers)  # warm caches and connections
            gateway = await closed_loop(http, url, headers)
            baseline = await closed_loop(http, bare_url, {})
            paced = await open_loop(http, url, headers)
            bare_paced = await open_loop(http, bare_url, {})
        finally:
            bare.terminate()
            bare.wait(10)
            Path(body_file).unlink(missing_ok=True)
    return {
        "what": f"GET {PATH} ({items} items, {len(body)} bytes) as an operator",
        "clients": CLIENTS,
        "closed_loop": {
            "gateway": gateway,
            "bare_aiohttp": baseline,
            "ratio_to_bare": round(
                gateway["requests_per_second"] / baseline["requests_per_second"], 3
            ),
        },
        "open_loop": {
            "gateway": paced,
            "bare_aiohttp": bare_paced,
            "target_p99_ms": TARGET_P99_MS,
            "met": paced["p99_ms"] <= TARGET_P99_MS and paced["errors"] == 0,
        },
    }


def spawn_bare(port: int, body_file: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.api", str(port), body_file])


def serve_bare(port: int, body_file: str) -> None:
    import uvloop

    body = Path(body_file).read_bytes()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/tickets", handler)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    serve_bare(int(sys.argv[1]), sys.argv[2])
