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
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.accounts import bulk as accounts_bulk
from services.ingestion import bulk as ingestion_bulk
from services.runtime.db import Database, with_database
from services.runtime.service import service_migrations
from services.tickets import bulk as tickets_bulk

from .infra import Postgres, free_port
from .scale import ADMIN_LOGIN, Batch, Generator
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


@dataclass(frozen=True)
class _Rows:
    """One batch as each service's bulk path writes it."""

    ingestion: ingestion_bulk.Prepared
    tickets: tickets_bulk.Prepared


def _prepare(gen: Generator, batch: Batch) -> _Rows:
    """Parse the batch's mails (ingestion's parser) and make every row: CPU only, done in a
    thread while the previous batch is being written."""
    mails = ingestion_bulk.prepare(gen.tenant.id, [m.mail for m in batch.mails])
    messages = [
        tickets_bulk.BulkMessage(m.mail.id, m.ticket_id, m.mail.channel, m.mail.received_at, s)
        for m, s in zip(batch.mails, mails.summaries, strict=True)
    ]
    tickets = tickets_bulk.prepare(
        gen.tenant.id, batch.contacts, batch.tickets, messages, batch.audit_ids
    )
    return _Rows(mails, tickets)


async def load(pg: Postgres, gen: Generator, progress: bool = True) -> dict[str, int]:
    """Write the generated tenant into the server's service databases; the counts."""
    dbs = {s: await _database(pg, s) for s in ("accounts", "ingestion", "tickets")}
    counts = {"tickets": 0, "messages": 0, "contacts": 0}
    try:
        async with dbs["accounts"].pool.acquire() as conn:
            await accounts_bulk.bulk_load(
                conn, gen.tenant, gen.inboxes, [o.account for o in gen.operators], PASSWORD
            )
        started = time.monotonic()
        batches = iter(gen.batches())

        def next_rows() -> _Rows | None:
            batch = next(batches, None)
            return None if batch is None else _prepare(gen, batch)

        async with (
            dbs["ingestion"].pool.acquire() as ingestion,
            dbs["tickets"].pool.acquire() as tickets,
        ):
            rows = await asyncio.to_thread(next_rows)
            while rows is not None:
                following = asyncio.create_task(asyncio.to_thread(next_rows))
                async with ingestion.transaction():
                    await ingestion_bulk.write(ingestion, rows.ingestion)
                await tickets_bulk.write(tickets, rows.tickets)
                counts["tickets"] += len(rows.tickets.tickets)
                counts["messages"] += len(rows.tickets.messages)
                counts["contacts"] += len(rows.tickets.contacts)
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
                rows = await following
        if progress:
            print("\nanalysing…", file=sys.stderr)
        for service in ("ingestion", "tickets"):
            async with dbs[service].pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")
    finally:
        for db in dbs.values():
            await db.close()
    return counts


async def generate(
    data_dir: Path, tickets: int, seed: int, end: datetime, *, force: bool, progress: bool = True
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
        counts = await load(pg, gen, progress)
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
    )
    (data_dir / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(prog="seed-scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", default=DEFAULT_END.isoformat(), help="the last day (UTC)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--force", action="store_true", help="replace a data set there")
    args = parser.parse_args()
    if args.tickets < 1:
        parser.error("--tickets must be at least 1")
    end = datetime.fromisoformat(args.end)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    manifest = asyncio.run(generate(args.dir, args.tickets, args.seed, end, force=args.force))
    print(json.dumps(asdict(manifest), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
