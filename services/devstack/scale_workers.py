"""The scale data set's batches written by worker processes (`make seed-scale`): the main
process generates the batches in order (services/devstack/scale.py keeps state from one
ticket to the next: the contacts already seen) and hands each to a pool of processes, one
per core, which parse its mails with ingestion's parser, make every service's rows and
write them through the services' bulk paths on connections of their own — so both cores
parse, make grams and encode COPY rows at once, and PostgreSQL writes meanwhile.

What comes out is what one process writes: the mails and facts of a batch are written
in any order (their rows are keyed by their ids), while tickets' rows go in batch order —
a worker waits for the previous batch's tickets before writing its own — so the tickets'
numbers follow received order and a ticket's contact, written with the batch that first
saw it, is always there first. Reporting's facts are written without folding them: the
caller folds the whole load at its end (services/reporting/rollups.py `fold_in_sql`);
its live rows (scale_live.py) are written with them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ingestion import bulk as ingestion_bulk
from services.reporting.facts import NewFact
from services.reporting.facts_bulk import write_facts
from services.reporting.live_bulk import LiveMessage, LiveRow, write_live
from services.runtime.db import Database, with_database
from services.tickets import bulk as tickets_bulk

from . import scale_facts, scale_live
from .scale import Batch, Generator

SERVICES = ("ingestion", "tickets", "reporting")
_TURN_POLL_S = 1.0


@dataclass(frozen=True)
class Rows:
    """One batch as each service's bulk path writes it."""

    ingestion: ingestion_bulk.Prepared
    tickets: tickets_bulk.Prepared
    facts: list[NewFact]
    live: tuple[list[LiveRow], list[LiveMessage]]


def prepare(gen: Generator, batch: Batch, facts: bool) -> Rows:
    """Parse the batch's mails (ingestion's parser) and make every row: CPU only."""
    mails = ingestion_bulk.prepare(gen.tenant.id, [m.mail for m in batch.mails])
    messages = [
        tickets_bulk.BulkMessage(m.mail.id, m.ticket_id, m.mail.channel, m.mail.received_at, s)
        for m, s in zip(batch.mails, mails.summaries, strict=True)
    ]
    tickets = tickets_bulk.prepare(
        gen.tenant.id, batch.contacts, batch.tickets, messages, batch.audit_ids
    )
    return Rows(
        mails,
        tickets,
        scale_facts.batch_facts(gen, batch) if facts else [],
        scale_live.batch_live(gen, batch),
    )


@dataclass(frozen=True)
class Counts:
    tickets: int
    messages: int
    contacts: int
    facts: int


@dataclass(frozen=True)
class _Shared:
    """Shared by the pool's processes: whose turn it is to write tickets (a batch index),
    and whether a batch failed (the others then stop waiting for their turn)."""

    turn: Any  # multiprocessing.Value("q")
    failed: Any  # multiprocessing.Value("b")
    changed: multiprocessing.synchronize.Condition


@dataclass
class _Worker:
    gen: Generator
    shared: _Shared
    loop: asyncio.AbstractEventLoop
    dbs: dict[str, Database]


_worker: _Worker | None = None


def _start(url: str, generator: tuple[int, int, datetime, int], shared: _Shared) -> None:
    """A pool process's initializer: its generator (for the tenant's ids and the facts'
    approvers: the same as the main process's) and its connections."""
    global _worker
    loop = asyncio.new_event_loop()
    dbs = {s: Database(with_database(url, f"sb_{s}"), min_size=1, max_size=1) for s in SERVICES}
    for db in dbs.values():
        loop.run_until_complete(db.open([], create=False))
    _worker = _Worker(Generator(*generator), shared, loop, dbs)


def _fail(shared: _Shared) -> None:
    with shared.changed:
        shared.failed.value = True
        shared.changed.notify_all()


def _write_batch(index: int, batch: Batch, facts: bool) -> Counts:
    """Prepare and write batch `index` (in a pool process)."""
    w = _worker
    if w is None:
        raise RuntimeError("not a seed-scale worker")
    try:
        rows = prepare(w.gen, batch, facts)
        written = w.loop.run_until_complete(_write_unordered(w, rows))
        with w.shared.changed:
            while w.shared.turn.value != index:
                if w.shared.failed.value:
                    raise RuntimeError("an earlier batch failed")
                w.shared.changed.wait(_TURN_POLL_S)
        w.loop.run_until_complete(_write_tickets(w, rows))
        with w.shared.changed:
            w.shared.turn.value = index + 1
            w.shared.changed.notify_all()
    except BaseException:
        _fail(w.shared)
        raise
    t = rows.tickets
    return Counts(len(t.tickets), len(t.messages), len(t.contacts), written)


async def _write_unordered(w: _Worker, rows: Rows) -> int:
    async with w.dbs["ingestion"].transaction() as conn:
        await ingestion_bulk.write(conn, rows.ingestion)
    async with w.dbs["reporting"].transaction() as conn:
        await write_live(conn, *rows.live)
        return await write_facts(conn, rows.facts, fold=False)


async def _write_tickets(w: _Worker, rows: Rows) -> None:
    async with w.dbs["tickets"].pool.acquire() as conn:
        await tickets_bulk.write(conn, rows.tickets)


def write_batches(
    url: str,
    gen: Generator,
    *,
    facts: bool,
    workers: int,
    done: Callable[[Counts], None],
) -> None:
    """Write every batch of `gen` through `workers` processes (the server's databases at
    `url`, migrated); `done` is told of each batch written, in order."""
    ctx = multiprocessing.get_context("spawn")
    shared = _Shared(ctx.Value("q", 0), ctx.Value("b", False), ctx.Condition())
    args = (gen.total, gen.seed, gen.end, gen.batch)
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_start, initargs=(url, args, shared)
    ) as pool:
        pending: deque[Future[Counts]] = deque()
        try:
            for index, batch in enumerate(gen.batches()):
                pending.append(pool.submit(_write_batch, index, batch, facts))
                while len(pending) > 2 * workers:  # a few batches ahead, not all of them
                    done(pending.popleft().result())
            while pending:
                done(pending.popleft().result())
        except BaseException:
            _fail(shared)
            for f in pending:
                f.cancel()
            raise
