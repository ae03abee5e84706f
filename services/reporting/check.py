"""`python -m services.reporting.check [--tenant T]`: compare the rollups with the facts
(issue 19 §2). Every rollup row (hourly, 15-minute, and daily, weekly and monthly in the
tenant's zone once those are ready) is computed again from the facts
already folded and compared with the stored one: exit 0 when all agree, 1 with one line
per differing row otherwise (then `python -m services.reporting.rebuild` repairs them)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import commands, day_rollups, rollup_audit, rollups


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.reporting.check", description=__doc__)
    p.add_argument("--tenant", type=commands.tenant_id, action="append", default=[])
    args = p.parse_args(argv)
    return asyncio.run(_run(args.tenant))


async def _run(only: list[str]) -> int:
    conn = await commands.connect()
    bad = 0
    try:
        for tenant in only or await rollup_audit.tenants(conn):
            zone = await day_rollups.zone_of(conn, tenant)
            for grain in rollups.ALL_GRAINS:
                if grain in rollups.LOCAL and not zone:
                    continue  # no day rows, or being rebuilt
                # one snapshot: the roller's commits in between do not tear the comparison
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    expected = await rollup_audit.from_facts(conn, tenant, grain, zone=zone)
                    found = await rollup_audit.stored(conn, tenant, grain)
                lines = rollup_audit.differences(expected, found)
                bad += len(lines)
                for line in lines:
                    print(f"tenant {tenant} {rollups.TABLES[grain]}: {line}")
                if not lines:
                    print(f"tenant {tenant} {rollups.TABLES[grain]}: {len(found)} rows agree")
    finally:
        await conn.close()
    if bad:
        print(f"{bad} rollup rows differ from the facts", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
