"""Sessions end everywhere at once (issue 16, SEC-9): a live socket closes within 2 s when
its session ends — logout, an administrator's revocation, deactivation, a password
changed or reset elsewhere — on whichever gateway replica it is; an operator taken out
of an inbox stops receiving its events within 2 s; an ended session's HTTP calls are
refused at once; API tokens end with a password change unless made to survive it; a
browser's login answer never holds the session token; and successes in between do not
spare a client address its lock."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from services.devstack.infra import free_port, spawn, stop_process
from services.devstack.stack import ROOT, Stack
from tests.e2e.test_access import OWN_PASSWORD, own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call, client_ip, log_in
from tests.helpers import Tenant, eventually, make_mail, send

pytestmark = pytest.mark.e2e

WITHIN_S = 2.0  # the bound the issue sets for a live socket to follow its session
SESSION_ENDED = 4401


def _replica(stack: Stack, port: int, **settings: str) -> subprocess.Popen[bytes]:
    env = stack.env_for("gateway")
    env["SB_HTTP_PORT"] = str(port)
    env["SB_METRICS_PORT"] = str(free_port())
    env.update(settings)
    log = open(stack.log_path("gateway-replica"), "ab")
    return spawn([sys.executable, "-m", "gateway"], env=env, log=log, cwd=ROOT)


@pytest.fixture(scope="module")
async def second_gateway(stack: Stack) -> AsyncIterator[str]:
    """Another gateway replica on the same servers: its URL."""
    port = free_port()
    proc = _replica(stack, port)
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/livez") as r:
                    return r.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(up, timeout=60)
        yield url
    finally:
        stop_process(proc, timeout=20)


async def _socket(http: aiohttp.ClientSession, base: str, token: str) -> Any:
    ws = await http.ws_connect(f"{base}/api/v1/live", headers={"Authorization": f"Bearer {token}"})
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    return ws


async def _closed_for_the_session(ws: Any) -> None:
    """The socket's next frame, within the bound, is its close for an ended session."""
    msg = await ws.receive(timeout=WITHIN_S)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED, msg


async def _session_id(stack: Stack, admin: str, operator_id: str) -> str:
    code, body, _ = await call(stack, "GET", "/api/v1/sessions", token=admin)
    assert code == 200, body
    [found] = [
        s["id"]
        for s in body["items"]
        if s["operator"]["id"] == operator_id and s["kind"] == "session"
    ]
    return str(found)


Ending = Callable[[Stack, str, str, str, str, str], Awaitable[None]]


async def _logout(stack: Stack, admin: str, op_id: str, login: str, token: str, _: str) -> None:
    assert (await call(stack, "DELETE", "/api/v1/sessions/current", token=token))[0] == 204


async def _revoke(stack: Stack, admin: str, op_id: str, login: str, token: str, _: str) -> None:
    session_id = await _session_id(stack, admin, op_id)
    path = f"/api/v1/sessions/{session_id}"
    assert (await call(stack, "DELETE", path, token=admin))[0] == 204


async def _deactivate(stack: Stack, admin: str, op_id: str, login: str, token: str, _: str) -> None:
    path = f"/api/v1/operators/{op_id}"
    assert (await call(stack, "PATCH", path, {"active": False}, token=admin))[0] == 200


async def _password_elsewhere(
    stack: Stack, admin: str, op_id: str, login: str, token: str, password: str
) -> None:
    code, other, _ = await log_in(stack, login, password)
    assert code == 201, other
    change = {"current_password": password, "new_password": "changed elsewhere 7"}
    code, body, _ = await call(stack, "POST", "/api/v1/me/password", change, token=other["token"])
    assert code == 200, body


async def _password_reset(
    stack: Stack, admin: str, op_id: str, login: str, token: str, _: str
) -> None:
    path = f"/api/v1/operators/{op_id}/password"
    assert (await call(stack, "POST", path, {}, token=admin))[0] == 200


@pytest.mark.parametrize(
    "ending",
    [_logout, _revoke, _deactivate, _password_elsewhere, _password_reset],
    ids=["logout", "revoked", "deactivated", "password_changed_elsewhere", "password_reset"],
)
async def test_a_live_socket_closes_when_its_session_ends_and_its_calls_are_refused(
    stack: Stack, ending: Ending
) -> None:
    tenant, admin = await admin_of(stack)
    op_id, login, token = await own_operator(stack, admin, tenant, roles=["agent"])
    assert (await call(stack, "GET", "/api/v1/me", token=token))[0] == 200  # now cached
    async with aiohttp.ClientSession() as http:
        ws = await _socket(http, stack.gateway_url, token)
        await ending(stack, admin, op_id, login, token, OWN_PASSWORD)
        assert (await call(stack, "GET", "/api/v1/me", token=token))[0] == 401
        await _closed_for_the_session(ws)


