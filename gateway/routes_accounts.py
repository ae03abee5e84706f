"""Accounts routes of issue 5 (SEC-1…8): the caller's own account (me, password, API
tokens, logout), administration (operators, roles, inboxes, the tenant's security
settings, logins, who is logged in, login locks), the operation log and its CSV, notices
and the bulletin board. Permissions are checked by the access middleware from
openapi.yaml's `x-sb-permission`, and again by accounts itself."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web
from switchboard.v1 import accounts_pb2, common_pb2

from . import app as gw
from . import views
from .auth import SESSION_COOKIE, bearer_token
from .errors import ApiError
from .routes_tickets import _bad, _body, _int, _page, _str, _str_list, _time

CSV_MAX_ROWS = 100_000
OPERATOR_FIELDS = (
    "display_name",
    "addresses",
    "language",
    "time_zone",
    "skills",
    "capacity",
    "roles",
    "active",
    "ip_allowlist",
    "inbox_ids",
)


def _deps(request: web.Request) -> gw.Deps:
    return request.app[gw.DEPS]


async def _md(request: web.Request) -> list[tuple[str, str]]:
    return gw._md(await gw.caller_of(request), request)


def _bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(f"{name} must be true or false", name)
    return value


def _query_bool(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "")
    if value not in ("", "true", "false", "1", "0"):
        raise _bad(f"{name} must be true or false", name)
    return value in ("true", "1")


async def _purge_tenant(request: web.Request) -> None:
    """Cached sessions of the caller's tenant are asked of accounts again (an
    administrator changed who may do what)."""
    caller = await gw.caller_of(request)
    await _deps(request).sessions.forget_tenant(caller.tenant_id)


# -- the caller's own account ------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    return gw.json_response(caller.to_json(), customer_data=False)


async def change_password(request: web.Request) -> web.Response:
    body = await _body(request, ("current_password", "new_password"))
    d = _deps(request)
    resp = await d.accounts.ChangePassword(
        accounts_pb2.ChangePasswordRequest(
            current_password=_str(body, "current_password"),
            new_password=_str(body, "new_password"),
        ),
        metadata=await _md(request),
        timeout=30,
    )
    await d.sessions.forget(bearer_token(request))
    return gw.json_response(
        {"password_changed_at": views.iso(resp.password_changed_at)}, customer_data=False
    )


async def logout(request: web.Request) -> web.Response:
    d = _deps(request)
    token = bearer_token(request)
    await d.accounts.EndSession(accounts_pb2.EndSessionRequest(token=token), timeout=10)
    await d.sessions.forget(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def list_my_tokens(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListApiTokens(
        accounts_pb2.ListApiTokensRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {"items": [views.api_token(t) for t in resp.tokens]}, customer_data=False
    )


async def create_my_token(request: web.Request) -> web.Response:
    body = await _body(request, ("name", "expires_in_days"))
    resp = await _deps(request).accounts.CreateApiToken(
        accounts_pb2.CreateApiTokenRequest(
            name=_str(body, "name"), expires_in_days=_int(body, "expires_in_days", 1, 365)
        ),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(
        {"token": views.api_token(resp.token), "secret": resp.secret},
        status=201,
        customer_data=False,
    )


async def revoke_my_token(request: web.Request) -> web.Response:
    await _deps(request).accounts.RevokeApiToken(
        accounts_pb2.RevokeApiTokenRequest(token_id=request.match_info["token_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return web.Response(status=204)


async def _logins(request: web.Request, operator_id: str) -> web.Response:
    resp = await _deps(request).accounts.ListLoginHistory(
        accounts_pb2.ListLoginHistoryRequest(
            page=_page(request),
            operator_id=operator_id,
            failures_only=_query_bool(request, "failures_only"),
        ),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(
        {
            "items": [views.login_record(r) for r in resp.records],
            "next": resp.next_cursor or None,
        },
        customer_data=False,
    )


async def my_logins(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    return await _logins(request, caller.operator_id)


async def list_logins(request: web.Request) -> web.Response:
    return await _logins(request, request.query.get("operator_id", ""))


async def operator_logins(request: web.Request) -> web.Response:
    return await _logins(request, request.match_info["operator_id"])


# -- operators ---------------------------------------------------------------------------


def _operator_fields(body: dict[str, Any]) -> accounts_pb2.OperatorFields:
    f = accounts_pb2.OperatorFields()
    for name in ("display_name", "language", "time_zone"):
        if body.get(name) is not None:
            setattr(f, name, _str(body, name))
    for name in ("addresses", "skills", "roles", "ip_allowlist", "inbox_ids"):
        if name in body:
            getattr(f, name).extend(_str_list(body, name))
            setattr(f, f"set_{'inboxes' if name == 'inbox_ids' else name}", True)
    if body.get("capacity") is not None:
        f.capacity = _int(body, "capacity", 0, 10_000)
    active = _bool(body, "active")
    if active is not None:
        f.active = active
    return f


async def list_operators(request: web.Request) -> web.Response:
    """Everyone: the tenant's operators to assign or mention (id, login, name); who may
    manage operators: everything, inactive ones too with `?include_inactive=true`."""
    caller = await gw.caller_of(request)
    full = caller.may("manage_operators")
    include_inactive = _query_bool(request, "include_inactive")
    if include_inactive and not full:
        raise ApiError(403, "permission_denied", "you may not list inactive operators")
    resp = await _deps(request).accounts.ListOperators(
        accounts_pb2.ListOperatorsRequest(include_inactive=include_inactive),
        metadata=await _md(request),
        timeout=10,
    )
    view = views.operator_full if full else views.operator_brief
    return gw.json_response({"items": [view(o) for o in resp.operators]}, customer_data=False)


async def create_operator(request: web.Request) -> web.Response:
    body = await _body(request, ("login", "temporary_password", *OPERATOR_FIELDS))
    resp = await _deps(request).accounts.CreateOperator(
        accounts_pb2.CreateOperatorRequest(
            login=_str(body, "login"),
            fields=_operator_fields(body),
            temporary_password=_str(body, "temporary_password"),
        ),
        metadata=await _md(request),
        timeout=30,
    )
    return gw.json_response(
        {
            "operator": views.operator_full(resp.operator),
            "temporary_password": resp.temporary_password or None,
        },
        status=201,
        customer_data=False,
    )


async def get_operator(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.GetOperator(
        accounts_pb2.GetOperatorRequest(operator_id=request.match_info["operator_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.operator_full(resp), customer_data=False)


async def update_operator(request: web.Request) -> web.Response:
    body = await _body(request, OPERATOR_FIELDS)
    resp = await _deps(request).accounts.UpdateOperator(
        accounts_pb2.UpdateOperatorRequest(
            operator_id=request.match_info["operator_id"], fields=_operator_fields(body)
        ),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return gw.json_response(views.operator_full(resp), customer_data=False)


async def reset_password(request: web.Request) -> web.Response:
    body = await _body(request, ("temporary_password",), optional=True)
    resp = await _deps(request).accounts.ResetPassword(
        accounts_pb2.ResetPasswordRequest(
            operator_id=request.match_info["operator_id"],
            temporary_password=_str(body, "temporary_password"),
        ),
        metadata=await _md(request),
        timeout=30,
    )
    await _purge_tenant(request)
    return gw.json_response(
        {"temporary_password": resp.temporary_password or None}, customer_data=False
    )


# -- roles and permissions ---------------------------------------------------------------


async def list_permissions(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListPermissions(
        accounts_pb2.ListPermissionsRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {"items": [{"name": p.name, "description": p.description} for p in resp.permissions]},
        customer_data=False,
    )


async def list_roles(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListRoles(
        accounts_pb2.ListRolesRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response({"items": [views.role(r) for r in resp.roles]}, customer_data=False)


async def put_role(request: web.Request) -> web.Response:
    body = await _body(request, ("description", "permissions"))
    resp = await _deps(request).accounts.PutRole(
        accounts_pb2.PutRoleRequest(
            name=request.match_info["name"],
            description=_str(body, "description"),
            permissions=_str_list(body, "permissions"),
        ),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return gw.json_response(views.role(resp), customer_data=False)


async def delete_role(request: web.Request) -> web.Response:
    await _deps(request).accounts.DeleteRole(
        accounts_pb2.DeleteRoleRequest(name=request.match_info["name"]),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return web.Response(status=204)


# -- inboxes -----------------------------------------------------------------------------


async def create_inbox(request: web.Request) -> web.Response:
    body = await _body(request, ("name", "addresses", "member_ids"))
    resp = await _deps(request).accounts.CreateInbox(
        accounts_pb2.CreateInboxRequest(
            name=_str(body, "name"),
            addresses=_str_list(body, "addresses"),
            member_ids=_str_list(body, "member_ids"),
        ),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return gw.json_response(views.inbox(resp, members=True), status=201, customer_data=False)


async def update_inbox(request: web.Request) -> web.Response:
    body = await _body(request, ("name", "addresses", "member_ids"))
    req = accounts_pb2.UpdateInboxRequest(inbox_id=request.match_info["inbox_id"])
    if body.get("name") is not None:
        req.name = _str(body, "name")
    if "addresses" in body:
        req.addresses.extend(_str_list(body, "addresses"))
        req.set_addresses = True
    if "member_ids" in body:
        req.member_ids.extend(_str_list(body, "member_ids"))
        req.set_members = True
    resp = await _deps(request).accounts.UpdateInbox(req, metadata=await _md(request), timeout=10)
    await _purge_tenant(request)
    return gw.json_response(views.inbox(resp, members=True), customer_data=False)


# -- the tenant's security settings ------------------------------------------------------


async def get_tenant_settings(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.GetTenantSettings(
        accounts_pb2.GetTenantSettingsRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response(views.tenant_settings(resp), customer_data=False)


async def update_tenant_settings(request: web.Request) -> web.Response:
    names = (
        "name",
        "time_zone",
        "password_min_length",
        "password_min_classes",
        "password_max_age_days",
        "ip_allowlist",
    )
    body = await _body(request, names)
    req = accounts_pb2.UpdateTenantSettingsRequest()
    for name in ("name", "time_zone"):
        if body.get(name) is not None:
            setattr(req, name, _str(body, name))
    for name, (low, high) in {
        "password_min_length": (8, 128),
        "password_min_classes": (1, 4),
        "password_max_age_days": (0, 3650),
    }.items():
        if body.get(name) is not None:
            setattr(req, name, _int(body, name, low, high))
    if "ip_allowlist" in body:
        req.ip_allowlist.extend(_str_list(body, "ip_allowlist"))
        req.set_ip_allowlist = True
    resp = await _deps(request).accounts.UpdateTenantSettings(
        req, metadata=await _md(request), timeout=10
    )
    await _purge_tenant(request)
    return gw.json_response(views.tenant_settings(resp), customer_data=False)


# -- who is logged in, login locks -------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    minutes = gw._int_param(request, "seen_within_minutes", 15)
    if not 1 <= minutes <= 1440:
        raise _bad("seen_within_minutes must be between 1 and 1440", "seen_within_minutes")
    resp = await _deps(request).accounts.ListActiveSessions(
        accounts_pb2.ListActiveSessionsRequest(seen_within_minutes=minutes),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(
        {"items": [views.active_session(s) for s in resp.sessions]}, customer_data=False
    )


async def revoke_session(request: web.Request) -> web.Response:
    await _deps(request).accounts.RevokeSession(
        accounts_pb2.RevokeSessionRequest(session_id=request.match_info["session_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    await _purge_tenant(request)
    return web.Response(status=204)


async def list_login_locks(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListLoginLocks(
        accounts_pb2.ListLoginLocksRequest(), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {"items": [views.login_lock(lk) for lk in resp.locks]}, customer_data=False
    )


async def clear_login_lock(request: web.Request) -> web.Response:
    await _deps(request).accounts.ClearLoginLock(
        accounts_pb2.ClearLoginLockRequest(
            kind=request.match_info["kind"], key=request.match_info["key"]
        ),
        metadata=await _md(request),
        timeout=10,
    )
    return web.Response(status=204)


# -- the operation log (SEC-7) -----------------------------------------------------------


def _operations_request(request: web.Request) -> accounts_pb2.ListOperationsRequest:
    q = request.query
    req = accounts_pb2.ListOperationsRequest(
        page=_page(request),
        operator_id=q.get("operator_id", ""),
        action=q.get("action", "")[:101],
        target=q.get("target", "")[:201],
        text=q.get("q", "")[:201],
    )
    period = common_pb2.Period()
    if q.get("from"):
        period.start.CopyFrom(_time(q["from"], "from"))
    if q.get("to"):
        period.end.CopyFrom(_time(q["to"], "to"))
    req.period.CopyFrom(period)
    return req


async def list_operations(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListOperations(
        _operations_request(request), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {
            "items": [views.operation(o) for o in resp.operations],
            "next": resp.next_cursor or None,
        },
        customer_data=False,
    )


CSV_COLUMNS = ("at", "operator_id", "operator", "action", "method", "path", "target", "status",
               "client_address", "request_id")  # fmt: skip


def _csv_cell(value: str) -> str:
    """No formula injection when the file is opened in a spreadsheet."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def export_operations(request: web.Request) -> web.StreamResponse:
    """The operation log as CSV (UTF-8 with a BOM, for spreadsheets), every page of the
    filter, newest first, at most CSV_MAX_ROWS rows."""
    d = _deps(request)
    md = await _md(request)
    req = _operations_request(request)
    req.page.limit = 1000
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="operations.csv"',
        }
    )
    first = await d.accounts.ListOperations(req, metadata=md, timeout=30)  # errors before 200
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    await response.write(b"\xef\xbb\xbf" + buf.getvalue().encode())
    page, rows = first, 0
    while True:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for o in page.operations:
            writer.writerow(
                [
                    _csv_cell(c)
                    for c in (
                        views.iso(o.at) or "",
                        o.operator.id,
                        o.operator.display_name,
                        o.action,
                        o.method,
                        o.path,
                        o.target,
                        str(o.status),
                        o.client_address,
                        o.request_id,
                    )
                ]
            )
            rows += 1
        await response.write(buf.getvalue().encode())
        if not page.next_cursor or rows >= CSV_MAX_ROWS:
            break
        req.page.cursor = page.next_cursor
        page = await d.accounts.ListOperations(req, metadata=md, timeout=30)
    await response.write_eof()
    return response


