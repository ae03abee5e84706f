"""The intake pipeline every channel uses (SMTP, IMAP, import, forms):

  keep the bytes (state `stored`) → parse off the event loop → scan the attachments for
  viruses (when a scanner is configured; virus.py) → record the parse and the verdict and
  queue message.received (state `parsed`) → publish it and wait for JetStream's ack

and only then report the mail accepted. A duplicate (same Message-ID for the inbox, or
same bytes) resolves to the message already known — completed now if its first intake
died half-way — and its event is published again (a no-op when it already went out).
An import takes a window of mails through the same steps together (`prepare`, `finish`):
one transaction keeps their bytes, one records their parses with their events, which are
published with their acks awaited together.

Intake's parse records everything a mail's summary and problems need, not the display
forms of its bodies: HTML whose sanitising changes nothing else recorded is not sanitised,
and the parsed document is kept without its text and HTML. The first showing
(`GetMessage`) parses the mail again in full and keeps the whole document.

`UnparsedSweeper` finishes messages whose process died between the two steps.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from .parser import Limits, ParsedMail, parse
from .parsing import MailParser
from .store import Accepted, Also, Completion, Intake, RawStore, Stored, dedupe_key
from .virus import NOTHING, Verdict, VirusScanner, scannables

HEADER_PEEK_BYTES = 256 * 1024
MAX_PARSE_ATTEMPTS = 3


def _header_block(raw: bytes) -> bytes:
    """The bytes up to the first empty line (within HEADER_PEEK_BYTES): all the email
    package's header parser reads of them. Without an empty line there, all of those."""
    peek = raw[:HEADER_PEEK_BYTES]
    ends = [i for i in (peek.find(b"\n\n"), peek.find(b"\n\r\n")) if i >= 0]
    return peek[: min(ends) + 1] if ends else peek


def quick_headers(raw: bytes) -> tuple[str, datetime | None]:
    """Message-ID and Date from the header block only (for dedupe before parsing)."""
    try:
        msg = BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw))
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


@dataclass
class Batch:
    """A batch of mails between `IntakePipeline.prepare` and `finish`."""

    intakes: list[Intake]
    stored: list[Stored]
    parsed: dict[int, ParsedMail]  # by position: the mails stored now, to be completed
    verdicts: dict[int, Verdict]  # their virus scans, by the same positions


