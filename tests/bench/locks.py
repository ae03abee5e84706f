"""Reply-lock figures (issue 4, TKT-3), beside raw redis-py measured in the same run
against the same Redis:

- pairs: 200 contenders, each on its own ticket, acquire + release as fast as they can
  (closed loop) through the tickets gRPC API — and, as the baseline, SET NX PX + a Lua
  compare-and-delete on 200 keys. Pairs per second, and the acquire latency p50/p99
  (in a closed loop of 200 that is 200 ÷ the rate: queueing, not service time). The two
  run in alternating slices, so that other load on the machine falls on both alike.
- contended: 200 contenders on one ticket, each trying every 400 ms (open loop, 500
  attempts a second in all; the winner releases at once): acquire latency p50/p99, as
  an operator sees it when many ask at once. Same for raw redis-py.
- ceiling: the pairs again against a gRPC server that does nothing (`grpc_ceiling`), in
  the same alternating slices: what gRPC between two Python processes allows here at all.
- push: a lock taken at a steady 20 a second; the time from the event (its `occurred_at`)
  to its push on an operator's WebSocket, p50/p99.

`python -m tests.bench.locks` runs these alone on a fresh stack; `make bench` runs them
after the mail figures (`tests/bench/e2e.py`, key "locks").
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
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import grpc
import redis.asyncio as aioredis
from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

from services.accounts.seed import DEMO_TENANT
from services.devstack.infra import free_port
from services.devstack.stack import Stack
from services.runtime.db import with_database
from services.runtime.identity import Identity
from tests.bench import grpc_ceiling

CONTENDERS = 200
SECONDS = float(os.environ.get("SB_BENCH_LOCK_SECONDS", "10"))
SLICES = 4
CONTENDED_EVERY_S = 0.4
PUSH_RATE = 20.0
TARGET_RATIO = 0.3
TARGET_P99_MS = 10.0
TARGET_PUSH_P99_MS = 200.0
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


class Pairs:
    """Closed-loop pair counts and acquire latencies, added up over several slices."""

    def __init__(self) -> None:
        self.pairs = 0
        self.seconds = 0.0
        self.latencies: list[float] = []

    async def slice(
        self,
        acquire: Callable[[int], Awaitable[Any]],
        release: Callable[[int, Any], Awaitable[None]],
        seconds: float,
    ) -> None:
        """CONTENDERS loops, each acquiring and releasing back to back for `seconds`; the
        latency is the acquire's alone."""
        end = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                token = await acquire(i)
                self.latencies.append(time.perf_counter() - t0)
                if token is not None:
                    await release(i, token)
                    self.pairs += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(CONTENDERS)))
        self.seconds += time.perf_counter() - started

    def figures(self) -> dict[str, Any]:
        return {
            "pairs_per_second": round(self.pairs / self.seconds, 1),
            "acquire_latency": _ms(self.latencies),
        }


async def open_loop(
    acquire: Callable[[int], Awaitable[Any]],
    release: Callable[[int, Any], Awaitable[None]],
    seconds: float,
) -> dict[str, Any]:
    """CONTENDERS on one lock, each trying every CONTENDED_EVERY_S from a random phase."""
    latencies: list[float] = []
    wins = 0
    end = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal wins
        await asyncio.sleep(random.random() * CONTENDED_EVERY_S)
        due = time.perf_counter()
        while due < end:
            t0 = time.perf_counter()
            token = await acquire(i)
            latencies.append(time.perf_counter() - t0)
            if token is not None:
                wins += 1
                await release(i, token)
            due += CONTENDED_EVERY_S
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    await asyncio.gather(*(loop(i) for i in range(CONTENDERS)))
    return {
        "attempts_per_second": round(len(latencies) / seconds, 1),
        "wins": wins,
        "acquire_latency": _ms(latencies),
    }


