"""ApprovalService, the administration side: policies (1–3 stages, conditions, skip
list) and operators' "always needs approval until" flags. The base of `api.ApprovalApi`,
with the dependencies both sides share."""

from __future__ import annotations

from dataclasses import dataclass, replace

from switchboard.v1 import approval_pb2

from services.runtime import identity, permissions
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.outbox import Outbox

from . import convert, policy
from .peers import Peers
from .records import Flag
from .repo import ApprovalRepo


@dataclass
class Deps:
    db: Database
    repo: ApprovalRepo
    outbox: Outbox
    peers: Peers
    clock: Clock
    ids: IdGenerator


class PoliciesApi:
    _d: Deps

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def _checked(
        self, ident: Identity, given: approval_pb2.ApprovalPolicy, pid: str
    ) -> policy.Policy:
        """The policy as given, validated against the tenant's operators, roles and
        inboxes (INVALID_ARGUMENT naming the field; nothing written before it passes)."""
        try:
            draft = convert.policy_from_pb(given, pid)
        except convert.UnknownKind as err:
            raise InvalidArgument("unknown kind", field=err.field) from None
        md = ident.metadata()
        if draft.inbox_id:
            parse_uuid(draft.inbox_id, "inbox_id")
            if draft.inbox_id not in await self._d.peers.inbox_ids(md):
                raise InvalidArgument("no such inbox in this tenant", field="inbox_id")
        ops = await self._d.peers.operator_ids(md)
        roles = await self._d.peers.role_names(md)
        return policy.validate(draft, ops, roles)

    async def ListPolicies(
        self, request: approval_pb2.ListPoliciesRequest, context: Context
    ) -> approval_pb2.ListPoliciesResponse:
        ident = identity.require_operator()
        stored = await self._d.repo.policies(self._d.repo.pool, ident.tenant_id)
        out = [convert.stored_pb(sp) for sp in stored]
        if not any(not sp.policy.inbox_id for sp in stored):
            out.insert(0, convert.policy_pb(policy.BUILTIN))
        return approval_pb2.ListPoliciesResponse(policies=out)

    async def GetPolicy(
        self, request: approval_pb2.GetPolicyRequest, context: Context
    ) -> approval_pb2.ApprovalPolicy:
        ident = identity.require_operator()
        pid = parse_uuid(request.policy_id, "policy_id")
        return convert.stored_pb(await self._d.repo.policy(self._d.repo.pool, ident.tenant_id, pid))

    async def CreatePolicy(
        self, request: approval_pb2.ApprovalPolicy, context: Context
    ) -> approval_pb2.ApprovalPolicy:
        ident = _policy_writer()
        checked = await self._checked(ident, request, self._d.ids.new_str())
        stored = await self._d.repo.insert_policy(
            self._d.repo.pool, ident.tenant_id, checked, ident.operator_id, self._d.clock.now()
        )
        return convert.stored_pb(stored)

    async def UpdatePolicy(
        self, request: approval_pb2.ApprovalPolicy, context: Context
    ) -> approval_pb2.ApprovalPolicy:
        ident = _policy_writer()
        pid = parse_uuid(request.id, "id")
        current = await self._d.repo.policy(self._d.repo.pool, ident.tenant_id, pid)
        checked = await self._checked(ident, request, str(pid))
        # the scope stays: a policy moves to another inbox by being made there anew
        checked = replace(checked, inbox_id=current.policy.inbox_id)
        stored = await self._d.repo.update_policy(
            self._d.repo.pool, ident.tenant_id, checked, ident.operator_id, self._d.clock.now()
        )
        return convert.stored_pb(stored)

    async def DeletePolicy(
        self, request: approval_pb2.DeletePolicyRequest, context: Context
    ) -> approval_pb2.DeletePolicyResponse:
        ident = _policy_writer()
        pid = parse_uuid(request.policy_id, "policy_id")
        await self._d.repo.delete_policy(self._d.repo.pool, ident.tenant_id, pid)
        return approval_pb2.DeletePolicyResponse()

    # -- operator flags ----------------------------------------------------------------

    async def SetOperatorFlag(
        self, request: approval_pb2.OperatorFlag, context: Context
    ) -> approval_pb2.OperatorFlag:
        ident = identity.require_operator()
        identity.require_permission(
            ident, permissions.MANAGE_OPERATORS, "flag operators as needing approval"
        )
        op = str(parse_uuid(request.operator_id, "operator_id"))
        if op not in await self._d.peers.operator_ids(ident.metadata()):
            raise NotFound("no such operator", field="operator_id")
        now = self._d.clock.now()
        until = request.until.ToDatetime(tzinfo=now.tzinfo) if request.HasField("until") else None
        flag = None
        if until is not None and until > now:
            flag = Flag(op, until, ident.operator_id, ident.display_name)
        await self._d.repo.set_flag(self._d.repo.pool, ident.tenant_id, flag, op, now)
        return _flag_pb(flag) if flag else approval_pb2.OperatorFlag(operator_id=op)

    async def ListOperatorFlags(
        self, request: approval_pb2.ListOperatorFlagsRequest, context: Context
    ) -> approval_pb2.ListOperatorFlagsResponse:
        ident = identity.require_operator()
        identity.require_permission(
            ident, permissions.MANAGE_OPERATORS, "see who is flagged as needing approval"
        )
        now = self._d.clock.now()
        flags = await self._d.repo.flags(self._d.repo.pool, ident.tenant_id)
        return approval_pb2.ListOperatorFlagsResponse(
            flags=[_flag_pb(f) for f in flags if f.until > now]
        )


def _policy_writer() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_RULES, "change approval policies")
    return ident


def _flag_pb(f: Flag) -> approval_pb2.OperatorFlag:
    out = approval_pb2.OperatorFlag(operator_id=f.operator_id)
    out.until.FromDatetime(f.until)
    out.set_by.id = f.set_by
    out.set_by.display_name = f.set_by_name
    return out
