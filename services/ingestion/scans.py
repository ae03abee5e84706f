"""Scanning later what intake filed "not_scanned" (ING-5): the virus scanner did not answer
when the mail came, and a mail is never held back for it.

`Rescanner` (on every replica, when a scanner is configured) claims due messages
(`FOR UPDATE SKIP LOCKED`, each claim pushing the message's next try back: `retry_s`
doubling per attempt, at most an hour), reads their attachments from `blobs`, scans them,
and records the verdict with a `message.scanned` event in one transaction (only while the
message is still "not_scanned": a replica that raced it changes nothing). Tickets moves the
ticket an infected mail opened to the trash. While the scanner is down (its breaker open,
virus.py) nothing is claimed: the rescanner only pings it, and goes on when it answers.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from .virus import NOT_SCANNED, Scannable, Verdict, VirusScanner

RESCAN_TIMEOUT_S = 120.0  # for one mail's attachments; nobody waits on a rescan
MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class Due:
    """A message claimed for a rescan."""

    message_id: uuid.UUID
    tenant_id: uuid.UUID
    inbox: common_pb2.InboxRef
    event_id: str  # its message.received: the cause of message.scanned
    attachments: list[dict[str, Any]]
    summary: bytes


class ScanRepo:
    def __init__(self, db: Database, outbox: Outbox, ids: IdGenerator) -> None:
        self._db = db
        self._outbox = outbox
        self._ids = ids

    async def claim_due(self, now: datetime, limit: int, retry_s: float) -> list[Due]:
        rows = await self._db.pool.fetch(
            "UPDATE raw_messages m SET scan_attempts = m.scan_attempts + 1, "
            "scan_next_at = $1 + make_interval(secs => least($2 * power(2, "
            "least(m.scan_attempts, 20)), $3)) WHERE m.id IN (SELECT id FROM raw_messages "
            f"WHERE scan_state = '{NOT_SCANNED}' AND scan_next_at <= $1 ORDER BY scan_next_at "
            "LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING m.id, m.tenant_id, m.inbox_id, "
            "m.inbox_name, m.event_id, m.parsed -> 'attachments' AS attachments, m.summary",
            now,
            retry_s,
            MAX_BACKOFF_S,
            limit,
        )
        return [
            Due(
                message_id=r["id"],
                tenant_id=r["tenant_id"],
                inbox=common_pb2.InboxRef(id=str(r["inbox_id"]), name=r["inbox_name"]),
                event_id=str(r["event_id"]),
                attachments=_json_list(r["attachments"]),
                summary=bytes(r["summary"] or b""),
            )
            for r in rows
        ]

    async def scannables(self, due: Due) -> list[Scannable]:
        """The message's attachments with their bytes, as intake would have scanned them."""
        wanted = [
            a for a in due.attachments if a.get("decoded", True) and a.get("sha256") and a["size"]
        ]
        rows = await self._db.pool.fetch(
            "SELECT sha256, coalesce(data, data_plain) AS data FROM blobs "
            "WHERE sha256 = ANY($1::bytea[])",
            [bytes.fromhex(a["sha256"]) for a in wanted],
        )
        data = {bytes(r["sha256"]).hex(): bytes(r["data"]) for r in rows}
        return [
            Scannable(int(a["index"]), str(a.get("filename") or ""), data[a["sha256"]])
            for a in wanted
            if a["sha256"] in data
        ]

    async def record(self, due: Due, verdict: Verdict, now: datetime) -> bool:
        """The verdict and its message.scanned event; False when another replica was first."""
        summary = events_pb2.MailSummary.FromString(due.summary)
        if verdict.state:
            summary.virus.CopyFrom(verdict.to_pb())
        async with self._db.transaction() as conn:
            done = await conn.fetchval(
                "UPDATE raw_messages SET scan_state = $3, scan_findings = $4, "
                "scan_error = '', scanned_at = $5, scan_next_at = NULL, summary = $6 "
                f"WHERE tenant_id = $1 AND id = $2 AND scan_state = '{NOT_SCANNED}' RETURNING 1",
                due.tenant_id,
                due.message_id,
                verdict.state,
                [f.to_json() for f in verdict.findings],
                verdict.scanned_at,
                summary.SerializeToString(),
            )
            if not done or not verdict.state:
                return False
            payload = events_pb2.MessageScanned(
                message_id=str(due.message_id), inbox=due.inbox, virus=verdict.to_pb()
            )
            await self._outbox.add(
                conn,
                events.envelope(
                    events.MESSAGE_SCANNED,
                    event_id=self._ids.new_str(),
                    tenant_id=str(due.tenant_id),
                    occurred_at=now,
                    payload=payload,
                    actor=events.system_actor("ingestion"),
                    correlation_id=due.event_id,
                    causation_id=due.event_id,
                ),
            )
        return True

    async def failed(self, due: Due, error: str) -> None:
        await self._db.pool.execute(
            "UPDATE raw_messages SET scan_error = $3 WHERE tenant_id = $1 AND id = $2",
            due.tenant_id,
            due.message_id,
            error[:500],
        )


def _json_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return [a for a in value or [] if isinstance(a, dict)]


class Rescanner(PeriodicTask):
    def __init__(
        self,
        repo: ScanRepo,
        scanner: VirusScanner,
        outbox: Outbox,
        clock: Clock,
        *,
        every_s: float,
        batch: int = 20,
    ) -> None:
        super().__init__("virus-rescanner", every_s)
        self._repo = repo
        self._scanner = scanner
        self._outbox = outbox
        self._clock = clock
        self._batch = batch
        self._log = log.get("virus")

    async def step(self) -> bool:
        scanner = self._scanner
        if scanner.down and not (scanner.due_for_probe() and await scanner.probe()):
            return False
        due = await self._repo.claim_due(self._clock.now(), self._batch, scanner.retry_s)
        recorded = 0
        for item in due:
            verdict = await scanner.scan(
                await self._repo.scannables(item), timeout_s=RESCAN_TIMEOUT_S
            )
            if verdict.state == NOT_SCANNED:
                await self._repo.failed(item, verdict.error)
                if scanner.down:
                    break  # the others claimed with it wait for their next try
                continue
            if await self._repo.record(item, verdict, self._clock.now()):
                recorded += 1
                self._log.info(
                    "scanned later",
                    message_id=str(item.message_id),
                    tenant_id=str(item.tenant_id),
                    verdict=verdict.state,
                    signatures=",".join(f.signature for f in verdict.findings),
                )
        if recorded:
            self._outbox.wake()
        return len(due) == self._batch and not scanner.down
