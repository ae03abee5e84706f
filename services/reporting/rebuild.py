"""`python -m services.reporting.rebuild --tenant T [--from ISO] [--to ISO]
[--replay-since ISO | --replay-from-seq N]`: recompute a tenant's rollups from its facts
(issue 19 §2) — the range's rows deleted and folded again in one transaction, so reports
read either the old rows or the new ones; ranges are whole UTC hours. With a replay
option, first replay the streams reporting consumes (TICKETS, APPROVAL, OUTBOUND,
ROUTING) from that time or stream sequence through its consumers' handlers, making again
any fact that is missing (replay.py); the streams keep 14 days."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from . import commands
from .replay import Start, replay


def _since(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.reporting.rebuild", description=__doc__)
    p.add_argument("--tenant", required=True, type=commands.tenant_id, action="append")
    p.add_argument("--from", dest="start", type=commands.instant, default=None)
    p.add_argument("--to", dest="end", type=commands.instant, default=None)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--replay-since", type=_since, default=None)
    source.add_argument("--replay-from-seq", type=int, default=None)
    args = p.parse_args(argv)
    if args.start and args.end and args.end <= args.start:
        p.error("--to must be after --from")
    if args.replay_from_seq is not None and args.replay_from_seq < 1:
        p.error("--replay-from-seq must be 1 or more")
    replaying = None
    if args.replay_since is not None or args.replay_from_seq is not None:
        replaying = Start(args.replay_since, args.replay_from_seq)
    return asyncio.run(_run(args.tenant, args.start, args.end, replaying))


async def _run(
    tenants: list[str], start: datetime | None, end: datetime | None, replaying: Start | None
) -> int:
    if replaying is not None:
        for durable, n in (await replay(set(tenants), replaying)).items():
            print(f"replayed {n} events through {durable}")
    conn = await commands.connect()
    try:
        for tenant in tenants:
            rows = await commands.rebuild(conn, tenant, start, end)
            print(f"tenant {tenant}: {rows} rollup rows rebuilt from its facts")
    finally:
        await conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