class IntakePipeline:
    def __init__(
        self,
        store: RawStore,
        outbox: Outbox,
        clock: Clock,
        limits: Limits | None = None,
        parser: MailParser | None = None,
        scanner: VirusScanner | None = None,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self._parser = parser or MailParser(limits)
        self._scanner = scanner

    async def parse(self, raw: bytes, *, full: bool = False) -> ParsedMail:
        """Parse off the event loop; for intake unless `full` (see MailParser.parse)."""
        return await self._parser.parse(raw, full=full)

    async def scan(self, parsed: ParsedMail, channel: str) -> Verdict:
        """The virus verdict on a parsed mail's attachments; nothing to scan without a
        scanner, and for mail we sent ourselves."""
        if self._scanner is None or channel == "sent":
            return NOTHING
        return await self._scanner.scan(scannables(parsed))

    def _key(self, intake: Intake) -> tuple[str, bytes, datetime]:
        """(dedupe key, SHA-256, received at) of an intake."""
        sha = hashlib.sha256(intake.raw).digest()
        mid, mail_date = quick_headers(intake.raw)
        received_at = intake.received_at or (
            mail_date if (intake.use_mail_date and mail_date) else self._clock.now()
        )
        return dedupe_key(intake.inbox.id, mid, sha.hex()), sha, received_at

    async def accept(self, intakes: Sequence[Intake]) -> list[Accepted]:
        """Accept one mail for one or more tenants (the intakes share the same bytes)."""
        if not intakes:
            return []
        raw = intakes[0].raw
        now = self._clock.now()
        # Parse in a worker while the bytes are being written (it is only used once they
        # are kept; for a duplicate the work is wasted, which is rare).
        parsing = asyncio.ensure_future(self.parse(raw))
        accepted: list[Accepted] = []
        already: list[str] = []
        verdict: Verdict | None = None  # one scan for every copy (the same bytes)
        try:
            for intake in intakes:
                key, sha, received_at = self._key(intake)
                stored = await self._store.store_raw(intake, key, sha, received_at)
                if stored.state == "stored" and verdict is None:
                    verdict = await self.scan(await parsing, intake.channel)
                if stored.state != "stored" or not await self._store.complete(
                    stored,
                    await parsing,
                    now=now,
                    followups=intake.followups,
                    publish=True,
                    verdict=verdict or NOTHING,
                ):
                    already.append(stored.event_id)
                accepted.append(Accepted(stored.message_id, stored.event_id, stored.duplicate))
        finally:
            if not parsing.done():
                parsing.cancel()
        if already:  # known before: make sure its event went out (a no-op when it did)
            await self._outbox.publish_now(already)
        self._outbox.wake()  # follow-up events (form.submitted) go out with the relay
        return accepted

    async def prepare(self, intakes: Sequence[Intake]) -> Batch:
        """The first half of accepting a batch of different mails (an import's window):
        their bytes kept, in one transaction; the events of mails known already published
        (a no-op when they went out); the new ones parsed. `finish` completes them."""
        keys = [self._key(i) for i in intakes]
        stored = await self._store.store_raw_many(
            [(i, key, sha, at) for i, (key, sha, at) in zip(intakes, keys, strict=True)]
        )
        fresh: list[int] = []  # to complete: each message once, at its first mail
        known: set[str] = set()  # completed before: their events must be out
        seen: set[str] = set()
        for n, s in enumerate(stored):
            if s.state != "stored":
                known.add(s.event_id)
            elif s.message_id not in seen:
                fresh.append(n)
            seen.add(s.message_id)
        if known:
            await self._outbox.publish_now(sorted(known))
        parses = await self._parser.parse_many([intakes[n].raw for n in fresh])
        verdicts = {
            n: await self.scan(p, intakes[n].channel) for n, p in zip(fresh, parses, strict=True)
        }
        return Batch(list(intakes), stored, dict(zip(fresh, parses, strict=True)), verdicts)

    async def finish(self, batch: Batch, also: Also | None = None) -> list[Accepted]:
        """Record the parses of a prepared batch and publish their message.received events
        (acknowledged together) in one transaction, with `also(conn)` (an import's
        progress) in it too."""
        completions = [
            Completion(
                batch.stored[n],
                parsed,
                followups=batch.intakes[n].followups,
                verdict=batch.verdicts.get(n, NOTHING),
            )
            for n, parsed in batch.parsed.items()
        ]
        done = await self._store.complete_many(
            completions, now=self._clock.now(), publish=True, also=also
        )
        # Completed meanwhile by someone else (the sweeper): its event may not be out yet.
        late = [c.stored.event_id for c, ok in zip(completions, done, strict=True) if not ok]
        if late:
            await self._outbox.publish_now(late)
        self._outbox.wake()
        return [Accepted(s.message_id, s.event_id, s.duplicate) for s in batch.stored]


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
        verdict = NOTHING
        if attempts > MAX_PARSE_ATTEMPTS:
            parsed = parse(b"")  # an empty document: only the problem is shown
            problem = f"could not be parsed ({attempts - 1} attempts did not finish)"
        else:
            parsed = await self._pipeline.parse(raw)
            verdict = await self._pipeline.scan(parsed, stored.channel)
        await self._store.complete(
            stored, parsed, now=self._clock.now(), extra_problem=problem, verdict=verdict
        )
        self._log.info(
            "finished an unparsed message", message_id=stored.message_id, attempts=attempts
        )
