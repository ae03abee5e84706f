"""Administration (SEC-1…5): operators, roles, inboxes and members, the tenant's security
settings (the login history, sessions and locks are in api_logins.py). Each method checks
the caller's permission itself; every change of who may see what is announced
(announce.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from switchboard.v1 import accounts_pb2

from services.runtime import identity, log, permissions
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import announce, domain
from .deps import Deps, end_sessions, operator_pb
from .repo import InboxRecord, Tenant
from .sessions import ALL_TOKENS, TOKENS_ENDING_WITH_PASSWORD

_log = log.get("accounts.admin")


def managing(perm: str = permissions.MANAGE_OPERATORS, doing: str = "manage operators") -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, perm, doing)
    return ident


def _ids(values: Sequence[str], field: str) -> list[uuid.UUID]:
    if len(values) > 1000:
        raise InvalidArgument(f"{field} has more than 1000 entries", field=field)
    return list(dict.fromkeys(parse_uuid(v, field) for v in values))


def inbox_pb(inbox: InboxRecord, *, with_members: bool) -> accounts_pb2.Inbox:
    return accounts_pb2.Inbox(
        id=inbox.id,
        name=inbox.name,
        addresses=list(inbox.addresses),
        member_ids=list(inbox.member_ids) if with_members else [],
        plain_text_only=inbox.plain_text_only,
    )


def tenant_settings_pb(tenant: Tenant) -> accounts_pb2.TenantSettings:
    return accounts_pb2.TenantSettings(
        name=tenant.name,
        time_zone=tenant.time_zone,
        password_min_length=tenant.policy.min_length,
        password_min_classes=tenant.policy.min_classes,
        password_max_age_days=tenant.policy.max_age_days,
        ip_allowlist=list(tenant.ip_allowlist),
    )


class AdminApi:
    _d: Deps

    # -- operators ---------------------------------------------------------------------

    async def GetOperator(
        self, request: accounts_pb2.GetOperatorRequest, context: Context
    ) -> accounts_pb2.Operator:
        ident = identity.require_operator()
        operator_id = parse_uuid(request.operator_id, "operator_id")
        if str(operator_id) != ident.operator_id:
            identity.require_permission(ident, permissions.MANAGE_OPERATORS, "read other operators")
        op = await self._d.repo.operator(self._d.repo.pool, ident.tenant_id, operator_id)
        if op is None:
            raise NotFound("no such operator", field="operator_id")
        return operator_pb(op)

    async def _field_values(
        self, ident: Identity, f: accounts_pb2.OperatorFields, conn: asyncpg.Connection
    ) -> dict[str, Any]:
        """The columns an OperatorFields message sets, checked."""
        values: dict[str, Any] = {}
        if f.HasField("display_name"):
            values["display_name"] = domain.clean_name(f.display_name, "display_name")
        if f.set_addresses:
            values["addresses"] = domain.clean_addresses(list(f.addresses))
        if f.HasField("language"):
            values["language"] = domain.check_language(f.language)
        if f.HasField("time_zone"):
            values["time_zone"] = domain.check_time_zone(f.time_zone)
        if f.set_skills:
            values["skills"] = domain.clean_list(list(f.skills), "skills", item_limit=50)
        if f.HasField("capacity"):
            if not 0 <= f.capacity <= 10_000:
                raise InvalidArgument("capacity must be 0 (no limit) to 10000", field="capacity")
            values["capacity"] = f.capacity
        if f.set_roles:
            roles = [domain.clean_role_name(r) for r in f.roles]
            known = await self._d.repo.role_names(conn, ident.tenant_id)
            missing = [r for r in roles if r not in known]
            if missing:
                raise NotFound(f"no such role {missing[0]!r}", field="roles")
            values["roles"] = list(dict.fromkeys(roles))
        if f.HasField("active"):
            values["active"] = f.active
        if f.set_ip_allowlist:
            values["ip_allowlist"] = domain.clean_allowlist(list(f.ip_allowlist))
        return values

    async def CreateOperator(
        self, request: accounts_pb2.CreateOperatorRequest, context: Context
    ) -> accounts_pb2.CreateOperatorResponse:
        """A new operator with a temporary password, which they must change at their first
        login (SEC-3); a generated one is returned once."""
        ident = managing()
        d = self._d
        login = domain.clean_login(request.login)
        f = request.fields
        if not f.HasField("display_name"):
            raise InvalidArgument("display_name is required", field="display_name")
        tenant = await d.repo.tenant(d.repo.pool, ident.tenant_id)
        policy = tenant.policy
        temporary = request.temporary_password or domain.generate_password(policy)
        if request.temporary_password:
            domain.check_new_password(
                temporary, policy, login=login, field_name="temporary_password"
            )
        pw_hash = await asyncio.to_thread(domain.hash_password, temporary)
        operator_id = d.ids.new()
        now = d.clock.now()
        async with d.db.transaction() as conn:
            values = await self._field_values(ident, f, conn)
            values.setdefault("roles", ["agent"])
            await d.repo.insert_operator(
                conn,
                id=operator_id,
                tenant_id=ident.tenant_id,
                login=login,
                display_name=values.pop("display_name"),
                password_hash=pw_hash,
                now=now,
            )
            await d.repo.update_operator(conn, ident.tenant_id, operator_id, values)
            if f.set_inboxes:
                await d.repo.set_memberships(
                    conn, ident.tenant_id, operator_id, _ids(f.inbox_ids, "inbox_ids")
                )
            op = await d.repo.operator(conn, ident.tenant_id, operator_id)
        assert op is not None
        _log.info("operator created", created_operator_id=str(operator_id))
        return accounts_pb2.CreateOperatorResponse(
            operator=operator_pb(op),
            temporary_password="" if request.temporary_password else temporary,
        )

    async def UpdateOperator(
        self, request: accounts_pb2.UpdateOperatorRequest, context: Context
    ) -> accounts_pb2.Operator:
        ident = managing()
        d = self._d
        operator_id = parse_uuid(request.operator_id, "operator_id")
        async with d.db.transaction() as conn:
            await d.repo.lock_tenant(conn, ident.tenant_id)
            if await d.repo.operator(conn, ident.tenant_id, operator_id) is None:
                raise NotFound("no such operator", field="operator_id")
            values = await self._field_values(ident, request.fields, conn)
            if values:
                values["updated_at"] = d.clock.now()
            await d.repo.update_operator(conn, ident.tenant_id, operator_id, values)
            if request.fields.set_inboxes:
                await d.repo.set_memberships(
                    conn, ident.tenant_id, operator_id, _ids(request.fields.inbox_ids, "inbox_ids")
                )
            actor = identity.operator_actor(ident)
            if values.get("active") is False:  # sessions and API tokens end with them
                await end_sessions(
                    d,
                    conn,
                    ident.tenant_id,
                    operator_id,
                    tokens=ALL_TOKENS,
                    reason=announce.DEACTIVATED,
                    actor=actor,
                )
            domain.require_manageable(await d.repo.managers_left(conn, ident.tenant_id))
            if values or request.fields.set_inboxes:
                await d.announce.access_changed(
                    conn,
                    tenant_id=ident.tenant_id,
                    operator_ids=[str(operator_id)],
                    reason=announce.OPERATOR_CHANGED,
                    actor=actor,
                )
            op = await d.repo.operator(conn, ident.tenant_id, operator_id)
        d.announce.wake()
        assert op is not None
        return operator_pb(op)

    async def ResetPassword(
        self, request: accounts_pb2.ResetPasswordRequest, context: Context
    ) -> accounts_pb2.ResetPasswordResponse:
        """A new temporary password for an operator; their browser sessions end, and their
        API tokens but those made to survive a password change."""
        ident = managing()
        d = self._d
        operator_id = parse_uuid(request.operator_id, "operator_id")
        op = await d.repo.operator(d.repo.pool, ident.tenant_id, operator_id)
        if op is None:
            raise NotFound("no such operator", field="operator_id")
        policy = (await d.repo.tenant(d.repo.pool, ident.tenant_id)).policy
        temporary = request.temporary_password or domain.generate_password(policy)
        if request.temporary_password:
            domain.check_new_password(
                temporary, policy, login=op.login, field_name="temporary_password"
            )
        pw_hash = await asyncio.to_thread(domain.hash_password, temporary)
        now = d.clock.now()
        async with d.db.transaction() as conn:
            await d.repo.update_operator(
                conn,
                ident.tenant_id,
                operator_id,
                {
                    "password_hash": pw_hash,
                    "must_change_password": True,
                    "password_changed_at": now,
                    "updated_at": now,
                },
            )
            actor = identity.operator_actor(ident)
            await end_sessions(
                d,
                conn,
                ident.tenant_id,
                operator_id,
                tokens=TOKENS_ENDING_WITH_PASSWORD,
                reason=announce.PASSWORD_RESET,
                actor=actor,
            )
            await d.announce.access_changed(  # the tokens left must change the password first
                conn,
                tenant_id=ident.tenant_id,
                operator_ids=[str(operator_id)],
                reason=announce.PASSWORD_RESET,
                actor=actor,
            )
        d.announce.wake()
        return accounts_pb2.ResetPasswordResponse(
            temporary_password="" if request.temporary_password else temporary
        )

    # -- roles -------------------------------------------------------------------------

    async def ListPermissions(
        self, request: accounts_pb2.ListPermissionsRequest, context: Context
    ) -> accounts_pb2.ListPermissionsResponse:
        identity.require_operator()
        return accounts_pb2.ListPermissionsResponse(
            permissions=[
                accounts_pb2.PermissionInfo(name=p.name, description=p.description)
                for p in permissions.CATALOGUE
            ]
        )

    async def ListRoles(
        self, request: accounts_pb2.ListRolesRequest, context: Context
    ) -> accounts_pb2.ListRolesResponse:
        ident = identity.require_operator()
        roles = await self._d.repo.roles(self._d.repo.pool, ident.tenant_id)
        return accounts_pb2.ListRolesResponse(roles=roles)

    async def PutRole(
        self, request: accounts_pb2.PutRoleRequest, context: Context
    ) -> accounts_pb2.Role:
        """Create a role, or replace an existing one's permissions (built-in ones too)."""
        ident = managing()
        d = self._d
        name = domain.clean_role_name(request.name)
        perms = domain.check_permissions(request.permissions)
        description = request.description.strip()[:500]
        async with d.db.transaction() as conn:
            await d.repo.lock_tenant(conn, ident.tenant_id)
            await d.repo.put_role(conn, ident.tenant_id, name, description, perms, d.clock.now())
            domain.require_manageable(await d.repo.managers_left(conn, ident.tenant_id))
            await d.announce.access_changed(
                conn,
                tenant_id=ident.tenant_id,
                operator_ids=await d.repo.operators_with_role(conn, ident.tenant_id, name),
                reason=announce.ROLE_CHANGED,
                actor=identity.operator_actor(ident),
            )
            roles = await d.repo.roles(conn, ident.tenant_id)
        d.announce.wake()
        return next(r for r in roles if r.name == name)

    async def DeleteRole(
        self, request: accounts_pb2.DeleteRoleRequest, context: Context
    ) -> accounts_pb2.DeleteRoleResponse:
        ident = managing()
        d = self._d
        name = domain.clean_role_name(request.name)
        async with d.db.transaction() as conn:
            await d.repo.lock_tenant(conn, ident.tenant_id)
            await d.repo.delete_role(conn, ident.tenant_id, name)
        return accounts_pb2.DeleteRoleResponse()

    # -- inboxes -----------------------------------------------------------------------

    async def CreateInbox(
        self, request: accounts_pb2.CreateInboxRequest, context: Context
    ) -> accounts_pb2.Inbox:
        ident = managing(permissions.MANAGE_INBOXES, "manage inboxes")
        d = self._d
        name = domain.clean_inbox_name(request.name)
        addresses = domain.clean_addresses(list(request.addresses))
        members = _ids(request.member_ids, "member_ids")
        inbox_id = d.ids.new()
        async with d.db.transaction() as conn:
            await d.repo.insert_inbox(conn, ident.tenant_id, inbox_id, name)
            await d.repo.set_addresses(conn, ident.tenant_id, inbox_id, addresses)
            joined = await d.repo.set_members(conn, ident.tenant_id, inbox_id, members)
            # its addresses are the tenant's own (never masked) for everyone
            await d.announce.access_changed(
                conn,
                tenant_id=ident.tenant_id,
                operator_ids=joined,
                whole_tenant=bool(addresses),
                reason=announce.INBOX_CHANGED,
                actor=identity.operator_actor(ident),
            )
            if request.plain_text_only:
                await d.repo.set_plain_text_only(conn, ident.tenant_id, inbox_id, True)
            [row] = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
        d.announce.wake()
        return inbox_pb(row, with_members=True)

    async def UpdateInbox(
        self, request: accounts_pb2.UpdateInboxRequest, context: Context
    ) -> accounts_pb2.Inbox:
        ident = managing(permissions.MANAGE_INBOXES, "manage inboxes")
        d = self._d
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        async with d.db.transaction() as conn:
            found = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
            if not found:
                raise NotFound("no such inbox", field="inbox_id")
            if request.HasField("name"):
                name = domain.clean_inbox_name(request.name)
                await d.repo.rename_inbox(conn, ident.tenant_id, inbox_id, name)
            if request.set_addresses:
                addresses = domain.clean_addresses(list(request.addresses))
                await d.repo.set_addresses(conn, ident.tenant_id, inbox_id, addresses)
            changed: list[str] = []
            if request.set_members:
                members = _ids(request.member_ids, "member_ids")
                changed = await d.repo.set_members(conn, ident.tenant_id, inbox_id, members)
            await d.announce.access_changed(
                conn,
                tenant_id=ident.tenant_id,
                operator_ids=changed,
                whole_tenant=request.set_addresses,
                reason=announce.INBOX_CHANGED,
                actor=identity.operator_actor(ident),
            )
            if request.HasField("plain_text_only"):
                await d.repo.set_plain_text_only(
                    conn, ident.tenant_id, inbox_id, request.plain_text_only
                )
            [row] = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
        d.announce.wake()
        return inbox_pb(row, with_members=True)

    # -- the tenant's settings ---------------------------------------------------------

    async def GetTenantSettings(
        self, request: accounts_pb2.GetTenantSettingsRequest, context: Context
    ) -> accounts_pb2.TenantSettings:
        # an operator needs manage_operators; a service's call (no operator: reporting
        # learns the tenant's zone for its day rollups) may read them
        ident = identity.require_tenant()
        if ident.operator_id:
            managing()
        return tenant_settings_pb(await self._d.repo.tenant(self._d.repo.pool, ident.tenant_id))

    async def UpdateTenantSettings(
        self, request: accounts_pb2.UpdateTenantSettingsRequest, context: Context
    ) -> accounts_pb2.TenantSettings:
        ident = managing()
        d = self._d
        async with d.db.transaction() as conn:
            tenant = await d.repo.tenant(conn, ident.tenant_id)
            values: dict[str, Any] = {}
            if request.HasField("name"):
                values["name"] = domain.clean_name(request.name, "name")
            if request.HasField("time_zone"):
                values["time_zone"] = domain.check_time_zone(request.time_zone, allow_empty=False)
            policy = domain.PasswordPolicy(
                request.password_min_length
                if request.HasField("password_min_length")
                else tenant.policy.min_length,
                request.password_min_classes
                if request.HasField("password_min_classes")
                else tenant.policy.min_classes,
                request.password_max_age_days
                if request.HasField("password_max_age_days")
                else tenant.policy.max_age_days,
            )
            domain.check_policy(policy)
            values["password_min_length"] = policy.min_length
            values["password_min_classes"] = policy.min_classes
            values["password_max_age_days"] = policy.max_age_days
            if request.set_ip_allowlist:
                values["ip_allowlist"] = domain.clean_allowlist(list(request.ip_allowlist))
            tenant = await d.repo.update_tenant(conn, ident.tenant_id, values)
            await d.announce.access_changed(
                conn,
                tenant_id=ident.tenant_id,
                whole_tenant=True,
                reason=announce.TENANT_SETTINGS,
                actor=identity.operator_actor(ident),
            )
        d.announce.wake()
        return tenant_settings_pb(tenant)
