"""Drafts awaiting approval kept from approval's events (issue 17, consumer
`composition__approvals`): `approval.requested` holds the draft (`in_approval`) and a
request's end — sent back, cancelled, voided, or its final approval — opens it again
for its author (`holds`). Approval also asks composition directly
(`HoldForApproval` before committing a request, `ReleaseFromApproval` after a decision
or a cancellation); these events make good a call that failed or never came, in
whichever order they arrive. Idempotent: each event once (`processed_events`), and the
draft names the request it is held for (`holds.after_event`)."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import NotFound
from services.runtime.outbox import first_time

from . import holds
from .repo import ComposeRepo

APPROVALS_DURABLE = registry.COMPOSITION_APPROVALS.durable


class ApprovalHolds:
    def __init__(self, db: Database, repo: ComposeRepo, clock: Clock) -> None:
        self._db = db
        self._repo = repo
        self._clock = clock
        self._log = log.get("composition.approvals")

    async def on_approval(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        change = events.approval_change_of(env)
        request_id = uuid.UUID(change.request_id)
        async with self._db.transaction() as conn:
            if not await first_time(conn, APPROVALS_DURABLE, env):
                return
            try:
                draft = await self._repo.draft(
                    conn, env.tenant_id, uuid.UUID(change.draft_id), for_update=True
                )
            except NotFound:
                return  # not a draft of this tenant
            state = holds.after_event(
                env.type,
                final=change.final,
                state=draft.state,
                held=draft.approval_request_id,
                request_id=request_id,
            )
            if state is None:
                return
            await self._repo.set_hold(
                conn, env.tenant_id, draft.id, state, request_id, self._clock.now()
            )
        self._log.info(
            "draft held for approval" if state == holds.IN_APPROVAL else "draft released",
            draft_id=change.draft_id,
            request_id=change.request_id,
        )