class GrpcLocks:
    """The tickets gRPC API as 200 operators of the demo tenant (at `addr`: the no-op
    server of `grpc_ceiling`)."""

    def __init__(self, stack: Stack, addr: str = "") -> None:
        addr = addr or f"127.0.0.1:{stack.config.ports.grpc['tickets']}"
        self.channel = grpc.aio.insecure_channel(addr)
        self.stub = tickets_pb2_grpc.TicketsServiceStub(self.channel)
        self.md = [
            Identity(
                str(DEMO_TENANT), str(uuid.uuid4()), ("agent",), "", f"Bench {i:03d}"
            ).metadata()
            for i in range(CONTENDERS)
        ]

    def acquirer(self, ticket_of: Callable[[int], str]) -> Callable[[int], Awaitable[Any]]:
        async def acquire(i: int) -> Any:
            resp = await self.stub.AcquireReplyLock(
                tickets_pb2.ReplyLockRequest(ticket_id=ticket_of(i)), metadata=self.md[i]
            )
            return resp.lock.fence if resp.acquired else None

        return acquire

    def releaser(self, ticket_of: Callable[[int], str]) -> Callable[[int, Any], Awaitable[None]]:
        async def release(i: int, fence: Any) -> None:
            resp = await self.stub.ReleaseReplyLock(
                tickets_pb2.ReplyLockRequest(ticket_id=ticket_of(i), fence=fence),
                metadata=self.md[i],
            )
            assert resp.released

        return release


