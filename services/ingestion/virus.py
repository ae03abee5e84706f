"""Virus marks (ING-5): a mail's attachments scanned by clamd, after its raw bytes are kept.

`VirusScanner.scan` gives a `Verdict`: "clean", "infected" (which signature in which
attachment), or "not_scanned" when clamd did not answer — the mail is filed all the same
and the `Rescanner` (scans.py) scans it later. Nothing to scan (no scanner configured, no
attachment, our own sent mail) is the empty verdict, which shows nothing.

A scanner that does not answer opens a breaker: for a while (`retry_s`, doubling to
`MAX_DOWN_S` while it stays down) intake does not wait for it at all and files mail
"not_scanned" at once; the rescanner pings it and closes the breaker when it answers.
So a down or hung clamd costs at most one wait of `timeout_s` per breaker period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchboard.v1 import events_pb2

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.events import INFECTED

from .clamd import Clamd, ScanError, ScannerDown
from .parser import ParsedMail

CLEAN = "clean"
NOT_SCANNED = "not_scanned"
MAX_DOWN_S = 300.0


@dataclass(frozen=True)
class Finding:
    index: int  # the attachment's index in the parsed mail
    filename: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "filename": self.filename, "signature": self.signature}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(int(d["index"]), str(d["filename"]), str(d["signature"]))


@dataclass(frozen=True)
class Verdict:
    state: str = ""  # "", "clean", "infected" or "not_scanned"
    findings: tuple[Finding, ...] = ()
    error: str = ""  # why not scanned
    scanned_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Verdict:
        """From a raw_messages row's scan_* columns."""
        return cls(
            state=row["scan_state"],
            findings=tuple(Finding.from_json(f) for f in row["scan_findings"] or []),
            error=row["scan_error"],
            scanned_at=row["scanned_at"],
        )

    @property
    def infected(self) -> bool:
        return self.state == INFECTED

    def refusal(self, what: str) -> str:
        """Why `what` of an infected mail may not be downloaded."""
        found = "; ".join(
            f"{f.signature} in {f.filename or f'attachment {f.index}'}" for f in self.findings
        )
        return f"the mail carries a virus ({found}): {what} cannot be downloaded"

    def to_pb(self) -> events_pb2.VirusScan:
        out = events_pb2.VirusScan(
            state=self.state,
            findings=[
                events_pb2.VirusFinding(
                    attachment_index=f.index, filename=f.filename, signature=f.signature
                )
                for f in self.findings
            ],
        )
        if self.scanned_at is not None:
            out.scanned_at.FromDatetime(self.scanned_at)
        return out

    def to_json(self) -> dict[str, Any] | None:
        """What GetMessage shows (None: nothing was scanned)."""
        if not self.state:
            return None
        return {
            "state": self.state,
            "findings": [f.to_json() for f in self.findings],
            "scanned_at": self.scanned_at.isoformat().replace("+00:00", "Z")
            if self.scanned_at
            else None,
            "error": self.error or None,
        }


NOTHING = Verdict()


@dataclass(frozen=True)
class Scannable:
    index: int
    filename: str
    data: bytes


def scannables(parsed: ParsedMail) -> list[Scannable]:
    """The attachments with bytes (one a parse limit stopped decoding has none, and cannot
    be downloaded either)."""
    return [
        Scannable(a.index, a.filename, a.data) for a in parsed.attachments if a.decoded and a.data
    ]


class VirusScanner:
    def __init__(self, clamd: Clamd, clock: Clock, *, timeout_s: float, retry_s: float) -> None:
        self.clamd = clamd
        self._clock = clock
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._down_until = 0.0  # monotonic; 0: not known to be down
        self._down_for = 0.0
        self._down_error = ""
        self._log = log.get("virus")

    @property
    def down(self) -> bool:
        return self._down_until > 0

    def due_for_probe(self) -> bool:
        return self.down and time.monotonic() >= self._down_until

    def _mark_down(self, error: str) -> None:
        self._down_for = min(max(self._down_for * 2, self.retry_s), MAX_DOWN_S)
        self._down_until = time.monotonic() + self._down_for
        if error != self._down_error:
            self._log.warning("virus scanner not answering", error=error, retry_in_s=self._down_for)
        self._down_error = error

    def _mark_up(self) -> None:
        if self.down:
            self._log.info("virus scanner answering again", address=str(self.clamd.address))
        self._down_until = self._down_for = 0.0
        self._down_error = ""

    async def probe(self) -> bool:
        """Ping clamd (the rescanner, when the breaker's time is up): True when it answers."""
        try:
            await self.clamd.ping(min(self.timeout_s, 5.0))
        except ScanError as exc:
            self._mark_down(str(exc))
            return False
        self._mark_up()
        return True

    async def scan(self, items: Sequence[Scannable], *, timeout_s: float | None = None) -> Verdict:
        """Scan each attachment in turn within `timeout_s` in all (the setting by default).
        Not waited for at all while the breaker is open."""
        if not items:
            return NOTHING
        if self.down:
            return Verdict(NOT_SCANNED, error=self._down_error)
        budget = self.timeout_s if timeout_s is None else timeout_s
        found: list[Finding] = []
        try:
            async with asyncio.timeout(budget):
                for item in items:
                    signature = await self.clamd.instream(item.data, budget)
                    if signature:
                        found.append(Finding(item.index, item.filename, signature))
        except TimeoutError:
            self._mark_down(f"clamd at {self.clamd.address} did not answer within {budget:g}s")
            return Verdict(NOT_SCANNED, error=self._down_error)
        except ScannerDown as exc:
            self._mark_down(str(exc))
            return Verdict(NOT_SCANNED, error=str(exc))
        except ScanError as exc:  # an answer, about this mail: the scanner itself is fine
            return Verdict(NOT_SCANNED, error=str(exc))
        return Verdict(INFECTED if found else CLEAN, tuple(found), scanned_at=self._clock.now())
