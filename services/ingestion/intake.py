"""The intake pipeline every channel uses: summarise, store raw with its event, publish
with the ack, and only then report the mail accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC

from services.runtime.clock import Clock
from services.runtime.outbox import Outbox

from . import mime
from .store import Accepted, Intake, RawStore

# Above this size the MIME parse runs in a worker thread, off the event loop.
PARSE_OFF_LOOP_BYTES = 256 * 1024


class IntakePipeline:
    def __init__(self, store: RawStore, outbox: Outbox, clock: Clock) -> None:
        self._store = store
        self._outbox = outbox
        self._clock = clock

    async def accept(self, intakes: Sequence[Intake]) -> list[Accepted]:
        """Accept one mail for one or more tenants (the intakes share the same bytes)."""
        if not intakes:
            return []
        raw = intakes[0].raw
        if len(raw) > PARSE_OFF_LOOP_BYTES:
            summary = await asyncio.to_thread(mime.summarize, raw)
        else:
            summary = mime.summarize(raw)
        now = self._clock.now()
        accepted = []
        for intake in intakes:
            received_at = now
            if intake.use_mail_date and summary.HasField("date"):
                received_at = summary.date.ToDatetime(tzinfo=UTC)
            accepted.append(await self._store.accept(intake, summary, received_at))
        await self._outbox.publish_now([a.event_id for a in accepted])
        self._outbox.wake()  # follow-up events (form.submitted) go out with the relay
        return accepted