class RawLocks:
    """The baseline: redis-py SET NX PX and a Lua compare-and-delete, nothing else."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=256)
        )
        self.release_script = self.redis.register_script(RELEASE_LUA)

    def acquirer(self, key_of: Callable[[int], str]) -> Callable[[int], Awaitable[Any]]:
        async def acquire(i: int) -> Any:
            value = f"{i}|{uuid.uuid4().hex}"
            ok = await self.redis.set(key_of(i), value, nx=True, px=60_000)
            return value if ok else None

        return acquire

    def releaser(self, key_of: Callable[[int], str]) -> Callable[[int, Any], Awaitable[None]]:
        async def release(i: int, value: Any) -> None:
            await self.release_script(keys=[key_of(i)], args=[value])

        return release


async def ticket_ids(stack: Stack, count: int) -> list[str]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        rows = await conn.fetch(
            "SELECT id FROM tickets WHERE tenant_id = $1 ORDER BY received_at LIMIT $2",
            DEMO_TENANT,
            count,
        )
    finally:
        await conn.close()
    if len(rows) < count:
        raise RuntimeError(f"the benchmark needs {count} demo tickets, found {len(rows)}")
    return [str(r["id"]) for r in rows]


async def push_latency(stack: Stack, token: str, api: GrpcLocks, tickets: list[str]) -> Any:
    count = int(PUSH_RATE * SECONDS)
    wanted: dict[tuple[str, int], float] = {}
    seen: dict[tuple[str, int], float] = {}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws,
    ):
        await ws.receive()  # hello

        async def reader() -> None:
            async for msg in ws:
                now = time.time()
                event = json.loads(msg.data)
                if event["type"] == "lock.acquired":
                    at = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
                    key = (event["ticket_id"], event["lock"]["fence"])
                    seen[key] = now - at.timestamp()
                    if len(seen) >= count:
                        return

        read = asyncio.create_task(reader())
        start = time.perf_counter()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / PUSH_RATE - time.perf_counter()))
            tid = tickets[n % len(tickets)]
            md = api.md[n % CONTENDERS]
            resp = await api.stub.AcquireReplyLock(
                tickets_pb2.ReplyLockRequest(ticket_id=tid), metadata=md
            )
            assert resp.acquired
            wanted[(tid, resp.lock.fence)] = time.time()
            await api.stub.ReleaseReplyLock(
                tickets_pb2.ReplyLockRequest(ticket_id=tid, fence=resp.lock.fence), metadata=md
            )
        await asyncio.wait_for(read, timeout=60)
    latencies = [seen[k] for k in wanted if k in seen]
    return {"events": len(latencies), "rate_per_second": PUSH_RATE, **_ms(latencies)}


async def run(stack: Stack, token: str) -> dict[str, Any]:
    """All lock figures; `token` is a demo operator's session (for the WebSocket)."""
    tickets = await ticket_ids(stack, CONTENDERS + 1)
    own, shared = tickets[:CONTENDERS], tickets[CONTENDERS]
    api = GrpcLocks(stack)
    raw = RawLocks(stack.redis_url)
    noop_port = free_port()
    noop_server = grpc_ceiling.spawn(noop_port)
    await grpc_ceiling.ready(noop_port)
    noop = GrpcLocks(stack, f"127.0.0.1:{noop_port}")
    run_id = uuid.uuid4().hex[:6]

    def raw_key(i: int) -> str:
        return f"bench:{run_id}:{i}"

    try:
        grpc_acquire, grpc_release = api.acquirer(own.__getitem__), api.releaser(own.__getitem__)
        raw_acquire, raw_release = raw.acquirer(raw_key), raw.releaser(raw_key)
        noop_acquire, noop_release = noop.acquirer(own.__getitem__), noop.releaser(own.__getitem__)
        # warm the paths (connections, prepared statements, scripts), then alternate
        # short slices, so that other load on the machine falls on all alike
        await Pairs().slice(grpc_acquire, grpc_release, 1.0)
        await Pairs().slice(raw_acquire, raw_release, 1.0)
        await Pairs().slice(noop_acquire, noop_release, 1.0)
        grpc_pairs, raw_pairs, noop_pairs = Pairs(), Pairs(), Pairs()
        for _ in range(SLICES):
            await grpc_pairs.slice(grpc_acquire, grpc_release, SECONDS / SLICES)
            await raw_pairs.slice(raw_acquire, raw_release, SECONDS / SLICES)
            await noop_pairs.slice(noop_acquire, noop_release, SECONDS / SLICES)
        pairs, raw_figures = grpc_pairs.figures(), raw_pairs.figures()
        noop_figures = noop_pairs.figures()
        contended = await open_loop(
            api.acquirer(lambda i: shared), api.releaser(lambda i: shared), SECONDS
        )
        raw_contended = await open_loop(
            raw.acquirer(lambda i: f"bench:{run_id}:shared"),
            raw.releaser(lambda i: f"bench:{run_id}:shared"),
            SECONDS,
        )
        push = await push_latency(stack, token, api, own)
    finally:
        await api.channel.close()
        await noop.channel.close()
        noop_server.terminate()
        noop_server.wait(timeout=10)
        await raw.redis.aclose()
    ratio = pairs["pairs_per_second"] / raw_figures["pairs_per_second"]
    ceiling = noop_figures["pairs_per_second"] / raw_figures["pairs_per_second"]
    return {
        "contenders": CONTENDERS,
        "seconds": SECONDS,
        "pairs": {
            "what": "200 contenders, one ticket each, acquire + release back to back",
            "grpc": pairs,
            "raw_redis": raw_figures,
            "ratio_to_raw": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "met": ratio >= TARGET_RATIO,
            "ceiling": {
                "what": (
                    "the same client against a gRPC server that does nothing "
                    "(tests/bench/grpc_ceiling.py): the most any lock behind gRPC can reach"
                ),
                "grpc_noop": noop_figures,
                "ratio_to_raw": round(ceiling, 3),
                "real_share_of_ceiling": round(
                    pairs["pairs_per_second"] / noop_figures["pairs_per_second"], 3
                ),
            },
        },
        "contended": {
            "what": (
                f"200 contenders on one ticket, each trying every {CONTENDED_EVERY_S * 1000:.0f}"
                " ms; the winner releases at once"
            ),
            "grpc": contended,
            "raw_redis": raw_contended,
            "target_p99_ms": TARGET_P99_MS,
            "met": contended["acquire_latency"]["p99_ms"] <= TARGET_P99_MS,
        },
        "push_latency": {
            "what": "lock.acquired occurred_at → WebSocket push",
            **push,
            "target_p99_ms": TARGET_PUSH_P99_MS,
            "met": push["p99_ms"] <= TARGET_PUSH_P99_MS,
        },
    }


async def _alone(stack: Stack) -> dict[str, Any]:
    """A few demo tickets by SMTP, then the lock figures as agent1."""
    import aiosmtplib

    from tests.bench.e2e import login_token, make_mail

    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port)
    await smtp.connect()
    for i in range(CONTENDERS + 1):
        await smtp.sendmail("bench@example.com", ["support@demo.example"], make_mail(f"lock {i}"))
    await smtp.quit()
    while True:
        try:
            await ticket_ids(stack, CONTENDERS + 1)
            break
        except RuntimeError:
            await asyncio.sleep(0.5)
    return await run(stack, await login_token(stack, "agent1@demo.example"))


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("locks", _alone))
