"""Accounts through the gateway (issue 5, SEC-1…3, SEC-8): first passwords, expiry,
password rules, the login throttle and locks, CSRF with the session cookie, IP
allow-lists, API tokens, logout, deactivation, notices and the bulletin board — each as
an operator or an administrator meets it, on the running system."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.conftest import LOGIN_LOCK_S
from tests.helpers import Tenant, api_call, create_tenant, eventually

pytestmark = pytest.mark.e2e


async def call(
    stack: Stack,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str = "",
    client: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    """A request as a client at `client` (sent as X-Forwarded-For; the test gateway
    trusts 127.0.0.1 as its proxy): status, JSON (None when there is none), headers."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if client:
        h["X-Forwarded-For"] = client
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{stack.gateway_url}{path}", json=body, headers=h) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data, resp.headers


async def log_in(
    stack: Stack, login: str, password: str, client: str = ""
) -> tuple[int, dict[str, Any], Any]:
    return await call(
        stack, "POST", "/api/v1/sessions", {"login": login, "password": password}, client=client
    )


async def admin_of(stack: Stack) -> tuple[Tenant, str]:
    tenant = await create_tenant(stack)
    code, body, _ = await log_in(stack, tenant.login, tenant.password)
    assert code == 201, body
    return tenant, body["token"]


async def new_operator(
    stack: Stack, admin: str, tenant: Tenant, client: str = "", **fields: Any
) -> tuple[str, str, str]:
    """An operator made by the administrator: (id, login, temporary password)."""
    login = f"op-{uuid.uuid4().hex[:8]}@ops.example"
    body = {"login": login, "display_name": "New Operator", "inbox_ids": [tenant.inbox_id]}
    body.update(fields)
    code, made, _ = await call(stack, "POST", "/api/v1/operators", body, token=admin, client=client)
    assert code == 201, made
    return made["operator"]["id"], login, made["temporary_password"]


def client_ip() -> str:
    """A client address of its own for one test (TEST-NET-3), so that failed logins
    counted against an address in one test touch no other."""
    n = uuid.uuid4().int
    return f"203.0.{n % 200 + 1}.{n // 200 % 250 + 1}"


async def test_a_temporary_password_must_be_changed_before_anything_else(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    _, login, temporary = await new_operator(stack, admin, tenant)
    assert len(temporary) >= 16

    code, session, _ = await log_in(stack, login, temporary)
    assert code == 201 and session["password_change_required"] == "temporary_password"
    token = session["token"]
    code, body, _ = await call(stack, "GET", "/api/v1/tickets", token=token)
    assert code == 403 and body["error"]["code"] == "password_change_required"
    code, me, _ = await call(stack, "GET", "/api/v1/me", token=token)
    assert code == 200 and me["password_change_required"] == "temporary_password"

    for weak, why in (("short1", "at least 10"), (login, "login")):
        code, body, _ = await call(
            stack,
            "POST",
            "/api/v1/me/password",
            {"current_password": temporary, "new_password": weak},
            token=token,
        )
        assert code == 400 and why in body["error"]["message"], body
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": "wrong", "new_password": "a much better one"},
        token=token,
    )
    assert code == 403 and body["error"]["field"] == "current_password"
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": temporary, "new_password": "a much better one"},
        token=token,
    )
    assert code == 200, body

    code, _, _ = await call(stack, "GET", "/api/v1/tickets", token=token)
    assert code == 200
    assert (await log_in(stack, login, temporary))[0] == 401
    code, session, _ = await log_in(stack, login, "a much better one")
    assert code == 201 and session["password_change_required"] is None


async def test_an_expired_password_must_be_changed(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    code, body, _ = await call(
        stack, "PATCH", "/api/v1/tenant/settings", {"password_max_age_days": 30}, token=admin
    )
    assert code == 200 and body["password_max_age_days"] == 30
    # the administrator's own password was set 31 days ago (as if time had passed)
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_accounts"))
    try:
        await conn.execute(
            "UPDATE operators SET password_changed_at = $2 WHERE lower(login) = $1",
            tenant.login.lower(),
            datetime.now(UTC) - timedelta(days=31),
        )
    finally:
        await conn.close()
    code, session, _ = await log_in(stack, tenant.login, tenant.password)
    assert code == 201 and session["password_change_required"] == "password_expired"
    token = session["token"]
    assert (await call(stack, "GET", "/api/v1/operators", token=token))[0] == 403
    code, _, _ = await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": tenant.password, "new_password": "Fresh password 2027"},
        token=token,
    )
    assert code == 200
    assert (await call(stack, "GET", "/api/v1/operators", token=token))[0] == 200


