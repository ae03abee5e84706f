"""Stage deadlines remind (issue 17, APR-2): a sweep finds pending requests whose current
stage is past its `deadline_minutes` and announces `approval.reminded` once per (request,
stage), naming the stage's approvers and the next stage's. The reminder is recorded
(`reminders`) in the transaction of its event, so a restart, a second replica or a
sweep racing a decision never reminds twice; a request decided meanwhile is not
reminded. Time is the service's clock."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from switchboard.v1 import events_pb2

from services.runtime import events, log
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask

from . import convert
from .policy import Approver, Stage
from .records import Decision, Request
from .repo import ApprovalRepo
from .stages import State, is_late

BATCH = 100
_ACTOR = events.system_actor("approval")


def _refs(approvers: Sequence[Approver]) -> list[events_pb2.ApproverRef]:
    return [events_pb2.ApproverRef(kind=a.kind.value, id=a.id) for a in approvers]


def reminded_pb(
    r: Request, decisions: Sequence[Decision] = (), now: datetime | None = None
) -> events_pb2.ApprovalChanged:
    """`approval.reminded` of the request's current stage: whom to remind (the request
    carries its decisions, so who already decided this stage is not reminded)."""
    stage: Stage = r.stages[r.stage]
    out = convert.changed_pb(r, decisions=decisions, now=now)
    out.approvers.extend(_refs(stage.approvers))
    if r.stage + 1 < len(r.stages):
        out.next_approvers.extend(_refs(r.stages[r.stage + 1].approvers))
    out.deadline_minutes = stage.deadline_minutes
    out.stage_started_at.FromDatetime(r.stage_started_at)
    return out


class Reminders(PeriodicTask):
    def __init__(
        self,
        db: Database,
        repo: ApprovalRepo,
        outbox: Outbox,
        clock: Clock,
        ids: IdGenerator,
        every_s: float = 30.0,
    ) -> None:
        super().__init__("approval-reminders", every_s)
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._log = log.get("approval.reminders")

    async def step(self) -> bool:
        due = await self._repo.overdue(self._repo.pool, self._clock.now(), BATCH)
        for tenant, r in due:
            with log.bound(tenant_id=tenant, request_id=r.id):
                await self._remind(tenant, r)
        return len(due) == BATCH

    async def _remind(self, tenant: str, seen: Request) -> None:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            r = await self._repo.request(conn, tenant, uuid.UUID(seen.id), lock=True)
            if r is None or r.state is not State.PENDING or r.stage != seen.stage:
                return  # decided or moved on since the sweep looked
            if not is_late(r.stages[r.stage], r.stage_started_at, now):
                return
            if not await self._repo.note_reminder(conn, tenant, r.id, r.stage, now):
                return
            past = (await self._repo.decisions_by_request(conn, tenant, [r.id]))[r.id]
            env = events.envelope(
                events.APPROVAL_REMINDED,
                event_id=self._ids.new_str(),
                tenant_id=tenant,
                occurred_at=now,
                payload=reminded_pb(r, past, now),
                actor=_ACTOR,
            )
            await self._outbox.add(conn, env)
        self._outbox.wake()
        self._log.info("stage deadline passed: reminded", stage=r.stage)
