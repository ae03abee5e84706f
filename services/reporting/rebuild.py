"""`python -m services.reporting.rebuild --tenant T [--from ISO] [--to ISO]`: recompute a
tenant's rollups from its facts (issue 19 §2) — the range's rows deleted and folded again
in one transaction, so reports read either the old rows or the new ones. Ranges are
whole UTC hours. (Facts are made by the consumers from the streams; a lost fact is made
again by replaying a stream into the consumers: see docs/architecture.md, Reporting.)"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from . import commands


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.reporting.rebuild", description=__doc__)
    p.add_argument("--tenant", required=True, type=commands.tenant_id, action="append")
    p.add_argument("--from", dest="start", type=commands.instant, default=None)
    p.add_argument("--to", dest="end", type=commands.instant, default=None)
    args = p.parse_args(argv)
    if args.start and args.end and args.end <= args.start:
        p.error("--to must be after --from")
    return asyncio.run(_run(args.tenant, args.start, args.end))


async def _run(tenants: list[str], start: datetime | None, end: datetime | None) -> int:
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