async def test_a_socket_on_another_gateway_replica_closes_too(
    stack: Stack, second_gateway: str
) -> None:
    tenant, admin = await admin_of(stack)
    _, _, token = await own_operator(stack, admin, tenant, roles=["agent"])
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{second_gateway}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200  # cached, in the Redis both replicas share
        ws = await _socket(http, second_gateway, token)
        await _logout(stack, admin, "", "", token, "")  # through the first replica
        async with http.get(
            f"{second_gateway}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 401
        await _closed_for_the_session(ws)


class _Link:
    """A TCP relay to NATS that can be cut and restored: one gateway replica's own line to
    the bus, so that replica alone misses what is published while it is cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._open.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _ready(url: str, want: bool) -> bool:
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/readyz") as r:
                return (r.status == 200) is want
    except aiohttp.ClientError:
        return False


async def test_a_replica_cut_off_from_nats_rechecks_its_sockets_when_it_is_back(
    stack: Stack,
) -> None:
    """A logout announced while one replica's line to NATS is down never reaches that
    replica; when the line is back it re-checks its sockets at once (the routine re-check
    is an hour away here), and the ended session's socket is closed."""
    host, port = stack.nats_url.removeprefix("nats://").rsplit(":", 1)
    link = _Link((host, int(port)))
    await link.up()
    gw_port = free_port()
    nats_url = f"nats://127.0.0.1:{link.port}"
    proc = _replica(stack, gw_port, SB_NATS_URL=nats_url, SB_LIVE_RECHECK_S="3600")
    url = f"http://127.0.0.1:{gw_port}"
    try:
        await eventually(lambda: _ready(url, True), timeout=60)
        tenant, admin = await admin_of(stack)
        _, _, token = await own_operator(stack, admin, tenant, roles=["agent"])
        async with aiohttp.ClientSession() as http:
            ws = await _socket(http, url, token)
            await link.cut()
            await eventually(lambda: _ready(url, False), timeout=30)
            await _logout(stack, admin, "", "", token, "")  # through the first replica
            await asyncio.sleep(1.0)  # the announcement has gone by: the socket is still open
            assert not ws.closed
            await link.up()
            # a routine re-check would take an hour; wait_for, as receive's own timeout
            # starts again with every heartbeat the replica sends
            msg = await asyncio.wait_for(ws.receive(), 30)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED, msg
    finally:
        stop_process(proc, timeout=20)
        await link.cut()


async def _mail(stack: Stack, subject: str, to: str) -> None:
    raw = make_mail(subject, sender="Taro <taro@customer.example>", to=to)
    await asyncio.to_thread(send, stack.smtp_port, raw, [to])


async def _private_inbox(stack: Stack, admin: str) -> tuple[dict[str, Any], str]:
    address = f"private@{uuid.uuid4().hex[:8]}.example"
    code, inbox, _ = await call(
        stack, "POST", "/api/v1/inboxes", {"name": "Private", "addresses": [address]}, token=admin
    )
    assert code == 201, inbox
    return inbox, address


async def _agent_of_both(stack: Stack, admin: str, tenant: Tenant) -> tuple[str, str, Any]:
    """A tenant's second inbox and an agent of both: (its id, its address, the agent)."""
    inbox, address = await _private_inbox(stack, admin)
    op_id, _, token = await own_operator(
        stack, admin, tenant, roles=["agent"], inbox_ids=[tenant.inbox_id, inbox["id"]]
    )
    return inbox["id"], address, (op_id, token)


@pytest.mark.parametrize("through", ["inbox_members", "operator_inboxes"])
async def test_an_operator_taken_out_of_an_inbox_stops_receiving_its_events(
    stack: Stack, through: str
) -> None:
    tenant, admin = await admin_of(stack)
    private_id, private, (op_id, agent) = await _agent_of_both(stack, admin, tenant)
    before = f"Still ours {uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        ws = await _socket(http, stack.gateway_url, agent)
        await _mail(stack, before, private)  # seen while a member
        while before not in (await ws.receive(timeout=10)).data:
            pass

        if through == "inbox_members":
            path, change = f"/api/v1/inboxes/{private_id}", {"member_ids": []}
        else:
            path, change = f"/api/v1/operators/{op_id}", {"inbox_ids": [tenant.inbox_id]}
        code, body, _ = await call(stack, "PATCH", path, change, token=admin)
        assert code == 200, body
        told = json.loads((await ws.receive(timeout=WITHIN_S)).data)
        while told["type"] != "access.changed":  # pushes of the moment before may come first
            told = json.loads((await ws.receive(timeout=WITHIN_S)).data)
        assert told["operator"]["inbox_ids"] == [tenant.inbox_id]

        secret, public = f"Board only {uuid.uuid4().hex[:6]}", f"Help {uuid.uuid4().hex[:6]}"
        await _mail(stack, secret, private)
        await ticket_by_subject(stack, admin, secret)  # filed: its push has gone out
        await _mail(stack, public, tenant.address)
        pushed: list[str] = []
        while not any(public in p for p in pushed):
            pushed.append((await ws.receive(timeout=10)).data)
        assert all(secret not in p for p in pushed)
        await ws.close()


async def test_a_password_change_ends_api_tokens_unless_made_to_survive_it(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    op_id, _, session = await own_operator(stack, admin, tenant, roles=["agent"])
    made = {}
    for name, body in (
        ("default", {"name": "nightly export"}),
        ("lasting", {"name": "crm sync", "survives_password_change": True}),
    ):
        code, made[name], _ = await call(stack, "POST", "/api/v1/me/tokens", body, token=session)
        assert code == 201, made[name]
    assert made["default"]["token"]["survives_password_change"] is False
    assert made["lasting"]["token"]["survives_password_change"] is True
    default, lasting = made["default"]["secret"], made["lasting"]["secret"]
    for secret in (default, lasting):
        assert (await call(stack, "GET", "/api/v1/me", token=secret))[0] == 200  # cached

    change = {"current_password": OWN_PASSWORD, "new_password": "a new one for tokens 3"}
    code, body, _ = await call(stack, "POST", "/api/v1/me/password", change, token=session)
    assert code == 200, body
    assert (await call(stack, "GET", "/api/v1/me", token=default))[0] == 401
    assert (await call(stack, "GET", "/api/v1/me", token=lasting))[0] == 200
    code, listed, _ = await call(stack, "GET", "/api/v1/me/tokens", token=session)
    assert [(t["name"], t["survives_password_change"]) for t in listed["items"]] == [
        ("crm sync", True)
    ]

    # a reset by an administrator: the lasting token lives on, but must wait for the
    # operator's new password like everything else
    path = f"/api/v1/operators/{op_id}/password"
    assert (await call(stack, "POST", path, {}, token=admin))[0] == 200
    code, body, _ = await call(stack, "GET", "/api/v1/tickets", token=lasting)
    assert code == 403 and body["error"]["code"] == "password_change_required"


async def test_a_browser_login_sets_the_cookie_and_never_answers_the_token(
    stack: Stack,
) -> None:
    tenant, _ = await admin_of(stack)
    credentials = {"login": tenant.login, "password": tenant.password}
    url = f"{stack.gateway_url}/api/v1/sessions"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={**credentials, "client": "browser"}) as r:
            assert r.status == 201
            body = await r.json()
            cookie = r.cookies["sb_session"]
        assert "token" not in body and body["csrf_token"]
        assert cookie.value not in json.dumps(body)
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        # (Secure: a cookie jar would not send it over http; a browser on https does)
        me = f"{stack.gateway_url}/api/v1/me"
        async with http.get(me, headers={"Cookie": f"sb_session={cookie.value}"}) as r:
            assert r.status == 200  # the cookie carries the session

    async with aiohttp.ClientSession() as http:  # a script: the token, and no cookie
        async with http.post(url, json=credentials) as r:
            assert r.status == 201 and "sb_session" not in r.cookies
            body = await r.json()
        assert body["token"] and "csrf_token" not in body
    code, body, _ = await call(stack, "POST", "/api/v1/sessions", {**credentials, "client": "x"})
    assert code == 400 and body["error"]["field"] == "client"


async def test_successes_in_between_do_not_spare_an_address_its_lock(stack: Stack) -> None:
    tenant, _ = await admin_of(stack)
    client = client_ip()
    for i in range(30):  # SB_LOGIN_ADDRESS_LOCK_AFTER in the test stack
        if i % 5 == 4:  # the insider logs in now and then, from the same address
            code, body, _ = await log_in(stack, tenant.login, tenant.password, client)
            assert code == 201, body
        code, body, _ = await log_in(stack, f"guess-{i}@nowhere.example", "guess", client)
        assert code == 401, body
    code, body, _ = await log_in(stack, tenant.login, tenant.password, client)
    assert code == 429 and body["error"]["code"] == "login_locked", body
    assert (await log_in(stack, tenant.login, tenant.password, client_ip()))[0] == 201
