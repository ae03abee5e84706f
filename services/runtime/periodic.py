"""A background loop that runs a step every so often, or at once when woken, and stops
cleanly: what the outbox relay, the IMAP supervisor, the import runner and the sweeper
of unparsed mail all are."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from . import log


class PeriodicTask(ABC):
    """Subclasses implement `step()`; it returns True to be run again at once (more work
    is waiting), False to wait `every_s` or a `wake()`. An exception in a step is logged
    and the loop goes on."""

    def __init__(self, name: str, every_s: float) -> None:
        self.name = name
        self.every_s = every_s
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop_log = log.get(name)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @abstractmethod
    async def step(self) -> bool:
        """One pass of the work; True when more is waiting."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self._task

    async def stop(self) -> None:
        """Finish the step in hand, then return."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            again = False
            try:
                again = await self.step()
            except Exception:
                self._loop_log.exception("background step failed", task=self.name)
            if again or self._stop.is_set():
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.every_s)
            except TimeoutError:
                pass
            self._wake.clear()
