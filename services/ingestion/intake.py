"""The intake pipeline every channel uses (SMTP, IMAP, import, forms):

  keep the bytes (state `stored`) → parse off the event loop → record the parse and queue
  message.received (state `parsed`) → publish it and wait for JetStream's ack

and only then report the mail accepted. A duplicate (same Message-ID for the inbox, or
same bytes) resolves to the message already known — completed now if its first intake
died half-way — and its event is published again (a no-op when it already went out).

`UnparsedSweeper` finishes messages whose process died between the two steps.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from .parser import Limits, ParsedMail, parse
from .store import Accepted, Intake, RawStore, Stored, dedupe_key

HEADER_PEEK_BYTES = 256 * 1024
MAX_PARSE_ATTEMPTS = 3


def quick_headers(raw: bytes) -> tuple[str, datetime | None]:
    """Message-ID and Date from the header block only (for dedupe before parsing)."""
    try:
        msg = BytesHeaderParser(policy=compat32).parsebytes(raw[:HEADER_PEEK_BYTES])
        mid = " ".join(str(msg.get("Message-ID") or "").split()).strip().strip("<>")
        date = None
        value = msg.get("Date")
        if value:
            try:
                date = parsedate_to_datetime(str(value))
                date = date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)
            except (TypeError, ValueError, IndexError, OverflowError):
                date = None
        return mid[:998], date
    except Exception:  # a header block the email package cannot read: no id, no date
        return "", None


class IntakePipeline:
    def __init__(
        self, store: RawStore, outbox: Outbox, clock: Clock, limits: Limits | None = None
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self._limits = limits or Limits()

    async def parse(self, raw: bytes) -> ParsedMail:
        return await asyncio.to_thread(parse, raw, self._limits)

    async def accept(self, intakes: Sequence[Intake]) -> list[Accepted]:
        """Accept one mail for one or more tenants (the intakes share the same bytes)."""
        if not intakes:
            return []
        raw = intakes[0].raw
        sha = hashlib.sha256(raw).digest()
        mid, mail_date = quick_headers(raw)
        now = self._clock.now()
        # Parse in a worker thread while the bytes are being written (it is only used once
        # they are kept; for a duplicate the work is wasted, which is rare).
        parsing = asyncio.ensure_future(self.parse(raw))
        accepted: list[Accepted] = []
        already: list[str] = []
        try:
            for intake in intakes:
                received_at = mail_date if (intake.use_mail_date and mail_date) else now
                key = dedupe_key(intake.inbox.id, mid, sha.hex())
                stored = await self._store.store_raw(intake, key, sha, received_at)
                if stored.state == "stored":
                    await self._store.complete(
                        stored,
                        await parsing,
                        now=self._clock.now(),
                        followups=intake.followups,
                        publish=True,
                    )
                else:
                    already.append(stored.event_id)
                accepted.append(Accepted(stored.message_id, stored.event_id, stored.duplicate))
        finally:
            if not parsing.done():
                parsing.cancel()
        if already:  # known before: make sure its event went out (a no-op when it did)
            await self._outbox.publish_now(already)
        self._outbox.wake()  # follow-up events (form.submitted) go out with the relay
        return accepted


class UnparsedSweeper(PeriodicTask):
    """Every `every_s`, completes messages left in state `stored` for longer than
    `grace_s` (their intake died between keeping the bytes and recording the parse). A
    message whose parsing was tried MAX_PARSE_ATTEMPTS times without finishing (it kills
    the process) becomes a message with no parse and that problem shown."""

    def __init__(
        self,
        store: RawStore,
        pipeline: IntakePipeline,
        outbox: Outbox,
        clock: Clock,
        *,
        grace_s: float = 30.0,
        every_s: float = 15.0,
    ) -> None:
        super().__init__("unparsed-sweeper", every_s)
        self._store = store
        self._pipeline = pipeline
        self._outbox = outbox
        self._clock = clock
        self._grace = grace_s
        self._log = log.get("sweeper")

    async def step(self) -> bool:
        await self.sweep_once()
        return False

    async def sweep_once(self) -> int:
        done = 0
        for stored, raw, attempts in await self._store.claim_unparsed(self._grace):
            await self._finish(stored, raw, attempts)
            done += 1
        if done:
            self._outbox.wake()
        return done

    async def _finish(self, stored: Stored, raw: bytes, attempts: int) -> None:
        problem = None
        if attempts > MAX_PARSE_ATTEMPTS:
            parsed = parse(b"")  # an empty document: only the problem is shown
            problem = f"could not be parsed ({attempts - 1} attempts did not finish)"
        else:
            parsed = await self._pipeline.parse(raw)
        await self._store.complete(stored, parsed, now=self._clock.now(), extra_problem=problem)
        self._log.info(
            "finished an unparsed message", message_id=stored.message_id, attempts=attempts
        )
