"""Accounts routes of issue 5 (SEC-1…6): logging in and out, the caller's own account
(me, password, API tokens), administration (operators, roles, inboxes, the tenant's
security settings, logins, who is logged in, login locks). The operation log is in
routes_operations.py, notices and the board in routes_notices.py. Permissions are
checked by the access middleware from openapi.yaml's `x-sb-permission`, and again by
accounts itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from aiohttp import web
from switchboard.v1 import accounts_pb2, outbound_pb2

from . import views, views_accounts
from .access import CLIENT
from .auth import SESSION_COOKIE, Caller, bearer_token
from .errors import ApiError, from_grpc
from .request import (
    caller,
    deps,
    json_body,
    metadata,
    optional_body,
    page,
    query_bool,
    query_int,
)
from .responses import json_response, no_content, page_response

LIST_FIELDS = ("addresses", "skills", "roles", "ip_allowlist", "inbox_ids")


async def _purge_tenant(request: web.Request) -> None:
    """Cached sessions of the caller's tenant are asked of accounts again (an
    administrator changed who may do what)."""
    await deps(request).sessions.forget_tenant(caller(request).tenant_id)


# -- logging in --------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.Response:
    """Log in (SEC-1, SEC-9). `client` says how the session is carried: `api` (the
    default) — the token in the body, for `Authorization: Bearer`, and no cookie;
    `browser` — an HttpOnly, SameSite=Strict cookie and the CSRF token its state-changing
    requests send in X-CSRF-Token, and never the token itself, which no script of the
    page may read."""
    body = await json_body(request)
    d = deps(request)
    browser = body.get("client", "api") == "browser"
    try:
        resp = await d.accounts.Authenticate(
            accounts_pb2.AuthenticateRequest(
                login=body["login"],
                password=body["password"],
                client_address=request[CLIENT],
                user_agent=request.headers.get("User-Agent", "")[:500],
            ),
            timeout=30,
        )
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise ApiError(401, "unauthenticated", "wrong login or password") from None
        if err.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise ApiError(403, "address_not_allowed", err.details() or "") from None
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            api = from_grpc(err)
            raise ApiError(
                429, "login_locked", api.message, retry_after_s=api.retry_after_s
            ) from None
        raise
    who = Caller.from_principal(resp.principal)
    answer: dict[str, Any] = {
        "expires_at": views.iso(resp.expires_at),
        "operator": who.to_json(),
        "password_change_required": who.password_change_required or None,
    }
    if browser:
        answer["csrf_token"] = resp.csrf_token
    else:
        answer["token"] = resp.token
    response = json_response(answer, status=201, customer_data=False)
    if browser:
        response.set_cookie(
            SESSION_COOKIE,
            resp.token,
            max_age=max(60, int(resp.expires_at.seconds - time.time())),
            path="/",
            secure=d.settings.cookie_secure,
            httponly=True,
            samesite="Strict",
        )
    return response


# -- the caller's own account ------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    return json_response(caller(request).to_json(), customer_data=False)


async def change_password(request: web.Request) -> web.Response:
    body = await json_body(request)
    d = deps(request)
    resp = await d.accounts.ChangePassword(
        accounts_pb2.ChangePasswordRequest(
            current_password=body["current_password"], new_password=body["new_password"]
        ),
        metadata=metadata(request),
        timeout=30,
    )
    # the operator's other sessions and tokens that ended must fail from the next request
    # on, whichever replica serves it (accounts' session.ended reaches the live sockets)
    who = caller(request)
    await d.sessions.invalidate(who.tenant_id, [who.operator_id])
    return json_response(
        {"password_changed_at": views.iso(resp.password_changed_at)}, customer_data=False
    )


async def logout(request: web.Request) -> web.Response:
    d = deps(request)
    token = bearer_token(request)
    await d.accounts.EndSession(accounts_pb2.EndSessionRequest(token=token), timeout=10)
    await d.sessions.forget(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def list_my_tokens(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListApiTokens(
        accounts_pb2.ListApiTokensRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [views_accounts.api_token(t) for t in resp.tokens]}, customer_data=False
    )


async def create_my_token(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.CreateApiToken(
        accounts_pb2.CreateApiTokenRequest(
            name=body["name"],
            expires_in_days=body.get("expires_in_days", 0),
            survives_password_change=body.get("survives_password_change", False),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {"token": views_accounts.api_token(resp.token), "secret": resp.secret},
        status=201,
        customer_data=False,
    )


async def revoke_my_token(request: web.Request) -> web.Response:
    await deps(request).accounts.RevokeApiToken(
        accounts_pb2.RevokeApiTokenRequest(token_id=request.match_info["token_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return no_content()


async def _logins(request: web.Request, operator_id: str) -> web.Response:
    resp = await deps(request).accounts.ListLoginHistory(
        accounts_pb2.ListLoginHistoryRequest(
            page=page(request),
            operator_id=operator_id,
            failures_only=query_bool(request, "failures_only"),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return page_response(
        [views_accounts.login_record(r) for r in resp.records],
        resp.next_cursor,
        customer_data=False,
    )


async def my_logins(request: web.Request) -> web.Response:
    return await _logins(request, caller(request).operator_id)


async def list_logins(request: web.Request) -> web.Response:
    return await _logins(request, request.query.get("operator_id", ""))


async def operator_logins(request: web.Request) -> web.Response:
    return await _logins(request, request.match_info["operator_id"])


# -- operators ---------------------------------------------------------------------------


def _operator_fields(body: dict[str, Any]) -> accounts_pb2.OperatorFields:
    """The fields present in a body its schema accepted (OperatorCreate/OperatorUpdate);
    a list present replaces the stored one."""
    f = accounts_pb2.OperatorFields()
    for name in ("display_name", "language", "time_zone", "capacity", "active"):
        if name in body:
            setattr(f, name, body[name])
    for name in LIST_FIELDS:
        if name in body:
            getattr(f, name).extend(body[name])
            setattr(f, f"set_{'inboxes' if name == 'inbox_ids' else name}", True)
    return f


async def list_operators(request: web.Request) -> web.Response:
    """Everyone: the tenant's operators to assign or mention (id, login, name); who may
    manage operators: everything, inactive ones too with `?include_inactive=true`."""
    full = caller(request).may("manage_operators")
    include_inactive = query_bool(request, "include_inactive")
    if include_inactive and not full:
        raise ApiError(403, "permission_denied", "you may not list inactive operators")
    resp = await deps(request).accounts.ListOperators(
        accounts_pb2.ListOperatorsRequest(include_inactive=include_inactive),
        metadata=metadata(request),
        timeout=10,
    )
    view = views_accounts.operator_full if full else views_accounts.operator_brief
    return json_response({"items": [view(o) for o in resp.operators]}, customer_data=False)


async def create_operator(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.CreateOperator(
        accounts_pb2.CreateOperatorRequest(
            login=body["login"],
            fields=_operator_fields(body),
            temporary_password=body.get("temporary_password", ""),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(
        {
            "operator": views_accounts.operator_full(resp.operator),
            "temporary_password": resp.temporary_password or None,
        },
        status=201,
        customer_data=False,
    )


async def get_operator(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.GetOperator(
        accounts_pb2.GetOperatorRequest(operator_id=request.match_info["operator_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_accounts.operator_full(resp), customer_data=False)


async def update_operator(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.UpdateOperator(
        accounts_pb2.UpdateOperatorRequest(
            operator_id=request.match_info["operator_id"], fields=_operator_fields(body)
        ),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return json_response(views_accounts.operator_full(resp), customer_data=False)


async def reset_password(request: web.Request) -> web.Response:
    body = await optional_body(request) or {}
    resp = await deps(request).accounts.ResetPassword(
        accounts_pb2.ResetPasswordRequest(
            operator_id=request.match_info["operator_id"],
            temporary_password=body.get("temporary_password", ""),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    await _purge_tenant(request)
    return json_response(
        {"temporary_password": resp.temporary_password or None}, customer_data=False
    )


# -- roles and permissions ---------------------------------------------------------------


async def list_permissions(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListPermissions(
        accounts_pb2.ListPermissionsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [{"name": p.name, "description": p.description} for p in resp.permissions]},
        customer_data=False,
    )


async def list_roles(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListRoles(
        accounts_pb2.ListRolesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [views_accounts.role(r) for r in resp.roles]}, customer_data=False
    )


async def put_role(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.PutRole(
        accounts_pb2.PutRoleRequest(
            name=request.match_info["name"],
            description=body.get("description", ""),
            permissions=body["permissions"],
        ),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return json_response(views_accounts.role(resp), customer_data=False)


async def delete_role(request: web.Request) -> web.Response:
    await deps(request).accounts.DeleteRole(
        accounts_pb2.DeleteRoleRequest(name=request.match_info["name"]),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return no_content()


# -- inboxes -----------------------------------------------------------------------------


async def list_inboxes(request: web.Request) -> web.Response:
    """The inboxes the caller may see; `?all=true` (manage_inboxes): every inbox, with its
    members."""
    every = query_bool(request, "all")
    # the survey flags asked at the same time, not after: one round trip's wait, not two
    resp, on = await asyncio.gather(
        deps(request).accounts.ListInboxes(
            accounts_pb2.ListInboxesRequest(all=every), metadata=metadata(request), timeout=10
        ),
        _survey_inboxes(request),
    )
    out = [views_accounts.inbox(i, members=every) for i in resp.inboxes]
    if on is not None:
        for item in out:
            item["survey_enabled"] = item["id"] in on
    return json_response({"items": out}, customer_data=False)


async def _survey_inboxes(request: web.Request) -> set[str] | None:
    """The inboxes with satisfaction surveys on (outbound; issue 20), or None when outbound
    does not answer: the list goes out without the flag rather than not at all."""
    try:
        resp = await deps(request).outbound.ListSurveyInboxes(
            outbound_pb2.ListSurveyInboxesRequest(), metadata=metadata(request), timeout=3
        )
    except grpc.aio.AioRpcError:
        return None
    return set(resp.inbox_ids)


async def create_inbox(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.CreateInbox(
        accounts_pb2.CreateInboxRequest(
            name=body.get("name", ""),
            addresses=body.get("addresses", []),
            member_ids=body.get("member_ids", []),
            plain_text_only=body.get("plain_text_only", False),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return json_response(views_accounts.inbox(resp, members=True), status=201, customer_data=False)


async def update_inbox(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = accounts_pb2.UpdateInboxRequest(inbox_id=request.match_info["inbox_id"])
    if "name" in body:
        req.name = body["name"]
    if "addresses" in body:
        req.addresses.extend(body["addresses"])
        req.set_addresses = True
    if "member_ids" in body:
        req.member_ids.extend(body["member_ids"])
        req.set_members = True
    if "plain_text_only" in body:
        req.plain_text_only = body["plain_text_only"]
    resp = await deps(request).accounts.UpdateInbox(req, metadata=metadata(request), timeout=10)
    await _purge_tenant(request)
    return json_response(views_accounts.inbox(resp, members=True), customer_data=False)


# -- the tenant's security settings ------------------------------------------------------


async def get_tenant_settings(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.GetTenantSettings(
        accounts_pb2.GetTenantSettingsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(views_accounts.tenant_settings(resp), customer_data=False)


async def update_tenant_settings(request: web.Request) -> web.Response:
    """Fields left out keep their current value."""
    body = await json_body(request)
    req = accounts_pb2.UpdateTenantSettingsRequest()
    for name in (
        "name",
        "time_zone",
        "password_min_length",
        "password_min_classes",
        "password_max_age_days",
    ):
        if name in body:
            setattr(req, name, body[name])
    if "ip_allowlist" in body:
        req.ip_allowlist.extend(body["ip_allowlist"])
        req.set_ip_allowlist = True
    resp = await deps(request).accounts.UpdateTenantSettings(
        req, metadata=metadata(request), timeout=10
    )
    await _purge_tenant(request)
    return json_response(views_accounts.tenant_settings(resp), customer_data=False)


# -- who is logged in, login locks -------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    minutes = query_int(request, "seen_within_minutes", default=15, low=1, high=1440)
    resp = await deps(request).accounts.ListActiveSessions(
        accounts_pb2.ListActiveSessionsRequest(seen_within_minutes=minutes),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {"items": [views_accounts.active_session(s) for s in resp.sessions]}, customer_data=False
    )


async def revoke_session(request: web.Request) -> web.Response:
    await deps(request).accounts.RevokeSession(
        accounts_pb2.RevokeSessionRequest(session_id=request.match_info["session_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return no_content()


async def list_login_locks(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListLoginLocks(
        accounts_pb2.ListLoginLocksRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"items": [views_accounts.login_lock(lk) for lk in resp.locks]}, customer_data=False
    )


async def clear_login_lock(request: web.Request) -> web.Response:
    await deps(request).accounts.ClearLoginLock(
        accounts_pb2.ClearLoginLockRequest(
            kind=request.match_info["kind"], key=request.match_info["key"]
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/me", get_me)
    r.add_post("/api/v1/me/password", change_password)
    r.add_get("/api/v1/me/tokens", list_my_tokens)
    r.add_post("/api/v1/me/tokens", create_my_token)
    r.add_delete("/api/v1/me/tokens/{token_id}", revoke_my_token)
    r.add_get("/api/v1/me/logins", my_logins)
    r.add_post("/api/v1/sessions", create_session)
    r.add_delete("/api/v1/sessions/current", logout)
    r.add_get("/api/v1/sessions", list_sessions)
    r.add_delete("/api/v1/sessions/{session_id}", revoke_session)
    r.add_get("/api/v1/operators", list_operators)
    r.add_post("/api/v1/operators", create_operator)
    r.add_get("/api/v1/operators/{operator_id}", get_operator)
    r.add_patch("/api/v1/operators/{operator_id}", update_operator)
    r.add_post("/api/v1/operators/{operator_id}/password", reset_password)
    r.add_get("/api/v1/operators/{operator_id}/logins", operator_logins)
    r.add_get("/api/v1/permissions", list_permissions)
    r.add_get("/api/v1/roles", list_roles)
    r.add_put("/api/v1/roles/{name}", put_role)
    r.add_delete("/api/v1/roles/{name}", delete_role)
    r.add_get("/api/v1/inboxes", list_inboxes)
    r.add_post("/api/v1/inboxes", create_inbox)
    r.add_patch("/api/v1/inboxes/{inbox_id}", update_inbox)
    r.add_get("/api/v1/tenant/settings", get_tenant_settings)
    r.add_patch("/api/v1/tenant/settings", update_tenant_settings)
    r.add_get("/api/v1/logins", list_logins)
    r.add_get("/api/v1/login-locks", list_login_locks)
    r.add_delete("/api/v1/login-locks/{kind}/{key}", clear_login_lock)
