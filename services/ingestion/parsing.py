"""Where mails are parsed: off the event loop, in worker processes when there are some.

The parser is pure Python (nh3 aside), so in a thread it holds the interpreter lock and
shares one core with the event loop; worker processes let parsing use the other cores
while the event loop keeps the database and the bus busy. A worker that dies (a mail that
kills the parser) breaks only that pool: it is replaced, and the mails being parsed fail
as they would have if the thread had died with the process — their bytes are stored
already, and the sweeper finishes them (services/ingestion/intake.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TypeVar

from services.runtime import log

from .parser import Limits, ParsedMail, parse

# Smaller mails are parsed in a thread: handing them to a worker costs about what their
# parse does.
IN_THREAD_BELOW_BYTES = 16 * 1024
T = TypeVar("T")


def _die_with(parent: int) -> None:
    """In a worker: exit when the service process is gone (killed, it cannot stop us)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _parse(raw: bytes, limits: Limits, full: bool = False) -> ParsedMail:
    return parse(raw, limits, defer_html=not full)


def _parse_all(raws: list[bytes], limits: Limits) -> list[ParsedMail]:
    return [parse(raw, limits, defer_html=True) for raw in raws]


class MailParser:
    """`parse` off the event loop."""

    def __init__(self, limits: Limits | None = None, *, workers: int = 0) -> None:
        self._limits = limits or Limits()
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._log = log.get("parser")

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers,
                # not fork: the process has threads (gRPC, the thread pool) and sockets
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def start(self) -> None:
        """Start the workers now rather than on the first mail (each imports the parser)."""
        if self._workers:
            loop, pool = asyncio.get_running_loop(), self._executor()
            empty = partial(_parse, b"", self._limits)
            await asyncio.gather(*(loop.run_in_executor(pool, empty) for _ in range(self._workers)))

    async def parse(self, raw: bytes, *, full: bool = False) -> ParsedMail:
        """For intake (`defer_html`: HTML that can wait is not sanitised), or `full`."""
        job = partial(_parse, raw, self._limits, full)
        if not self._workers or len(raw) < IN_THREAD_BELOW_BYTES:
            return await asyncio.to_thread(job)
        return await self._in_worker(job)

    async def parse_many(self, raws: Sequence[bytes]) -> list[ParsedMail]:
        """`parse` for several mails: handed to the workers in one share each (of about the
        same size), rather than one by one."""
        if not self._workers or not raws:
            return list(await asyncio.gather(*(self.parse(raw) for raw in raws)))
        shares: list[list[int]] = [[] for _ in range(min(self._workers, len(raws)))]
        sizes = [0] * len(shares)
        for n in sorted(range(len(raws)), key=lambda n: -len(raws[n])):
            least = sizes.index(min(sizes))
            shares[least].append(n)
            sizes[least] += len(raws[n])
        done = await asyncio.gather(
            *(
                self._in_worker(partial(_parse_all, [raws[n] for n in share], self._limits))
                for share in shares
            )
        )
        out: list[ParsedMail | None] = [None] * len(raws)
        for share, parsed in zip(shares, done, strict=True):
            for n, p in zip(share, parsed, strict=True):
                out[n] = p
        return [p for p in out if p is not None]

    async def _in_worker(self, job: Callable[[], T]) -> T:
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, job)
        except BrokenProcessPool:
            if self._pool is pool:  # the first to see it replaces it
                self._log.error("a parser process died; starting new ones")
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
