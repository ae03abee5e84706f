"""Administration (SEC-1…5): operators, roles, inboxes and members, the tenant's security
settings, the login history, who is logged in, login locks. Each method checks the
caller's permission itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from switchboard.v1 import accounts_pb2

from services.runtime import identity, log, paging, permissions
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import domain
from .deps import Deps, operator_pb
from .repo import InboxRecord, Tenant

_log = log.get("accounts.admin")


def _managing(
    perm: str = permissions.MANAGE_OPERATORS, doing: str = "manage operators"
) -> Identity:
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
        ident = _managing()
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
        ident = _managing()
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
            if values.get("active") is False:  # sessions and API tokens end with them
                await d.sessions.end_all_of(conn, ident.tenant_id, operator_id, tokens=True)
            domain.require_manageable(await d.repo.managers_left(conn, ident.tenant_id))
            op = await d.repo.operator(conn, ident.tenant_id, operator_id)
        assert op is not None
        return operator_pb(op)

    async def ResetPassword(
        self, request: accounts_pb2.ResetPasswordRequest, context: Context
    ) -> accounts_pb2.ResetPasswordResponse:
        """A new temporary password for an operator; their browser sessions end."""
        ident = _managing()
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
            await d.sessions.end_all_of(conn, ident.tenant_id, operator_id)
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
        ident = _managing()
        d = self._d
        name = domain.clean_role_name(request.name)
        perms = domain.check_permissions(request.permissions)
        description = request.description.strip()[:500]
        async with d.db.transaction() as conn:
            await d.repo.lock_tenant(conn, ident.tenant_id)
            await d.repo.put_role(conn, ident.tenant_id, name, description, perms, d.clock.now())
            domain.require_manageable(await d.repo.managers_left(conn, ident.tenant_id))
            roles = await d.repo.roles(conn, ident.tenant_id)
        return next(r for r in roles if r.name == name)

    async def DeleteRole(
        self, request: accounts_pb2.DeleteRoleRequest, context: Context
    ) -> accounts_pb2.DeleteRoleResponse:
        ident = _managing()
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
        ident = _managing(permissions.MANAGE_INBOXES, "manage inboxes")
        d = self._d
        name = domain.clean_name(request.name, "name", limit=100)
        addresses = domain.clean_addresses(list(request.addresses))
        members = _ids(request.member_ids, "member_ids")
        inbox_id = d.ids.new()
        async with d.db.transaction() as conn:
            await d.repo.insert_inbox(conn, ident.tenant_id, inbox_id, name)
            await d.repo.set_addresses(conn, ident.tenant_id, inbox_id, addresses)
            await d.repo.set_members(conn, ident.tenant_id, inbox_id, members)
            if request.plain_text_only:
                await d.repo.set_plain_text_only(conn, ident.tenant_id, inbox_id, True)
            [row] = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
        return inbox_pb(row, with_members=True)

    async def UpdateInbox(
        self, request: accounts_pb2.UpdateInboxRequest, context: Context
    ) -> accounts_pb2.Inbox:
        ident = _managing(permissions.MANAGE_INBOXES, "manage inboxes")
        d = self._d
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        async with d.db.transaction() as conn:
            found = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
            if not found:
                raise NotFound("no such inbox", field="inbox_id")
            if request.HasField("name"):
                name = domain.clean_name(request.name, "name", limit=100)
                await d.repo.rename_inbox(conn, ident.tenant_id, inbox_id, name)
            if request.set_addresses:
                addresses = domain.clean_addresses(list(request.addresses))
                await d.repo.set_addresses(conn, ident.tenant_id, inbox_id, addresses)
            if request.set_members:
                members = _ids(request.member_ids, "member_ids")
                await d.repo.set_members(conn, ident.tenant_id, inbox_id, members)
            if request.HasField("plain_text_only"):
                await d.repo.set_plain_text_only(
                    conn, ident.tenant_id, inbox_id, request.plain_text_only
                )
            [row] = await d.repo.inboxes(conn, ident.tenant_id, [str(inbox_id)])
        return inbox_pb(row, with_members=True)

    # -- the tenant's settings ---------------------------------------------------------

    async def GetTenantSettings(
        self, request: accounts_pb2.GetTenantSettingsRequest, context: Context
    ) -> accounts_pb2.TenantSettings:
        ident = _managing()
        return tenant_settings_pb(await self._d.repo.tenant(self._d.repo.pool, ident.tenant_id))

    async def UpdateTenantSettings(
        self, request: accounts_pb2.UpdateTenantSettingsRequest, context: Context
    ) -> accounts_pb2.TenantSettings:
        ident = _managing()
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
        return tenant_settings_pb(tenant)

    # -- logins ------------------------------------------------------------------------

    async def ListLoginHistory(
        self, request: accounts_pb2.ListLoginHistoryRequest, context: Context
    ) -> accounts_pb2.ListLoginHistoryResponse:
        """Administrators: anyone's logins; everyone else: their own."""
        ident = identity.require_operator()
        operator_id = (
            parse_uuid(request.operator_id, "operator_id") if request.operator_id else None
        )
        if not ident.may(permissions.MANAGE_OPERATORS):
            if operator_id is not None and str(operator_id) != ident.operator_id:
                identity.require_permission(
                    ident, permissions.MANAGE_OPERATORS, "read other operators' logins"
                )
            operator_id = uuid.UUID(ident.operator_id)
        elif operator_id is not None and (
            await self._d.repo.operator(self._d.repo.pool, ident.tenant_id, operator_id) is None
        ):
            raise NotFound("no such operator", field="operator_id")
        limit = paging.page_size(request.page.limit)
        after = paging.Cursor.decode(request.page.cursor) if request.page.cursor else None
        rows = await self._d.sessions.history(
            ident.tenant_id,
            operator_id=operator_id,
            failures_only=request.failures_only,
            after=after,
            limit=limit + 1,
        )
        records, next_cursor = paging.page(rows, limit, lambda r: paging.Cursor.of(r.at, r.id))
        return accounts_pb2.ListLoginHistoryResponse(records=records, next_cursor=next_cursor)

    async def ListActiveSessions(
        self, request: accounts_pb2.ListActiveSessionsRequest, context: Context
    ) -> accounts_pb2.ListActiveSessionsResponse:
        """Who is logged in now (used within the last minutes) and their last action."""
        ident = _managing()
        minutes = request.seen_within_minutes or 15
        if not 1 <= minutes <= 24 * 60:
            raise InvalidArgument(
                "seen_within_minutes must be 1 to 1440", field="seen_within_minutes"
            )
        now = self._d.clock.now()
        sessions = await self._d.sessions.active(
            ident.tenant_id, now - timedelta(minutes=minutes), now
        )
        return accounts_pb2.ListActiveSessionsResponse(sessions=sessions)

    async def RevokeSession(
        self, request: accounts_pb2.RevokeSessionRequest, context: Context
    ) -> accounts_pb2.RevokeSessionResponse:
        ident = _managing()
        session_id = parse_uuid(request.session_id, "session_id")
        await self._d.sessions.revoke(ident.tenant_id, session_id, operator_id=None, kind=None)
        return accounts_pb2.RevokeSessionResponse()

    async def ListLoginLocks(
        self, request: accounts_pb2.ListLoginLocksRequest, context: Context
    ) -> accounts_pb2.ListLoginLocksResponse:
        ident = _managing()
        rows = await self._d.sessions.locks(ident.tenant_id, self._d.clock.now())
        resp = accounts_pb2.ListLoginLocksResponse()
        for r in rows:
            lock = accounts_pb2.LoginLock(kind=r.kind, key=r.key, failures=r.failures)
            lock.locked_at.FromDatetime(r.locked_at)
            lock.until.FromDatetime(r.until)
            resp.locks.append(lock)
        return resp

    async def ClearLoginLock(
        self, request: accounts_pb2.ClearLoginLockRequest, context: Context
    ) -> accounts_pb2.ClearLoginLockResponse:
        ident = _managing()
        if request.kind not in ("login", "address"):
            raise InvalidArgument("kind must be login or address", field="kind")
        key = request.key.strip()
        if not key or len(key) > 254:
            raise InvalidArgument("key is required", field="key")
        if request.kind == "login":
            key = key.lower()
        await self._d.sessions.clear_lock(ident.tenant_id, request.kind, key, self._d.clock.now())
        _log.info("login lock cleared", kind=request.kind)
        return accounts_pb2.ClearLoginLockResponse()
