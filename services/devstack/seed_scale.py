"""`make seed-scale` (`python -m services.devstack.seed_scale --tickets N`): the scale data
set — one realistic tenant (services/devstack/scale.py) written through each owning
service's bulk path (accounts, ingestion, tickets: their `bulk.py`) into a PostgreSQL data
folder of its own, `.data/scale/postgres` by default, which `make bench` starts when it is
there (tests/bench/scale.py) so no benchmark generates it again.

The folder holds a stack's data (`.data/scale` is a `StackConfig.data_dir`: postgres/, and
nats/ and redis/ once a stack ran on it) and `scale.json`, what was generated: the size,
the seed, the logins, the counts and how long it took. While loading, PostgreSQL runs
without fsync (a crash mid-load leaves a folder to generate again, `--force`); its fast
shutdown at the end writes everything out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from services.accounts import bulk as accounts_bulk
from services.reporting import day_rollups, periods, rollups
from services.reporting.facts_bulk import write_facts
from services.reporting.live_bulk import clear_tenant, write_live
from services.runtime.bulk import create_indexes, drop_indexes, drop_primary_keys
from services.runtime.db import Database, with_database
from services.runtime.service import service_migrations
from services.tickets import counts as ticket_counts

from . import scale_facts, scale_live, scale_workers
from .infra import Postgres, free_port
from .scale import ADMIN_LOGIN, Generator
from .stack import ROOT

DEFAULT_DIR = ROOT / ".data" / "scale"
DEFAULT_END = datetime(2026, 12, 1, tzinfo=UTC)
PASSWORD = "scale-password"
MANIFEST = "scale.json"
# bulk loading: room for index builds and fewer checkpoints
LOAD_SETTINGS = {
    "maintenance_work_mem": "256MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "30min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


@dataclass(frozen=True)
class Manifest:
    tickets: int
    messages: int
    contacts: int
    seed: int
    end: str
    tenant_id: str
    password: str
    admin: str
    agent: str
    supervisor: str
    trainee: str
    seconds: float
    generated_at: str
    facts: int = 0  # reporting's facts written (0: none yet; `--facts-only` adds them)
    live: int = 0  # reporting's live rows written (0: none yet; `--live-only` adds them)

    @classmethod
    def read(cls, data_dir: Path) -> Manifest | None:
        path = data_dir / MANIFEST
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


async def _database(pg: Postgres, service: str) -> Database:
    db = Database(with_database(pg.url, f"sb_{service}"), min_size=1, max_size=1)
    await db.open(service_migrations(service), create=True)
    return db


# the tables whose indexes are built after a fresh load rather than kept up row by row
_BULK_TABLES = {
    "ingestion": ("raw_messages",),
    "tickets": ("tickets", "messages", "audit", "contacts", "contact_addresses"),
    "reporting": ("facts", "live_tickets", "live_customer_messages"),
}
FOLD_WORK_MEM = "256MB"  # a week of a million-ticket tenant's facts sorted in memory, per
# connection (one per core)
FOLD_CHUNK = timedelta(days=7)


async def load(
    pg: Postgres,
    gen: Generator,
    progress: bool = True,
    facts: bool = True,
    *,
    workers: int | None = None,
    indexes_after: bool = False,
) -> dict[str, int]:
    """Write the generated tenant into the server's service databases; the counts.
    Without `facts`, reporting's facts are left for `add_facts`. `workers` processes
    (one per core by default) parse and write the batches (scale_workers.py); with
    `indexes_after` the big tables' indexes are dropped first and built at the end
    (for a fresh server: meanwhile the services' queries would find no index)."""
    dbs = {s: await _database(pg, s) for s in ("accounts", *scale_workers.SERVICES)}
    counts = {"tickets": 0, "messages": 0, "contacts": 0, "facts": 0}
    try:
        async with dbs["accounts"].pool.acquire() as conn:
            await accounts_bulk.bulk_load(
                conn, gen.tenant, gen.inboxes, [o.account for o in gen.operators], PASSWORD
            )
        dropped: dict[str, list[str]] = {}
        if indexes_after:
            for service, tables in _BULK_TABLES.items():
                async with dbs[service].pool.acquire() as conn:
                    dropped[service] = await drop_indexes(conn, tables)
        started = time.monotonic()

        def done(c: scale_workers.Counts) -> None:
            for k in counts:
                counts[k] += getattr(c, k)
            if progress:
                rate = counts["tickets"] / max(time.monotonic() - started, 1e-6)
                left = (gen.total - counts["tickets"]) / max(rate, 1e-6)
                print(
                    f"\r{counts['tickets']:,}/{gen.total:,} tickets, "
                    f"{counts['messages']:,} messages, {rate:,.0f} tickets/s, "
                    f"~{left / 60:.0f} min left",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        await asyncio.to_thread(
            scale_workers.write_batches,
            pg.url,
            gen,
            facts=facts,
            workers=workers or os.cpu_count() or 1,
            done=done,
        )
        _say(progress, "\nbuilding indexes…")
        await asyncio.gather(
            *(_create_indexes(dbs[s], defs) for s, defs in dropped.items() if defs)
        )
        _say(progress, "folding the facts into the rollups, analysing…")

        async def reporting() -> None:
            if facts:
                await fold_facts(
                    dbs["reporting"],
                    str(gen.tenant.id),
                    gen.tenant.time_zone,
                    drop_keys=indexes_after,
                )
            await _vacuum(dbs["reporting"])

        async def tickets() -> None:  # the tab counts' deltas (one a ticket) summed
            while await ticket_counts.compact(dbs["tickets"].pool) > 0:
                pass
            await _vacuum(dbs["tickets"])

        await asyncio.gather(reporting(), _vacuum(dbs["ingestion"]), tickets())
    finally:
        for db in dbs.values():
            await db.close()
    return counts


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


async def _vacuum(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE")


async def _create_indexes(db: Database, definitions: list[str]) -> None:
    async with db.pool.acquire() as conn:
        await create_indexes(conn, definitions)


async def tenant_zone(pg_url: str, tenant_id: str) -> str:
    """The tenant's time zone, from accounts' database (a tool's read of the data set)."""
    conn = await asyncpg.connect(with_database(pg_url, "sb_accounts"))
    try:
        zone = await conn.fetchval(
            "SELECT time_zone FROM tenants WHERE id = $1", uuid.UUID(tenant_id)
        )
    finally:
        await conn.close()
    return str(zone or "UTC")


def fold_ranges(
    lo: datetime, hi: datetime, zone: str
) -> list[tuple[tuple[str, ...], datetime, datetime]]:
    """The fold's chunks: UTC weeks for the hourly and 15-minute rollups; in `zone`, local
    months for the day and month rollups and runs of four local weeks (from a Monday) for
    the week rollups — each grain's chunks cover whole buckets of it and never overlap, so
    parallel chunks never write the same row."""
    out: list[tuple[tuple[str, ...], datetime, datetime]] = []
    day = lo.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= hi:
        out.append((rollups.GRAINS, day, day + FOLD_CHUNK))
        day += FOLD_CHUNK
    tz = periods.zone_of(zone)
    first = periods.local_day(lo, tz)
    for grains, step in (
        ((rollups.DAY, rollups.MONTH), lambda d: rollups.next_local(d, rollups.MONTH)),
        ((rollups.WEEK,), lambda d: d + 4 * FOLD_CHUNK),
    ):
        local = rollups.local_bucket(first, grains[-1])
        while (start := periods.local_midnight(local, tz)) <= hi:
            local = step(local)
            out.append((grains, start, periods.local_midnight(local, tz)))
    return out


async def fold_facts(
    db: Database,
    tenant_id: str,
    zone: str,
    *,
    parallel: int | None = None,
    drop_keys: bool = True,
) -> None:
    """Fold all the tenant's facts into its rollups, which hold none of its rows (in
    PostgreSQL: rollups.fold_in_sql) — hourly, 15-minute, and daily, weekly and monthly in
    `zone` (the tenant's: marked ready) — a week or a month at a time on `parallel`
    connections (one per core; each with FOLD_WORK_MEM; chunks of `fold_ranges`, which
    never share a row). With `drop_keys` (a server of its own: the roller would find no
    key to upsert on) the rollups' primary keys are dropped meanwhile and built once at
    the end."""
    async with db.pool.acquire() as conn:
        lo, hi = await conn.fetchrow(
            "SELECT min(at), max(at) FROM facts WHERE tenant_id = $1", uuid.UUID(tenant_id)
        )
        if lo is None:
            return
        tables = list(rollups.TABLES.values())
        keys = await drop_primary_keys(conn, tables) if drop_keys else []
    ranges = asyncio.Queue[tuple[tuple[str, ...], datetime, datetime]]()
    for item in fold_ranges(lo, hi, zone):
        ranges.put_nowait(item)

    async def fold() -> None:
        conn = await asyncpg.connect(db.url)
        try:
            await conn.execute(f"SET work_mem = '{FOLD_WORK_MEM}'")
            while not ranges.empty():
                grains, start, end = ranges.get_nowait()
                async with conn.transaction():
                    await rollups.fold_in_sql(
                        conn, tenant_id, start, end, fresh=True, grains=grains, zone=zone
                    )
        finally:
            await conn.close()

    async def add_key(statement: str) -> None:  # each on a connection of its own
        conn = await asyncpg.connect(db.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    try:
        await asyncio.gather(*(fold() for _ in range(parallel or os.cpu_count() or 2)))
    finally:
        await asyncio.gather(*(add_key(k) for k in keys))
    async with db.pool.acquire() as conn:
        await day_rollups.mark_ready(conn, tenant_id, zone)


async def fold_only(data_dir: Path, parallel: int | None, progress: bool = True) -> Manifest:
    """Make the rollups of the data set in `data_dir` again from its facts, with this
    code's fold (after a change of the rollups: new tables, sparse histograms): the
    rollup tables emptied (the data set holds one tenant), folded in parallel, analysed."""
    manifest = Manifest.read(data_dir)
    if manifest is None:
        raise SystemExit(f"no data set in {data_dir} (make seed-scale)")
    pg = Postgres(free_port(), data_dir / "postgres", fast=True, settings=LOAD_SETTINGS)
    await pg.start()
    try:
        db = await _database(pg, "reporting")  # applies reporting's new migrations
        try:
            zone = await tenant_zone(pg.url, manifest.tenant_id)
            async with db.pool.acquire() as conn:
                await conn.execute(f"TRUNCATE {', '.join(rollups.TABLES.values())}")
            began = time.monotonic()
            _say(progress, f"folding the facts into the rollups (days in {zone})…")
            await fold_facts(db, manifest.tenant_id, zone, parallel=parallel)
            _say(progress, f"folded in {time.monotonic() - began:.0f} s; analysing…")
            async with db.pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")
        finally:
            await db.close()
    finally:
        await asyncio.to_thread(pg.stop)
    return manifest


async def generate(
    data_dir: Path,
    tickets: int,
    seed: int,
    end: datetime,
    *,
    force: bool,
    progress: bool = True,
    facts: bool = True,
    workers: int | None = None,
) -> Manifest:
    """Generate the data set into `data_dir` (refused when one is there, unless `force`)."""
    if (data_dir / "postgres").exists():
        if not force:
            raise SystemExit(f"{data_dir} holds a data set already (--force replaces it)")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = Postgres(free_port(), data_dir / "postgres", fast=True, settings=LOAD_SETTINGS)
    started = time.monotonic()
    await pg.start()
    try:
        gen = Generator(tickets, seed, end)
        counts = await load(pg, gen, progress, facts, workers=workers, indexes_after=True)
    finally:
        await asyncio.to_thread(pg.stop)
    manifest = Manifest(
        tickets=counts["tickets"],
        messages=counts["messages"],
        contacts=counts["contacts"],
        seed=seed,
        end=end.isoformat(),
        tenant_id=str(gen.tenant.id),
        password=PASSWORD,
        admin=ADMIN_LOGIN,
        agent=gen.login_of("agent"),
        supervisor=gen.login_of("supervisor"),
        trainee=gen.login_of("trainee"),
        seconds=round(time.monotonic() - started, 1),
        generated_at=datetime.now(UTC).isoformat(),
        facts=counts["facts"],
        live=counts["tickets"],
    )
    (data_dir / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _again(data_dir: Path) -> tuple[Manifest, Generator, Postgres]:
    """The data set in `data_dir`: what generated it, its generator again, its server."""
    manifest = Manifest.read(data_dir)
    if manifest is None:
        raise SystemExit(f"no data set in {data_dir} (make seed-scale)")
    gen = Generator(manifest.tickets, manifest.seed, datetime.fromisoformat(manifest.end))
    pg = Postgres(free_port(), data_dir / "postgres", fast=True, settings=LOAD_SETTINGS)
    return manifest, gen, pg


async def add_facts(data_dir: Path, progress: bool = True) -> Manifest:
    """Write reporting's facts of the data set in `data_dir` (generated again from its
    seed, the mails not parsed); facts already there are skipped (their keys). The
    tenant's rollups are then made again from all its facts."""
    manifest, gen, pg = _again(data_dir)
    await pg.start()
    written = done = 0
    try:
        db = await _database(pg, "reporting")
        try:
            async with db.pool.acquire() as conn:
                for batch in gen.batches():
                    facts = scale_facts.batch_facts(gen, batch)
                    async with conn.transaction():
                        written += await write_facts(conn, facts, fold=False)
                    done += len(batch.tickets)
                    if progress:
                        print(f"\r{done:,}/{gen.total:,} tickets, {written:,} new facts",
                              end="", file=sys.stderr, flush=True)  # fmt: skip
                _say(progress, "\nfolding the facts into the rollups…")
                for table in rollups.TABLES.values():
                    await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", gen.tenant.id)
            await fold_facts(db, str(gen.tenant.id), gen.tenant.time_zone)
            async with db.pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")
        finally:
            await db.close()
    finally:
        await asyncio.to_thread(pg.stop)
    total = manifest.facts + written
    manifest = Manifest(**{**asdict(manifest), "facts": total})
    (data_dir / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


async def add_live(data_dir: Path, progress: bool = True) -> Manifest:
    """Write reporting's live rows of the data set in `data_dir` again (generated again
    from its seed, the mails not parsed): the tenant's rows there are replaced."""
    manifest, gen, pg = _again(data_dir)
    await pg.start()
    written = 0
    try:
        db = await _database(pg, "reporting")  # applies reporting's new migrations
        try:
            async with db.pool.acquire() as conn:
                async with conn.transaction():
                    await clear_tenant(conn, gen.tenant.id)
                for batch in gen.batches():
                    rows, messages = scale_live.batch_live(gen, batch)
                    async with conn.transaction():
                        written += await write_live(conn, rows, messages)
                    if progress:
                        print(f"\r{written:,}/{gen.total:,} live rows", end="",
                              file=sys.stderr, flush=True)  # fmt: skip
                _say(progress, "\nanalysing…")
                await conn.execute("VACUUM ANALYZE live_tickets")
                await conn.execute("VACUUM ANALYZE live_customer_messages")
        finally:
            await db.close()
    finally:
        await asyncio.to_thread(pg.stop)
    manifest = Manifest(**{**asdict(manifest), "live": written})
    (data_dir / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(prog="seed-scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", default=DEFAULT_END.isoformat(), help="the last day (UTC)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)  # made absolute below
    parser.add_argument("--force", action="store_true", help="replace a data set there")
    parser.add_argument(
        "--facts-only",
        action="store_true",
        help="only write reporting's facts of the data set there (generated again)",
    )
    parser.add_argument(
        "--live-only",
        action="store_true",
        help="only write reporting's live rows of the data set there again (generated again)",
    )
    parser.add_argument(
        "--fold-only",
        action="store_true",
        help="only make the rollups there again from its facts (after a change of the fold)",
    )
    parser.add_argument(
        "--parallel", type=int, default=None, help="connections folding (one per core)"
    )
    parser.add_argument(
        "--no-facts",
        action="store_true",
        help="leave reporting's facts out (--facts-only adds them later)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes parsing and writing (one per core)"
    )
    args = parser.parse_args()
    args.dir = args.dir.resolve()  # PostgreSQL's socket and lock files are put there
    if args.tickets < 1:
        parser.error("--tickets must be at least 1")
    end = datetime.fromisoformat(args.end)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if args.fold_only:
        manifest = asyncio.run(fold_only(args.dir, args.parallel))
    elif args.live_only:
        manifest = asyncio.run(add_live(args.dir))
    elif args.facts_only:
        manifest = asyncio.run(add_facts(args.dir))
    else:
        manifest = asyncio.run(
            generate(
                args.dir,
                args.tickets,
                args.seed,
                end,
                force=args.force,
                facts=not args.no_facts,
                workers=args.workers,
            )
        )
    print(json.dumps(asdict(manifest), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
