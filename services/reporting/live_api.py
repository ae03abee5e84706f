"""LiveReportsService (RPT-5, RPT-7): the live figures from reporting's live rows, with
the inboxes' names and thresholds and the assignees' names asked of accounts and tickets
(live_peers.py). An operator's call needs `see_reports` and counts the inboxes they may
see; a call without an operator (the gateway's pushes) counts every inbox."""

from __future__ import annotations

from switchboard.v1 import common_pb2
from switchboard.v1 import reporting_live_pb2 as pb

from services.runtime import identity, permissions
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from .live_model import late_levels, name_of
from .live_peers import LivePeers
from .live_repo import LiveRepo


def _viewer() -> Identity:
    ident = identity.require_tenant()
    if ident.operator_id:
        identity.require_permission(ident, permissions.SEE_REPORTS, "see reports")
    return ident


class LiveApi:
    def __init__(self, db: Database, repo: LiveRepo, peers: LivePeers, clock: Clock) -> None:
        self._db = db
        self._repo = repo
        self._peers = peers
        self._clock = clock

    async def _counted(self, ident: Identity, inbox_id: str) -> dict[str, str]:
        """The inboxes counted, id → name, by name: the one asked for or all the caller
        sees. An inbox that does not exist or is hidden: NOT_FOUND (the same answer)."""
        every = await self._peers.inboxes(ident.tenant_id)
        seen = {i: n for i, n in every.items() if ident.sees_inbox(i)}
        if inbox_id:
            wanted = str(parse_uuid(inbox_id, "inbox_id"))
            if wanted not in seen:
                raise NotFound("no such inbox", field="inbox_id")
            seen = {wanted: seen[wanted]}
        return dict(sorted(seen.items(), key=lambda kv: (kv[1].casefold(), kv[0])))

    async def GetLiveQueue(self, request: pb.LiveQueueRequest, context: Context) -> pb.LiveQueue:
        ident = _viewer()
        counted = await self._counted(ident, request.inbox_id)
        ids = list(counted)
        now = self._clock.now()
        thresholds = await self._peers.thresholds(ident.tenant_id, ids)
        figures = {
            f.inbox_id: f for f in await self._repo.queue(self._db.pool, ident.tenant_id, ids, now)
        }
        waits = await self._repo.waits(self._db.pool, ident.tenant_id, ids, now)
        out = pb.LiveQueue()
        out.at.FromDatetime(now)
        for inbox_id, name in counted.items():
            q = out.inboxes.add(inbox_id=inbox_id, name=name)
            f = figures.get(inbox_id)
            if f is not None:
                q.waiting, q.near_breach, q.breached = f.waiting, f.near_breach, f.breached
                if f.oldest_waiting_since is not None and f.waiting:
                    q.oldest_waiting_since.FromDatetime(f.oldest_waiting_since)
            for late in late_levels(thresholds.get(inbox_id, []), waits.get(inbox_id, [])):
                q.late.add(
                    level=late.level,
                    after_minutes=late.after_minutes,
                    color=late.color,
                    count=late.count,
                )
        return out

    async def GetLiveAssignment(
        self, request: pb.LiveAssignmentRequest, context: Context
    ) -> pb.LiveAssignment:
        ident = _viewer()
        counted = await self._counted(ident, request.inbox_id)
        now = self._clock.now()
        loads = await self._repo.loads(self._db.pool, ident.tenant_id, list(counted))
        names = await self._peers.operator_names(ident.tenant_id) if loads else {}
        out = pb.LiveAssignment(
            inboxes=[common_pb2.InboxRef(id=i, name=n) for i, n in counted.items()]
        )
        out.at.FromDatetime(now)
        for load in loads:
            out.rows.add(
                inbox_id=load.inbox_id,
                operator_id=load.operator_id,
                display_name=name_of(load.operator_id, names) if load.operator_id else "",
                open=load.open,
                pending=load.pending,
            )
        return out