# -- notices and the bulletin board (SEC-8) ----------------------------------------------


async def list_notices(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListNotices(
        accounts_pb2.ListNoticesRequest(current_only=_query_bool(request, "current")),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response({"items": [views.notice(n) for n in resp.notices]})


def _notice_request(body: dict[str, Any], notice_id: str = "") -> accounts_pb2.PutNoticeRequest:
    for name in ("starts_at", "ends_at"):
        if not _str(body, name):
            raise _bad(f"{name} is required", name)
    req = accounts_pb2.PutNoticeRequest(
        notice_id=notice_id, title=_str(body, "title"), body=_str(body, "body")
    )
    req.starts_at.CopyFrom(_time(_str(body, "starts_at"), "starts_at"))
    req.ends_at.CopyFrom(_time(_str(body, "ends_at"), "ends_at"))
    return req


NOTICE_FIELDS = ("title", "body", "starts_at", "ends_at")


async def create_notice(request: web.Request) -> web.Response:
    body = await _body(request, NOTICE_FIELDS)
    resp = await _deps(request).accounts.PutNotice(
        _notice_request(body), metadata=await _md(request), timeout=10
    )
    return gw.json_response(views.notice(resp), status=201)


async def update_notice(request: web.Request) -> web.Response:
    body = await _body(request, NOTICE_FIELDS)
    resp = await _deps(request).accounts.PutNotice(
        _notice_request(body, request.match_info["notice_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.notice(resp))


async def delete_notice(request: web.Request) -> web.Response:
    await _deps(request).accounts.DeleteNotice(
        accounts_pb2.DeleteNoticeRequest(notice_id=request.match_info["notice_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return web.Response(status=204)


async def list_posts(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.ListPosts(
        accounts_pb2.ListPostsRequest(page=_page(request)), metadata=await _md(request), timeout=10
    )
    return gw.json_response(
        {"items": [views.post(p) for p in resp.posts], "next": resp.next_cursor or None}
    )


async def create_post(request: web.Request) -> web.Response:
    body = await _body(request, ("title", "body"))
    resp = await _deps(request).accounts.CreatePost(
        accounts_pb2.CreatePostRequest(title=_str(body, "title"), body=_str(body, "body")),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.post(resp), status=201)


async def get_post(request: web.Request) -> web.Response:
    resp = await _deps(request).accounts.GetPost(
        accounts_pb2.GetPostRequest(post_id=request.match_info["post_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.post(resp, with_comments=True))


async def add_post_comment(request: web.Request) -> web.Response:
    body = await _body(request, ("body",))
    resp = await _deps(request).accounts.AddPostComment(
        accounts_pb2.AddPostCommentRequest(
            post_id=request.match_info["post_id"], body=_str(body, "body")
        ),
        metadata=await _md(request),
        timeout=10,
    )
    return gw.json_response(views.post_comment(resp), status=201)


async def delete_post(request: web.Request) -> web.Response:
    await _deps(request).accounts.DeletePost(
        accounts_pb2.DeletePostRequest(post_id=request.match_info["post_id"]),
        metadata=await _md(request),
        timeout=10,
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/me", get_me)
    r.add_post("/api/v1/me/password", change_password)
    r.add_get("/api/v1/me/tokens", list_my_tokens)
    r.add_post("/api/v1/me/tokens", create_my_token)
    r.add_delete("/api/v1/me/tokens/{token_id}", revoke_my_token)
    r.add_get("/api/v1/me/logins", my_logins)
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
    r.add_post("/api/v1/inboxes", create_inbox)
    r.add_patch("/api/v1/inboxes/{inbox_id}", update_inbox)
    r.add_get("/api/v1/tenant/settings", get_tenant_settings)
    r.add_patch("/api/v1/tenant/settings", update_tenant_settings)
    r.add_get("/api/v1/logins", list_logins)
    r.add_get("/api/v1/login-locks", list_login_locks)
    r.add_delete("/api/v1/login-locks/{kind}/{key}", clear_login_lock)
    r.add_get("/api/v1/operations", list_operations)
    r.add_get("/api/v1/operations.csv", export_operations)
    r.add_get("/api/v1/notices", list_notices)
    r.add_post("/api/v1/notices", create_notice)
    r.add_put("/api/v1/notices/{notice_id}", update_notice)
    r.add_delete("/api/v1/notices/{notice_id}", delete_notice)
    r.add_get("/api/v1/posts", list_posts)
    r.add_post("/api/v1/posts", create_post)
    r.add_get("/api/v1/posts/{post_id}", get_post)
    r.add_delete("/api/v1/posts/{post_id}", delete_post)
    r.add_post("/api/v1/posts/{post_id}/comments", add_post_comment)
