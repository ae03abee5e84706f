"""Group commit: many concurrent small writes of the same kind become one statement.

While a flush is at the database, the requests that arrive wait for the next, which takes
them all: a lone request goes at once, under load they go together. Up to `parallel`
flushes run at a time (each on its own pooled connection), so that a request waits for
at most a part of one flush. Each caller awaits its own answer (or the flush's error,
and then retries as it would have)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Req = TypeVar("Req")
Ans = TypeVar("Ans")


class GroupCommit(Generic[Req, Ans]):
    def __init__(
        self,
        flush: Callable[[Sequence[Req]], Awaitable[Sequence[Ans]]],
        *,
        max_batch: int = 100,
        parallel: int = 2,
    ) -> None:
        self._flush = flush
        self._max = max_batch
        self._parallel = parallel
        self._queue: list[tuple[Req, asyncio.Future[Ans]]] = []
        self._active = 0  # drains running; counted down the moment one finds no work
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: Req) -> Ans:
        future: asyncio.Future[Ans] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._active < self._parallel:
            self._active += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            await self._drain_queue()
        finally:
            self._active -= 1

    async def _drain_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                answers = await self._flush([r for r, _ in batch])
            except asyncio.CancelledError:
                for _, f in [*batch, *self._queue]:
                    if not f.done():
                        f.cancel()
                raise
            except Exception as err:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(err)
                continue
            for (_, f), answer in zip(batch, answers, strict=True):
                if not f.done():
                    f.set_result(answer)
