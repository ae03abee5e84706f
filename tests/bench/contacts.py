"""The contact list with and without the inbox scope (SEC-5) and the masked search (SEC-6):
`python -m tests.bench.contacts` starts its own PostgreSQL, files CONTACTS contacts with
TICKETS tickets spread over INBOXES inboxes, and prints as JSON the median time of a
page of 50 (`ContactsRepo.list`) for: every contact (as before issue 16, and as an
operator with all_inboxes still is), an operator of one inbox, an operator of every inbox
named one by one, a small inbox, the same without the `tickets_contact_inbox` index, and
a search by an operator who sees addresses beside one who does not. Not part of `make test`.

Measured on the development machine (2 shared cores, others working), 5,000 contacts,
20,000 tickets in 5 inboxes plus a small one that 1 % of the contacts wrote to, medians
of 30: every contact (the query before issue 16) 1.1 ms; one inbox 1.5 ms; every inbox
named 1.3 ms; the small inbox 1.8 ms (2.8 ms without the index); a search by an operator
who sees addresses 21 ms, by one who does not 0.9 ms (one column, no address or phone
sub-queries).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.devstack.infra import Postgres, free_port
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from services.tickets.contact_rules import search
from services.tickets.contacts import ContactsRepo

CONTACTS, TICKETS, INBOXES, ROUNDS = 5_000, 20_000, 5, 30
TICKET_COLUMNS = (
    "id tenant_id subject status inbox_id inbox_name received_at created_at updated_at "
    "contact_id number"
).split()


async def _seed(db: Database) -> tuple[str, list[str]]:
    tenant = uuid.uuid4()
    inboxes = [uuid.uuid4() for _ in range(INBOXES)]
    rnd = random.Random(16)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    contacts = [uuid.uuid4() for _ in range(CONTACTS)]
    await db.pool.copy_records_to_table(
        "contacts",
        records=[
            (c, tenant, f"Customer {i} Yamada", "ACME", now - timedelta(minutes=i), now)
            for i, c in enumerate(contacts)
        ],
        columns=["id", "tenant_id", "name", "company", "updated_at", "created_at"],
    )
    await db.pool.copy_records_to_table(
        "contact_addresses",
        records=[(tenant, f"customer{i}@example.com", c) for i, c in enumerate(contacts)],
        columns=["tenant_id", "address", "contact_id"],
    )
    # most customers write to one inbox: an operator of one inbox sees about a fifth
    await db.pool.copy_records_to_table(
        "tickets",
        records=[
            (
                uuid.uuid4(),
                tenant,
                f"Question {n}",
                "open",
                inboxes[hash(contacts[n % CONTACTS]) % INBOXES if rnd.random() < 0.9 else n % 5],
                "Support",
                now - timedelta(minutes=n),
                now,
                now,
                contacts[n % CONTACTS],
                n + 1,
            )
            for n in range(TICKETS)
        ],
        columns=TICKET_COLUMNS,
    )
    # a small inbox: one contact in a hundred wrote to it as well
    rare = uuid.uuid4()
    await db.pool.copy_records_to_table(
        "tickets",
        records=[
            (uuid.uuid4(), tenant, "Rare", "open", rare, "Rare", now, now, now, c, TICKETS + 1 + i)
            for i, c in enumerate(contacts[::100])
        ],
        columns=TICKET_COLUMNS,
    )
    await db.pool.execute("ANALYZE")
    return str(tenant), [str(i) for i in (*inboxes, rare)]


async def _median_ms(call: Callable[[], Awaitable[Any]]) -> float:
    await call()
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pg = Postgres(free_port(), Path(tmp) / "pg", fast=True)
        await pg.start()
        db: Database | None = None
        try:
            db = Database(with_database(pg.url, "bench_contacts"))
            await db.open(
                runtime_migrations() + load_migrations("tickets", "services.tickets.migrations")
            )
            tenant, inboxes = await _seed(db)
            repo = ContactsRepo(db.pool)
            out = {
                "every contact": await _median_ms(lambda: repo.list(tenant, None, 50, None)),
                "one inbox": await _median_ms(
                    lambda: repo.list(tenant, None, 50, None, inboxes[:1])
                ),
                "every inbox by name": await _median_ms(
                    lambda: repo.list(tenant, None, 50, None, inboxes)
                ),
                "a small inbox (1 % of contacts)": await _median_ms(
                    lambda: repo.list(tenant, None, 50, None, inboxes[-1:])
                ),
                "search": await _median_ms(
                    lambda: repo.list(tenant, search("yamada 12"), 50, None)
                ),
                "masked search": await _median_ms(
                    lambda: repo.list(tenant, search("yamada 12", addresses=False), 50, None)
                ),
            }
            await db.pool.execute("DROP INDEX tickets_contact_inbox")
            out["one inbox, no index"] = await _median_ms(
                lambda: repo.list(tenant, None, 50, None, inboxes[:1])
            )
            out["a small inbox, no index"] = await _median_ms(
                lambda: repo.list(tenant, None, 50, None, inboxes[-1:])
            )
        finally:
            if db is not None:
                await db.close()
            pg.stop()
    print(json.dumps({"contacts": CONTACTS, "tickets": TICKETS, "median_ms": out}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
