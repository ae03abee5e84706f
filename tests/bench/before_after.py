"""The figures a refactor may not lower, beside the same figures of the code before it,
measured in the same run on the same machine (issue 15: target ratio >= 0.95):

- SMTP intake: 3 KB mails over 8 connections, mails per second to the last ticket;
- reply locks: acquire + release pairs per second through the tickets gRPC API;
- the ticket list: p99 of authenticated `GET /api/v1/tickets?limit=50` at 200 requests/s.

The code before is a git commit (`SB_BENCH_BEFORE`, by default the last commit before
issue 15) checked out in a temporary worktree, with its own generated protobuf code, run
by this interpreter with that tree first on the path. Each round starts a fresh stack of
each tree in turn (before, after, before, after: other load on the machine falls on both
alike), and each figure is the median of its rounds. The client side (this module and
the figures' code in tests/bench) is the same for both.

    python -m tests.bench.before_after          # alone; `make bench` runs it last
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from services.devstack.stack import ROOT, Ports, Stack, StackConfig
from tests.bench import api, locks

BEFORE = os.environ.get("SB_BENCH_BEFORE", "5c523d8")  # the last commit before issue 15
ROUNDS = int(os.environ.get("SB_BENCH_ROUNDS", "2"))
TARGET_RATIO = 0.95
PASSWORD = "bench-password"

# Run inside the tree measured: start its stack on free ports, print where it is, and
# stop it when stdin closes. Uses only what both trees' devstack offers.
DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys, tempfile
    from pathlib import Path
    from services.devstack.stack import Ports, Stack, StackConfig

    async def main():
        with tempfile.TemporaryDirectory(prefix="sb-bench-ab-") as tmp:
            stack = Stack(StackConfig(data_dir=Path(tmp), ports=Ports.free(),
                env="production", demo_password=sys.argv[1], service_logs_to_files=True,
                log_level="warning"))
            try:
                await stack.start()
                p = stack.config.ports
                print(json.dumps({"postgres": stack.database_url, "nats": stack.nats_url,
                    "redis": stack.redis_url, "http": p.http, "smtp": p.smtp,
                    "grpc": p.grpc}), flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            finally:
                await asyncio.to_thread(stack.stop)

    asyncio.run(main())
    """
)


@contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """`commit` in a temporary worktree, with its gen/ made by its own protogen."""
    with tempfile.TemporaryDirectory(prefix="sb-before-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--force", str(tree), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            subprocess.run(
                [sys.executable, "-m", "services.runtime.protogen"],
                cwd=tree,
                env=_env(tree),
                check=True,
                capture_output=True,
            )
            yield tree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )


def _head() -> str:
    """The commit measured as "after" (the working tree, changes included)."""
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout.strip()


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "gen")])
    return env


async def _figures(tree: Path) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DRIVER,
        PASSWORD,
        cwd=tree,
        env=_env(tree),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=180)
        if not line:
            raise RuntimeError(f"the stack of {tree} did not start")
        where = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            stack = Stack(
                StackConfig(
                    data_dir=Path(tmp),
                    ports=Ports(http=where["http"], smtp=where["smtp"], grpc=where["grpc"]),
                    database_url=where["postgres"],
                    nats_url=where["nats"],
                    redis_url=where["redis"],
                )
            )
            return await _measure(stack)
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), timeout=120)


async def _measure(stack: Stack) -> dict[str, float]:
    from tests.bench import e2e

    for i in range(50):  # warm caches and connections
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port) as s:
            await s.sendmail(
                "bench@example.com", ["support@demo.example"], e2e.make_mail(f"warm {i}")
            )
    intake = await e2e.throughput(stack, f"ab-{uuid.uuid4().hex[:6]}")
    async with aiohttp.ClientSession() as http:
        tokens = {}
        for login in ("admin@demo.example", "agent1@demo.example"):
            async with http.post(
                f"{stack.gateway_url}/api/v1/sessions",
                json={"login": login, "password": PASSWORD},
            ) as r:
                tokens[login] = (await r.json())["token"]
    lock_figures = await locks.run(stack, tokens["admin@demo.example"])
    api_figures = await api.run(stack, tokens["agent1@demo.example"])
    return {
        "smtp_intake_mails_per_second": intake["mails_per_second"],
        "lock_pairs_per_second": lock_figures["pairs"]["grpc"]["pairs_per_second"],
        "ticket_list_p99_ms": api_figures["open_loop"]["gateway"]["p99_ms"],
    }


async def run(before: str = BEFORE, rounds: int = ROUNDS) -> dict[str, Any]:
    head = await asyncio.to_thread(_head)
    samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with checkout(before) as old:
        for n in range(rounds):
            for which, tree in (("before", old), ("after", ROOT)):
                print(f"before/after: round {n + 1}, {which}…", file=sys.stderr)
                samples[which].append(await _figures(tree))
    median = {
        which: {k: statistics.median(s[k] for s in runs) for k in runs[0]}
        for which, runs in samples.items()
    }
    b, a = median["before"], median["after"]
    ratios = {
        # higher is better for rates; for a latency, before/after (>= 1 when not slower)
        "smtp_intake": round(
            a["smtp_intake_mails_per_second"] / b["smtp_intake_mails_per_second"], 3
        ),
        "lock_pairs": round(a["lock_pairs_per_second"] / b["lock_pairs_per_second"], 3),
        "ticket_list_p99": round(b["ticket_list_p99_ms"] / a["ticket_list_p99_ms"], 3),
    }
    return {
        "what": "the same figures of the code before (a worktree) and after, same run",
        "before": {"commit": before, **b},
        "after": {"commit": head, **a},
        "rounds": rounds,
        "samples": samples,
        "ratio_after_to_before": ratios,
        "target_ratio": TARGET_RATIO,
        "met": all(r >= TARGET_RATIO for r in ratios.values()),
    }


def main() -> int:
    print(json.dumps(asyncio.run(run()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