async def test_the_eleventh_wrong_password_is_refused_and_the_right_one_waits(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    _, login, temporary = await new_operator(stack, admin, tenant)
    client = client_ip()
    started = time.monotonic()
    for i in range(10):
        code, body, _ = await log_in(stack, login, f"wrong {i}", client)
        assert code == 401, body
    slowed = time.monotonic() - started
    assert slowed >= 0.05 * (1 + 2 + 3 + 4 + 5)  # attempts 6 to 10 each waited longer

    code, body, headers = await log_in(stack, login, "wrong again", client)
    assert code == 429 and body["error"]["code"] == "login_locked"
    assert 1 <= int(headers["Retry-After"]) <= LOGIN_LOCK_S
    code, body, _ = await log_in(stack, login, temporary, client_ip())  # right, elsewhere
    assert code == 429, body

    code, locks, _ = await call(stack, "GET", "/api/v1/login-locks", token=admin)
    assert code == 200
    [lock] = [lk for lk in locks["items"] if lk["key"] == login]
    assert lock["kind"] == "login" and lock["failures"] == 10

    await asyncio.sleep(LOGIN_LOCK_S + 0.5)
    code, body, _ = await log_in(stack, login, temporary, client)
    assert code == 201, body
    code, history, _ = await call(stack, "GET", "/api/v1/logins?limit=20", token=admin)
    results = [r["result"] for r in history["items"] if r["login"] == login]
    assert results[:3] == ["ok", "locked", "locked"] and results.count("wrong_password") == 10


async def test_an_administrator_ends_a_lock_early(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    _, login, temporary = await new_operator(stack, admin, tenant)
    for i in range(10):
        await log_in(stack, login, f"wrong {i}", client_ip())
    assert (await log_in(stack, login, temporary))[0] == 429
    code, _, _ = await call(stack, "DELETE", f"/api/v1/login-locks/login/{login}", token=admin)
    assert code == 204
    assert (await log_in(stack, login, temporary))[0] == 201
    assert (await log_in(stack, login, "wrong once more"))[0] == 401  # counting starts over


async def test_many_failures_from_one_address_lock_that_address(stack: Stack) -> None:
    tenant, _ = await admin_of(stack)
    client = client_ip()
    for i in range(30):  # SB_LOGIN_ADDRESS_LOCK_AFTER in the test stack
        await log_in(stack, f"nobody-{i}@nowhere.example", "guess", client)
    code, body, _ = await log_in(stack, tenant.login, tenant.password, client)
    assert code == 429, body
    code, _, _ = await log_in(stack, tenant.login, tenant.password, client_ip())
    assert code == 201


async def test_the_session_cookie_needs_the_csrf_token_for_changes(stack: Stack) -> None:
    tenant, _ = await admin_of(stack)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": tenant.login, "password": tenant.password, "client": "browser"},
        ) as r:
            session = await r.json()
            cookie = r.cookies["sb_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert cookie["secure"]  # SB_COOKIE_SECURE: on by default
        headers = {"Cookie": f"sb_session={cookie.value}"}
        url = f"{stack.gateway_url}/api/v1/posts"
        async with http.get(url, headers=headers) as r:
            assert r.status == 200  # reading needs no token
        post = {"title": "Lunch", "body": "Who joins?"}
        async with http.post(url, json=post, headers=headers) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
        bad = {**headers, "X-CSRF-Token": "forged"}
        async with http.post(url, json=post, headers=bad) as r:
            assert r.status == 403
        good = {**headers, "X-CSRF-Token": session["csrf_token"]}
        async with http.post(url, json=post, headers=good) as r:
            assert r.status == 201
        # a WebSocket opened with the cookie from another site's page is refused
        evil = {**headers, "Origin": "https://evil.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{stack.gateway_url}/api/v1/live", headers=evil)
        assert refused.value.status == 403
        own = {**headers, "Origin": stack.gateway_url}
        async with http.ws_connect(f"{stack.gateway_url}/api/v1/live", headers=own) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
    # a bearer token is never sent by a browser on its own: no CSRF token needed
    code, _, _ = await call(stack, "POST", "/api/v1/posts", post, token=cookie.value)
    assert code == 201


async def test_ip_allow_lists_of_the_tenant_and_the_operator(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    office, home, elsewhere = "203.0.113.7", "198.51.100.20", "192.0.2.99"
    code, body, _ = await call(
        stack,
        "PATCH",
        "/api/v1/tenant/settings",
        {"ip_allowlist": ["203.0.113.0/24", "198.51.100.20", "2001:db8::/32", "bogus"]},
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "ip_allowlist"
    code, body, _ = await call(
        stack,
        "PATCH",
        "/api/v1/tenant/settings",
        {"ip_allowlist": ["203.0.113.0/24", "198.51.100.20", "2001:db8::/32"]},
        token=admin,
    )
    assert code == 200 and body["ip_allowlist"][1] == "198.51.100.20/32"
    # the administrator's session was opened from 127.0.0.1, which is not on the list
    code, body, _ = await call(stack, "GET", "/api/v1/me", token=admin)
    assert code == 403 and body["error"]["code"] == "address_not_allowed"
    code, body, _ = await log_in(stack, tenant.login, tenant.password, elsewhere)
    assert code == 403 and body["error"]["code"] == "address_not_allowed"
    code, session, _ = await log_in(stack, tenant.login, tenant.password, office)
    assert code == 201
    admin = session["token"]
    assert (await call(stack, "GET", "/api/v1/me", token=admin, client=office))[0] == 200
    assert (await call(stack, "GET", "/api/v1/me", token=admin, client="2001:db8::5"))[0] == 200
    assert (await call(stack, "GET", "/api/v1/me", token=admin, client=elsewhere))[0] == 403

    # an operator may be held to a narrower list: only from home
    _, login, temporary = await new_operator(stack, admin, tenant, office, ip_allowlist=[home])
    assert (await log_in(stack, login, temporary, office))[0] == 403
    code, session, _ = await log_in(stack, login, temporary, home)
    assert code == 201
    code, _, _ = await call(stack, "GET", "/api/v1/me", token=session["token"], client=office)
    assert code == 403


async def test_personal_api_tokens_work_until_revoked(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    code, made, _ = await call(
        stack,
        "POST",
        "/api/v1/me/tokens",
        {"name": "nightly export", "expires_in_days": 7},
        token=admin,
    )
    assert code == 201 and made["secret"]
    secret, token_id = made["secret"], made["token"]["id"]
    code, me, _ = await call(stack, "GET", "/api/v1/me", token=secret)
    assert code == 200 and me["login"] == tenant.login
    code, listed, _ = await call(stack, "GET", "/api/v1/me/tokens", token=admin)
    assert [t["name"] for t in listed["items"]] == ["nightly export"]
    assert "secret" not in listed["items"][0]
    code, _, _ = await call(stack, "DELETE", f"/api/v1/me/tokens/{token_id}", token=admin)
    assert code == 204
    assert (await call(stack, "GET", "/api/v1/me", token=secret))[0] == 401
    code, body, _ = await call(stack, "POST", "/api/v1/me/tokens", {"name": ""}, token=admin)
    assert code == 400 and body["error"]["field"] == "name"


async def test_logout_ends_the_session_at_once(stack: Stack) -> None:
    tenant, _ = await admin_of(stack)
    _, session, _ = await log_in(stack, tenant.login, tenant.password)
    token = session["token"]
    assert (await call(stack, "GET", "/api/v1/me", token=token))[0] == 200  # now cached
    assert (await call(stack, "DELETE", "/api/v1/sessions/current", token=token))[0] == 204
    assert (await call(stack, "GET", "/api/v1/me", token=token))[0] == 401


async def test_a_deactivated_operator_is_out_and_the_last_admin_cannot_go(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    op_id, login, temporary = await new_operator(stack, admin, tenant)
    code, session, _ = await log_in(stack, login, temporary)
    assert (await call(stack, "GET", "/api/v1/me", token=session["token"]))[0] == 200
    code, body, _ = await call(
        stack, "PATCH", f"/api/v1/operators/{op_id}", {"active": False}, token=admin
    )
    assert code == 200 and body["active"] is False
    assert (await call(stack, "GET", "/api/v1/me", token=session["token"]))[0] == 401
    assert (await log_in(stack, login, temporary))[0] == 401

    code, me, _ = await call(stack, "GET", "/api/v1/me", token=admin)
    code, body, _ = await call(
        stack, "PATCH", f"/api/v1/operators/{me['id']}", {"roles": ["agent"]}, token=admin
    )
    assert code == 409 and "manage operators" in body["error"]["message"]
    code, body, _ = await call(
        stack, "PUT", "/api/v1/roles/admin", {"permissions": ["print"]}, token=admin
    )
    assert code == 409
    assert (await call(stack, "GET", "/api/v1/operators", token=admin))[0] == 200


async def test_roles_are_edited_and_take_effect_on_the_next_request(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    op_id, login, temporary = await new_operator(stack, admin, tenant, roles=["agent"])
    token = (await log_in(stack, login, temporary))[1]["token"]
    await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": temporary, "new_password": "agent password 1"},
        token=token,
    )
    assert (await call(stack, "GET", "/api/v1/notices", token=token))[0] == 200
    notice = {
        "title": "Maintenance",
        "body": "Saturday night",
        "starts_at": datetime.now(UTC).isoformat(),
        "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    assert (await call(stack, "POST", "/api/v1/notices", notice, token=token))[0] == 403
    code, role, _ = await call(
        stack,
        "PUT",
        "/api/v1/roles/publisher",
        {"description": "writes notices", "permissions": ["manage_notices"]},
        token=admin,
    )
    assert code == 200 and role["permissions"] == ["manage_notices"]
    code, _, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/operators/{op_id}",
        {"roles": ["agent", "publisher"]},
        token=admin,
    )
    assert code == 200
    code, body, _ = await call(stack, "POST", "/api/v1/notices", notice, token=token)
    assert code == 201, body
    code, body, _ = await call(
        stack, "PUT", "/api/v1/roles/x", {"permissions": ["fly"]}, token=admin
    )
    assert code == 400 and body["error"]["field"] == "permissions"
    assert (await call(stack, "DELETE", "/api/v1/roles/publisher", token=admin))[0] == 409
    code, roles, _ = await call(stack, "GET", "/api/v1/roles", token=admin)
    names = [r["name"] for r in roles["items"]]
    assert names[:5] == sorted(["admin", "agent", "approver", "supervisor", "trainee"])
    assert "publisher" in names


async def test_notices_show_in_their_period_and_the_board_takes_posts(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    _, login, temporary = await new_operator(stack, admin, tenant, roles=["agent"])
    agent = (await log_in(stack, login, temporary))[1]["token"]
    now = datetime.now(UTC)

    async def notice(title: str, start: timedelta, end: timedelta) -> dict[str, Any]:
        body = {
            "title": title,
            "body": f"{title} — 詳細は掲示板へ",
            "starts_at": (now + start).isoformat(),
            "ends_at": (now + end).isoformat(),
        }
        code, made, _ = await call(stack, "POST", "/api/v1/notices", body, token=admin)
        assert code == 201, made
        return made

    current = await notice("Now", -timedelta(hours=1), timedelta(hours=1))
    await notice("Later", timedelta(days=1), timedelta(days=2))
    await notice("Past", -timedelta(days=2), -timedelta(days=1))
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/notices",
        {"title": "x", "body": "y", "starts_at": now.isoformat(), "ends_at": now.isoformat()},
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "ends_at"
    # the agent still has the temporary password: notices show, nothing else does
    code, shown, _ = await call(stack, "GET", "/api/v1/notices", token=agent)
    assert code == 200 and [n["title"] for n in shown["items"]] == ["Now"]
    code, every, _ = await call(stack, "GET", "/api/v1/notices", token=admin)
    assert {n["title"] for n in every["items"]} == {"Now", "Later", "Past"}
    assert current["author"]["name"] == "Boss"

    await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": temporary, "new_password": "agent password 1"},
        token=agent,
    )
    code, post, _ = await call(
        stack,
        "POST",
        "/api/v1/posts",
        {"title": "シフト交代", "body": "土曜日どなたか"},
        token=agent,
    )
    assert code == 201
    code, _, _ = await call(
        stack,
        "POST",
        f"/api/v1/posts/{post['id']}/comments",
        {"body": "代わります"},
        token=admin,
    )
    assert code == 201
    code, read, _ = await call(stack, "GET", f"/api/v1/posts/{post['id']}", token=agent)
    assert code == 200 and [c["body"] for c in read["comments"]] == ["代わります"]
    code, page, _ = await call(stack, "GET", "/api/v1/posts", token=admin)
    assert page["items"][0]["comment_count"] == 1
    code, admins_post, _ = await call(
        stack, "POST", "/api/v1/posts", {"title": "Rules", "body": "Read them"}, token=admin
    )
    code, body, _ = await call(stack, "DELETE", f"/api/v1/posts/{admins_post['id']}", token=agent)
    assert code == 403
    assert (await call(stack, "DELETE", f"/api/v1/posts/{post['id']}", token=agent))[0] == 204
    assert (await call(stack, "GET", f"/api/v1/posts/{post['id']}", token=agent))[0] == 404


async def test_who_is_logged_in_now_and_their_last_action(stack: Stack) -> None:
    _, admin = await admin_of(stack)
    code, _, _ = await call(
        stack, "POST", "/api/v1/posts", {"title": "Hello", "body": "team"}, token=admin
    )

    async def active() -> list[dict[str, Any]] | None:
        code, body, _ = await call(stack, "GET", "/api/v1/sessions", token=admin)
        assert code == 200
        found = [s for s in body["items"] if s["last_action"]]
        return found or None

    [session] = await eventually(active)
    assert session["operator"]["name"] == "Boss" and session["kind"] == "session"
    assert session["last_action"]["action"] == "createPost"
    assert session["client_address"] == "127.0.0.1"
    code, _, _ = await call(stack, "DELETE", f"/api/v1/sessions/{session['id']}", token=admin)
    assert code == 204
    assert (await api_call(stack, admin, "GET", "/api/v1/me"))[0] == 401
