"""AssignmentService (routing_assign.proto): presence, inbox strategies and operator
routing profiles. Every call is scoped by the caller's tenant; configuring needs
`manage_inboxes` (an inbox the caller sees) or `manage_operators`; an operator sets only
their own presence, and a real change of it is announced (presence.changed, presence.py).
What is refused changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from switchboard.v1 import routing_assign_pb2 as pb
from switchboard.v1 import routing_assign_pb2_grpc

from services.runtime import identity, permissions
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.outbox import Outbox

from . import assignment as a
from .assign_peers import Peers
from .assign_repo import AssignRepo, PresenceRow, StoredPolicy, StoredProfile
from .presence import presence_changed, presence_event

_PRESENCE = {
    pb.PRESENCE_STATUS_ONLINE: a.Presence.ONLINE,
    pb.PRESENCE_STATUS_AWAY: a.Presence.AWAY,
    pb.PRESENCE_STATUS_OFFLINE: a.Presence.OFFLINE,
}
_PRESENCE_PB = {v: k for k, v in _PRESENCE.items()}
_STRATEGY = {
    pb.ASSIGN_STRATEGY_UNSPECIFIED: a.Strategy.MANUAL,
    pb.ASSIGN_STRATEGY_MANUAL: a.Strategy.MANUAL,
    pb.ASSIGN_STRATEGY_ROUND_ROBIN: a.Strategy.ROUND_ROBIN,
    pb.ASSIGN_STRATEGY_LEAST_LOADED: a.Strategy.LEAST_LOADED,
}
_STRATEGY_PB = {
    a.Strategy.MANUAL: pb.ASSIGN_STRATEGY_MANUAL,
    a.Strategy.ROUND_ROBIN: pb.ASSIGN_STRATEGY_ROUND_ROBIN,
    a.Strategy.LEAST_LOADED: pb.ASSIGN_STRATEGY_LEAST_LOADED,
}


def _limit_of(msg: pb.InboxAssignment | pb.OperatorRouting, name: str) -> int | None:
    return int(getattr(msg, name).value) if msg.HasField(name) else None


def _limit_pb(value: int | None) -> pb.Limit | None:
    return None if value is None else pb.Limit(value=value)


def presence_pb(
    operator_id: str, row: PresenceRow | None, now: datetime, load: int, capacity: int | None
) -> pb.OperatorPresence:
    out = pb.OperatorPresence(operator_id=operator_id, load=load, capacity=_limit_pb(capacity))
    if row is None:
        out.status = out.effective = pb.PRESENCE_STATUS_OFFLINE
        return out
    out.status = _PRESENCE_PB[row.status]
    out.effective = _PRESENCE_PB[a.effective_presence(row.status, row.expires_at, now)]
    if row.expires_at is not None:
        out.expires_at.FromDatetime(row.expires_at)
    out.updated_at.FromDatetime(row.updated_at)
    return out


def policy_pb(inbox_id: str, stored: StoredPolicy | None) -> pb.InboxAssignment:
    p = stored.policy if stored else a.InboxPolicy(inbox_id)
    out = pb.InboxAssignment(
        inbox_id=inbox_id,
        strategy=_STRATEGY_PB[p.strategy],
        capacity=_limit_pb(p.capacity),
        channel_capacity=dict(p.channel_capacity),
        tiers=[
            pb.AssignTier(
                operator_ids=list(t.operator_ids), widen_after_minutes=t.widen_after_minutes
            )
            for t in p.tiers
        ],
        reassign_after_minutes=_limit_pb(p.reassign_after_minutes),
        max_new_per_hour=_limit_pb(p.max_new_per_hour),
    )
    if stored:
        out.updated_at.FromDatetime(stored.updated_at)
    return out


def profile_pb(operator_id: str, stored: StoredProfile | None) -> pb.OperatorRouting:
    p = stored.profile if stored else a.Profile(operator_id)
    out = pb.OperatorRouting(
        operator_id=operator_id,
        capacity=_limit_pb(p.capacity),
        channel_capacity=dict(p.channel_capacity),
        skills=[pb.OperatorSkill(name=s.name, level=s.level) for s in p.skills],
        languages=list(p.languages),
    )
    if stored:
        out.updated_at.FromDatetime(stored.updated_at)
    return out


def _total(loads: Mapping[tuple[str, str], int]) -> int:
    return sum(loads.values())


class AssignmentApi(routing_assign_pb2_grpc.AssignmentServiceServicer):
    def __init__(
        self,
        db: Database,
        repo: AssignRepo,
        peers: Peers,
        clock: Clock,
        wake: Callable[[], None],
        outbox: Outbox,
        ids: IdGenerator,
    ) -> None:
        self._db = db
        self._repo = repo
        self._peers = peers
        self._clock = clock
        self._wake = wake
        self._outbox = outbox  # presence.changed
        self._ids = ids

    # -- presence ------------------------------------------------------------------------

    async def SetPresence(
        self, request: pb.SetPresenceRequest, context: Context
    ) -> pb.OperatorPresence:
        ident = identity.require_operator()
        status = _PRESENCE.get(request.status)
        if status is None:
            raise InvalidArgument("status must be online, away or offline", field="status")
        now = self._clock.now()
        expires = now + a.ONLINE_FOR if status is a.Presence.ONLINE else None
        async with self._db.transaction() as conn:
            before = await self._repo.set_presence(
                conn, ident.tenant_id, ident.operator_id, status, expires, now
            )
            row = PresenceRow(ident.operator_id, status, expires, now)
            loads = await self._repo.loads(conn, ident.tenant_id)
            profile = await self._repo.profile(conn, ident.tenant_id, ident.operator_id)
            capacity = profile.profile.capacity if profile else None
            out = presence_pb(
                ident.operator_id, row, now, _total(loads.get(ident.operator_id, {})), capacity
            )
            out.changed = presence_changed(before, row, now)
            if out.changed:
                await self._outbox.add(conn, presence_event(ident, out, now, self._ids.new_str()))
        if out.changed:
            self._outbox.wake()
        if status is a.Presence.ONLINE:
            self._wake()  # the backlog may move to them
        return out

    async def GetMyPresence(
        self, request: pb.GetMyPresenceRequest, context: Context
    ) -> pb.OperatorPresence:
        ident = identity.require_operator()
        return (await self._presences(ident.tenant_id, [ident.operator_id]))[0]

    async def ListPresence(
        self, request: pb.ListPresenceRequest, context: Context
    ) -> pb.ListPresenceResponse:
        # an operator's call, or a service's naming an inbox (the gateway asks whether a
        # chat widget's inbox has an operator present, issue 21)
        ident = identity.require_tenant()
        if not ident.operator_id and not request.inbox_id:
            raise InvalidArgument("a service's call names an inbox", field="inbox_id")
        inbox = str(parse_uuid(request.inbox_id, "inbox_id")) if request.inbox_id else None
        # a service's call (every widget connecting) may use the members of a few seconds ago
        members = await self._peers.members(ident.tenant_id, fresh=bool(ident.operator_id))
        if inbox is not None:
            members = {o: m for o, m in members.items() if m.all_inboxes or inbox in m.inboxes}
        ids = sorted(members, key=lambda o: (members[o].display_name.casefold(), o))
        return pb.ListPresenceResponse(operators=await self._presences(ident.tenant_id, ids))

    async def _presences(self, tenant: str, ids: list[str]) -> list[pb.OperatorPresence]:
        now = self._clock.now()
        async with self._db.pool.acquire() as conn:
            rows = await self._repo.presence(conn, tenant)
            loads = await self._repo.loads(conn, tenant)
            profiles = await self._repo.profiles(conn, tenant)
        out = []
        for o in ids:
            stored = profiles.get(o)
            capacity = stored.profile.capacity if stored else None
            out.append(presence_pb(o, rows.get(o), now, _total(loads.get(o, {})), capacity))
        return out

    # -- inbox strategies ----------------------------------------------------------------

    async def _inbox(self, request_inbox: str) -> tuple[identity.Identity, str]:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_INBOXES, "configure assignment")
        inbox_id = str(parse_uuid(request_inbox, "inbox_id"))
        if not ident.sees_inbox(inbox_id) or inbox_id not in await self._peers.visible_inboxes(
            ident
        ):
            raise NotFound("no such inbox", field="inbox_id")
        return ident, inbox_id

    async def GetInboxAssignment(
        self, request: pb.GetInboxAssignmentRequest, context: Context
    ) -> pb.InboxAssignment:
        ident, inbox_id = await self._inbox(request.inbox_id)
        async with self._db.pool.acquire() as conn:
            stored = await self._repo.policy(conn, ident.tenant_id, inbox_id)
        return policy_pb(inbox_id, stored)

    async def SetInboxAssignment(
        self, request: pb.InboxAssignment, context: Context
    ) -> pb.InboxAssignment:
        ident, inbox_id = await self._inbox(request.inbox_id)
        strategy = _STRATEGY.get(request.strategy)
        if strategy is None:
            raise InvalidArgument(
                "strategy must be manual, round_robin or least_loaded", field="strategy"
            )
        members = await self._peers.members(ident.tenant_id, fresh=True)
        may_receive = frozenset(
            o for o, m in members.items() if m.all_inboxes or inbox_id in m.inboxes
        )
        policy = a.validated_policy(
            a.InboxPolicy(
                inbox_id=inbox_id,
                strategy=strategy,
                capacity=_limit_of(request, "capacity"),
                channel_capacity=dict(request.channel_capacity),
                tiers=tuple(
                    a.Tier(tuple(t.operator_ids), t.widen_after_minutes) for t in request.tiers
                ),
                reassign_after_minutes=_limit_of(request, "reassign_after_minutes"),
                max_new_per_hour=_limit_of(request, "max_new_per_hour"),
            ),
            may_receive,
        )
        async with self._db.transaction() as conn:
            stored = await self._repo.put_policy(conn, ident.tenant_id, policy, self._clock.now())
        self._wake()  # a strategy or a larger capacity may move the backlog
        return policy_pb(inbox_id, stored)

    # -- operator profiles ---------------------------------------------------------------

    async def _operator(self, request_operator: str) -> tuple[identity.Identity, str]:
        ident = identity.require_operator()
        identity.require_permission(
            ident, permissions.MANAGE_OPERATORS, "configure operators' routing"
        )
        operator_id = str(parse_uuid(request_operator, "operator_id"))
        if operator_id not in await self._peers.members(ident.tenant_id, fresh=True):
            raise NotFound("no such operator", field="operator_id")
        return ident, operator_id

    async def GetOperatorRouting(
        self, request: pb.GetOperatorRoutingRequest, context: Context
    ) -> pb.OperatorRouting:
        ident, operator_id = await self._operator(request.operator_id)
        async with self._db.pool.acquire() as conn:
            stored = await self._repo.profile(conn, ident.tenant_id, operator_id)
        return profile_pb(operator_id, stored)

    async def SetOperatorRouting(
        self, request: pb.OperatorRouting, context: Context
    ) -> pb.OperatorRouting:
        ident, operator_id = await self._operator(request.operator_id)
        profile = a.validated_profile(
            a.Profile(
                operator_id=operator_id,
                capacity=_limit_of(request, "capacity"),
                channel_capacity=dict(request.channel_capacity),
                skills=tuple(a.Skill(s.name, s.level) for s in request.skills),
                languages=tuple(request.languages),
            )
        )
        async with self._db.transaction() as conn:
            stored = await self._repo.put_profile(conn, ident.tenant_id, profile, self._clock.now())
        self._wake()
        return profile_pb(operator_id, stored)
