"""After an item's state settles, the steps that follow it, each idempotent and retried
until done (the row keeps `finished_at` empty meanwhile):

  sent      → the mail recorded as a message of its ticket (ingestion.RecordSent, with
              the ticket's id: filed there as it is), the draft marked sent, the ticket's
              status set as the operator chose, the reply lock released;
  failed    → the draft opened again for the operator to fix and resend; lock released;
  unknown   → the lock released (the draft waits for the operator's decision);
  retrying  → (first attempt failed for now) the lock released.

Calls for the operator carry the submitting operator's identity, taken at submission.
A peer's refusal (the ticket is gone, the lock already taken over) is noted on the item
and does not stop the other steps; a peer that is down postpones them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.errors import DomainError, Unavailable
from services.runtime.identity import Identity
from services.runtime.periodic import PeriodicTask

from .peers import Peers
from .records import Send
from .repo import OutboundRepo, operator_md


class Finisher(PeriodicTask):
    def __init__(
        self,
        repo: OutboundRepo,
        peers: Peers,
        clock: Clock,
        worker: str,
        every_s: float = 1.0,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__("finisher", every_s)
        self._busy = busy
        self._repo = repo
        self._peers = peers
        self._clock = clock
        self._worker = worker
        self._log = log.get("outbound.finisher")

    async def step(self) -> bool:
        if self._busy():  # due mail first; the bookkeeping after it
            self.wake()  # look again at the next turn (every_s is short)
            await asyncio.sleep(0.2)
            return False
        rows = await self._repo.claim_unfinished(
            self._worker, self._clock.now(), timedelta(seconds=60), 20
        )
        if rows:
            await asyncio.gather(*(self._finish(r) for r in rows))
        return len(rows) == 20

    async def _finish(self, row: Send) -> None:
        with log.bound(
            send_id=str(row.id),
            tenant_id=str(row.tenant_id),
            ticket_id=str(row.ticket_id or ""),
        ):
            await self._steps(row)

    async def _steps(self, row: Send) -> None:
        state = row.state
        tenant = str(row.tenant_id)
        system = Identity(tenant_id=tenant).metadata()
        md = operator_md(row) or system
        ticket_id = str(row.ticket_id or "")
        draft_id = str(row.draft_id or "")
        problems: list[str] = []

        async def step(what: str, call: Any) -> None:
            try:
                await call
            except Unavailable:
                raise
            except DomainError as err:
                problems.append(f"{what}: {err.message}")

        try:
            if state == "sent":
                await step(
                    "record in the ticket",
                    self._peers.record_sent(
                        system,
                        str(row.inbox_id),
                        bytes(row.raw),
                        row.envelope_from,
                        list(row.recipients),
                        ticket_id,
                        row.sent_at,
                    ),
                )
                if draft_id:
                    await step(
                        "mark the draft sent",
                        self._peers.set_draft_state(md, draft_id, "sent", str(row.id)),
                    )
                if ticket_id and row.status_after and row.operator_id:
                    await step(
                        "set the ticket's status",
                        self._peers.set_status(
                            md, ticket_id, row.status_after, without_survey=row.without_survey
                        ),
                    )
            elif state == "failed" and draft_id:
                await step(
                    "open the draft again",
                    self._peers.set_draft_state(md, draft_id, "open", str(row.id)),
                )
            released = False
            if row.lock_held and ticket_id and row.fence:
                await step(
                    "release the reply lock",
                    self._peers.release_lock(md, ticket_id, row.fence, row.created_at),
                )
                released = True
        except Unavailable as err:
            self._log.warning("finishing postponed", error=err.message)
            await self._repo.postpone_finish(
                row, self._worker, self._clock.now() + timedelta(seconds=5)
            )
            return
        await self._repo.finished(
            row, self._worker, self._clock.now(), "; ".join(problems), released
        )
        self._log.info(
            "finished",
            state=state,
            problems=problems or None,
        )
