"""IMAP intake against a real Dovecot: mail appended to a mailbox becomes a ticket (IDLE,
polling, TLS, STARTTLS), is marked as configured only after it is stored and announced,
and never twice — across a UIDVALIDITY change, a SIGKILL of ingestion, connections cut
mid-FETCH, and the same mail arriving by IMAP and SMTP."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.accounts.seed import DEMO_INBOXES
from services.devstack.infra import free_port
from services.devstack.stack import ROOT, Stack
from tests.conftest import DEMO_PASSWORD
from tests.dovecot import Dovecot
from tests.helpers import Unavailable, all_tickets, api_call, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e
SUPPORT = DEMO_INBOXES["Support"][0]


async def _admin(stack: Stack) -> str:
    return await login(stack, "admin@demo.example", DEMO_PASSWORD)


def _new_user(server: Dovecot) -> tuple[str, str]:
    user, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    server.add_user(user, password)
    return user, password


async def _mailbox(
    stack: Stack, server: Dovecot, login_as: tuple[str, str] | None = None, **overrides: Any
) -> dict[str, Any]:
    user, password = login_as or _new_user(server)
    body = {
        "inbox_id": SUPPORT,
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "username": user,
        "auth": "password",
        "secret": password,
        "after_fetch": "seen",
        "poll_interval_s": 5,
        **overrides,
    }
    code, mb = await api_call(stack, await _admin(stack), "POST", "/api/v1/mailboxes", body)
    assert code == 201, mb
    mb["_user"], mb["_password"] = user, password
    return mb


async def _subjects(stack: Stack, prefix: str) -> list[str]:
    token = await login(stack)
    try:
        tickets = await all_tickets(stack, token)
    except Unavailable:
        return []
    return [t["subject"] for t in tickets if t["subject"].startswith(prefix)]


async def _wait_subjects(stack: Stack, prefix: str, n: int, timeout: float = 30) -> list[str]:
    async def enough() -> list[str]:
        found = await _subjects(stack, prefix)
        return found if len(found) >= n else []

    return await eventually(enough, timeout=timeout)


async def test_mail_in_an_imap_mailbox_becomes_a_ticket_at_once_with_idle(
    stack: Stack, dovecot: Dovecot
) -> None:
    mb = await _mailbox(stack, dovecot)
    tag = f"IMAP idle {uuid.uuid4().hex[:6]}"
    await eventually(lambda: _state(stack, mb["id"], "idle"), timeout=20)
    started = time.monotonic()
    dovecot.append(make_mail(f"{tag} one").as_bytes(), user=mb["_user"])
    [subject] = await _wait_subjects(stack, tag, 1, timeout=10)
    print(f"IMAP append to listed ticket: {time.monotonic() - started:.2f}s")
    assert subject == f"{tag} one"
    assert "\\Seen" in dovecot.flags(mb["_user"])[1]
    state = await _state(stack, mb["id"])
    assert state["fetched"] == 1 and state["last_uid"] == 1 and state["last_error"] is None


async def _state(stack: Stack, mailbox_id: str, want: str | None = None) -> Any:
    code, body = await api_call(stack, await _admin(stack), "GET", "/api/v1/mailboxes")
    assert code == 200
    [mb] = [m for m in body["items"] if m["id"] == mailbox_id]
    if want is not None:
        return mb["state"] if mb["state"]["state"] == want else None
    return mb["state"]


async def test_a_server_without_idle_is_polled(stack: Stack, dovecot_no_idle: Dovecot) -> None:
    mb = await _mailbox(stack, dovecot_no_idle, poll_interval_s=5)
    tag = f"IMAP poll {uuid.uuid4().hex[:6]}"
    await eventually(lambda: _state(stack, mb["id"], "polling"), timeout=20)
    dovecot_no_idle.append(make_mail(f"{tag} one").as_bytes(), user=mb["_user"])
    await _wait_subjects(stack, tag, 1, timeout=20)


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_mailboxes(
    stack: Stack, dovecot_tls: Dovecot, security: str
) -> None:
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    mb = await _mailbox(stack, dovecot_tls, security=security, port=port)
    tag = f"IMAP {security} {uuid.uuid4().hex[:6]}"
    dovecot_tls.append(make_mail(f"{tag} one").as_bytes(), user=mb["_user"])
    await _wait_subjects(stack, tag, 1, timeout=20)


async def test_delete_mode_removes_the_mail_after_it_is_stored(
    stack: Stack, dovecot: Dovecot
) -> None:
    mb = await _mailbox(stack, dovecot, after_fetch="delete")
    tag = f"IMAP delete {uuid.uuid4().hex[:6]}"
    for i in range(3):
        dovecot.append(make_mail(f"{tag} {i}").as_bytes(), user=mb["_user"])
    await _wait_subjects(stack, tag, 3)
    await eventually(lambda: asyncio.sleep(0, dovecot.count(mb["_user"]) == 0), timeout=10)


async def test_uidvalidity_change_rescans_without_duplicates(
    stack: Stack, dovecot: Dovecot
) -> None:
    owner = _new_user(dovecot)
    tag = f"IMAP uidvalidity {uuid.uuid4().hex[:6]}"
    old = [make_mail(f"{tag} old {i}").as_bytes() for i in range(2)]
    for raw in old:
        dovecot.append(raw, user=owner[0], folder="Shared")
    mb = await _mailbox(stack, dovecot, owner, folder="Shared", after_fetch="seen")
    await _wait_subjects(stack, tag, 2)
    # The folder is recreated (as after a server migration): a new UIDVALIDITY, the old
    # mails again under new UIDs, and one new mail.
    m = dovecot.client(mb["_user"])
    m.rename("Shared", f"Old{uuid.uuid4().hex[:4]}")
    m.create("Shared")
    m.logout()
    for raw in [*old, make_mail(f"{tag} new").as_bytes()]:
        dovecot.append(raw, user=mb["_user"], folder="Shared")
    await _wait_subjects(stack, tag, 3)
    await asyncio.sleep(2)
    assert sorted(await _subjects(stack, tag)) == sorted(
        [f"{tag} new", f"{tag} old 0", f"{tag} old 1"]
    )


async def test_the_same_mail_by_imap_and_by_smtp_is_one_ticket(
    stack: Stack, dovecot: Dovecot
) -> None:
    mb = await _mailbox(stack, dovecot)
    tag = f"IMAP+SMTP {uuid.uuid4().hex[:6]}"
    raw = make_mail(f"{tag} both").as_bytes()
    await asyncio.to_thread(send, stack.smtp_port, raw)
    dovecot.append(raw, user=mb["_user"])
    await _wait_subjects(stack, tag, 1)
    await eventually(lambda: asyncio.sleep(0, "\\Seen" in dovecot.flags(mb["_user"]).get(1, "")))
    await asyncio.sleep(1.5)
    assert await _subjects(stack, tag) == [f"{tag} both"]


def _append_many(server: Dovecot, user: str, tag: str, count: int, size: int = 0) -> None:
    for i in range(count):
        body = "line of text for a bigger mail\n" * (size // 31) if size else "hello\n"
        server.append(make_mail(f"{tag} #{i:03d}", body=body).as_bytes(), user=user)
        time.sleep(0.02)


async def test_sigkill_of_ingestion_while_imap_mail_arrives_takes_every_mail_once(
    stack: Stack, dovecot: Dovecot
) -> None:
    mb = await _mailbox(stack, dovecot)
    tag = f"IMAP kill {uuid.uuid4().hex[:6]}"
    count = 40
    writer = threading.Thread(target=_append_many, args=(dovecot, mb["_user"], tag, count))
    writer.start()
    await eventually(lambda: asyncio.sleep(0, len(_sync_subjects_hint()) >= 0), timeout=1)
    await asyncio.sleep(0.6)
    stack.kill("ingestion", signal.SIGKILL)
    await asyncio.sleep(0.5)
    stack.start_process("ingestion")
    await asyncio.to_thread(writer.join)
    subjects = await _wait_subjects(stack, tag, count, timeout=60)
    await asyncio.sleep(2)
    subjects = await _subjects(stack, tag)
    assert sorted(subjects) == [f"{tag} #{i:03d}" for i in range(count)]
    flags = await eventually(
        lambda: asyncio.sleep(0, _all_seen(dovecot, mb["_user"], count)), timeout=20
    )
    assert flags
    await stack.wait_healthy(timeout=30)


def _sync_subjects_hint() -> list[str]:
    return []


def _all_seen(server: Dovecot, user: str, count: int) -> dict[int, str] | None:
    flags = server.flags(user)
    return flags if len(flags) == count and all("\\Seen" in f for f in flags.values()) else None


async def test_connections_cut_mid_fetch_lose_and_double_nothing(
    stack: Stack, dovecot: Dovecot
) -> None:
    mb = await _mailbox(stack, dovecot)
    tag = f"IMAP cut {uuid.uuid4().hex[:6]}"
    count = 12
    # Fill the mailbox first (about 1 MB each), then cut every IMAP connection while
    # ingestion is fetching them.
    await asyncio.to_thread(_append_many, dovecot, mb["_user"], tag, count, 1_000_000)
    for _ in range(3):
        await asyncio.sleep(0.4)
        dovecot.cut_connections()
    # Every command races the connection's loss, so a cut is noticed at once and the
    # mailbox fetched again within seconds: the wait stays below the fetch timeout (120 s),
    # so a command left waiting on a dead connection fails this test.
    await _wait_subjects(stack, tag, count, timeout=90)
    await asyncio.sleep(2)
    assert sorted(await _subjects(stack, tag)) == [f"{tag} #{i:03d}" for i in range(count)]


async def test_mailbox_api_keeps_secrets_and_checks_input(stack: Stack, dovecot: Dovecot) -> None:
    mb = await _mailbox(stack, dovecot)
    admin = await _admin(stack)
    code, listing = await api_call(stack, admin, "GET", "/api/v1/mailboxes")
    assert code == 200
    text = str(listing)
    assert mb["_password"] not in text and "secret" not in text
    assert mb["_password"] not in stack.log_path("ingestion").read_text()
    base = {
        "inbox_id": SUPPORT,
        "host": "127.0.0.1",
        "port": 143,
        "security": "none",
        "username": "x",
        "auth": "password",
        "secret": "s",
    }
    for change, field in [
        ({"port": 70000}, "port"),
        ({"security": "ssl3"}, "security"),
        ({"auth": "kerberos"}, "auth"),
        ({"after_fetch": "move"}, "move_to"),
        ({"host": "bad host\r\n"}, "host"),
        ({"secret": ""}, "secret"),
        ({"port": "143"}, "port"),
        ({"inbox_id": str(uuid.uuid4())}, "inbox_id"),
    ]:
        code, body = await api_call(stack, admin, "POST", "/api/v1/mailboxes", {**base, **change})
        assert code in (400, 404) and body["error"]["field"] == field, (change, body)
    agent = await login(stack)
    code, body = await api_call(stack, agent, "GET", "/api/v1/mailboxes")
    assert code == 403
    code, _ = await api_call(stack, admin, "DELETE", f"/api/v1/mailboxes/{mb['id']}")
    assert code == 204
    code, _ = await api_call(stack, admin, "DELETE", f"/api/v1/mailboxes/{mb['id']}")
    assert code == 404


async def test_a_second_replica_takes_over_a_dead_replicas_mailbox(
    stack: Stack, dovecot: Dovecot
) -> None:
    """Two ingestion replicas: each mailbox is fetched by one of them (a lease); when the
    holder dies, the other takes the mailbox over and goes on fetching."""
    import asyncpg

    from services.devstack.infra import free_port, spawn
    from services.runtime.db import with_database

    env = stack.env_for("ingestion")
    env.update(
        SB_GRPC_PORT=str(free_port()),
        SB_SMTP_PORT=str(free_port()),
        SB_METRICS_PORT=str(free_port()),
    )
    log_path = stack.log_path("ingestion-2")
    second = spawn(
        [sys.executable, "-m", "services.ingestion"],
        env=env,
        log=open(log_path, "ab"),  # noqa: ASYNC230 - lives with the process
        cwd=ROOT,
    )
    try:
        mb = await _mailbox(stack, dovecot)
        tag = f"IMAP takeover {uuid.uuid4().hex[:6]}"
        dovecot.append(make_mail(f"{tag} before").as_bytes(), user=mb["_user"])
        await _wait_subjects(stack, tag, 1)
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
        try:
            holder = await conn.fetchval(
                "SELECT holder FROM mailbox_leases WHERE mailbox_id = $1", uuid.UUID(mb["id"])
            )
            pids = {stack.procs["ingestion"].pid: "first", second.pid: "second"}
            holder_pid = int(holder.split(":")[1])
            assert holder_pid in pids
            victim = stack.procs["ingestion"] if pids[holder_pid] == "first" else second
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            dovecot.append(make_mail(f"{tag} after").as_bytes(), user=mb["_user"])
            await _wait_subjects(stack, tag, 2, timeout=40)  # lease TTL is 6 s in the tests
            new_holder = await conn.fetchval(
                "SELECT holder FROM mailbox_leases WHERE mailbox_id = $1", uuid.UUID(mb["id"])
            )
            assert int(new_holder.split(":")[1]) != holder_pid
        finally:
            await conn.close()
        assert sorted(await _subjects(stack, tag)) == [f"{tag} after", f"{tag} before"]
    finally:
        if second.poll() is None:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        if stack.procs["ingestion"].poll() is not None:
            stack.start_process("ingestion")
        await stack.wait_healthy(timeout=30)


async def test_an_xoauth2_mailbox_logs_in_with_its_bearer_token(
    stack: Stack, server_dir: Callable[[str], Path]
) -> None:
    """Gmail / Microsoft 365 style: the secret is an OAuth2 access token, checked by the
    IMAP server with its provider (here a local introspection endpoint)."""
    from aiohttp import web

    from services.devstack.infra import free_port

    token = f"ya29.{uuid.uuid4().hex}"
    asked: list[str] = []

    async def introspect(request: web.Request) -> web.Response:
        form = await request.post()
        asked.append(str(form.get("token", "")))
        if form.get("token") == token:
            return web.json_response({"active": True, "username": "oauth-user"})
        return web.json_response({"active": False})

    app = web.Application()
    app.router.add_post("/introspect", introspect)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server = Dovecot(
        server_dir("dovecot-oauth"),
        users={"oauth-user": "unused-password"},
        oauth2_introspection_url=f"http://127.0.0.1:{port}/introspect",
    ).start()
    try:
        await _mailbox(stack, server, ("oauth-user", token), auth="xoauth2", secret=token)
        tag = f"IMAP xoauth2 {uuid.uuid4().hex[:6]}"
        server.append(make_mail(f"{tag} one").as_bytes(), user="oauth-user")
        await _wait_subjects(stack, tag, 1, timeout=30)
        assert token in asked  # the server really checked the bearer token
        # A wrong token is an error shown on the mailbox, not a crash.
        bad = await _mailbox(stack, server, ("oauth-user", "x"), auth="xoauth2", secret="wrong")
        state = await eventually(lambda: _state(stack, bad["id"], "error"), timeout=20)
        assert "login refused" in state["last_error"]
    finally:
        server.stop()
        await runner.cleanup()


async def test_a_connection_test_logs_in_and_selects_the_folder_and_says_what_failed(
    stack: Stack, dovecot: Dovecot, dovecot_tls: Dovecot
) -> None:
    admin = await _admin(stack)
    user, password = _new_user(dovecot)
    settings = {
        "inbox_id": SUPPORT,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": user,
        "auth": "password",
        "secret": password,
    }

    async def test(body: dict[str, Any]) -> dict[str, Any]:
        code, out = await api_call(stack, admin, "POST", "/api/v1/mailboxes/test", body)
        assert code == 200, out
        return out

    good = await test(settings)
    assert good["ok"] and good["step"] == "ok" and "INBOX selected" in good["detail"], good
    wrong = await test({**settings, "secret": "not-it"})
    assert not wrong["ok"] and wrong["step"] == "auth" and "login refused" in wrong["detail"]
    assert "not-it" not in wrong["detail"] and password not in good["detail"]
    # a verdict in our words: nothing the server said (Dovecot's greeting, its NO text)
    assert "dovecot" not in (good["detail"] + wrong["detail"]).lower()
    folder = await test({**settings, "folder": "Nope"})
    assert not folder["ok"] and folder["step"] == "folder" and "Nope" in folder["detail"]
    closed = await test({**settings, "port": free_port()})
    assert not closed["ok"] and closed["step"] == "connect", closed

    # issue 16: only 127.0.0.1 is allow-listed in the test stack; other internal
    # addresses are refused before anything connects, and a service that is not IMAP
    # (the stack's NATS) gets a verdict, not its first line
    for host in ("127.0.0.2", "[::1]", "0.0.0.0"):
        code, out = await api_call(
            stack, admin, "POST", "/api/v1/mailboxes/test", {**settings, "host": host}
        )
        assert code == 400 and out["error"]["field"] == "host", (host, out)
        code, out = await api_call(
            stack, admin, "POST", "/api/v1/mailboxes", {**settings, "host": host}
        )
        assert code == 400 and out["error"]["field"] == "host", (host, out)
    nats_port = int(stack.nats_url.rsplit(":", 1)[1].strip("/"))
    stranger = await test({**settings, "port": nats_port})
    assert not stranger["ok"] and stranger["step"] in ("greeting", "timeout"), stranger
    assert "INFO" not in stranger["detail"] and "server_id" not in stranger["detail"]
    tls_user, tls_password = _new_user(dovecot_tls)
    tls = await test(
        {
            **settings,
            "port": dovecot_tls.tls_port,
            "security": "tls",
            "username": tls_user,
            "secret": tls_password,
        }
    )
    assert tls["ok"], tls
    code, out = await api_call(
        stack, admin, "POST", "/api/v1/mailboxes/test", {**settings, "security": "ssl3"}
    )
    assert code == 400 and out["error"]["field"] == "security"
    code, listed = await api_call(stack, admin, "GET", "/api/v1/mailboxes")
    assert all(m["username"] != user for m in listed["items"])  # nothing was stored

    mb = await _mailbox(stack, dovecot, login_as=(user, password))
    code, out = await api_call(stack, admin, "POST", f"/api/v1/mailboxes/{mb['id']}/test")
    assert code == 200 and out["ok"], out
    agent = await login(stack)
    code, out = await api_call(stack, agent, "POST", f"/api/v1/mailboxes/{mb['id']}/test")
    assert code == 403


async def test_an_edited_mailbox_fetches_with_its_new_settings_and_keeps_its_secret(
    stack: Stack, dovecot: Dovecot
) -> None:
    admin = await _admin(stack)
    mb = await _mailbox(stack, dovecot)
    path = f"/api/v1/mailboxes/{mb['id']}"
    await eventually(lambda: _state(stack, mb["id"], "idle"), timeout=20)
    tag = f"IMAP edit {uuid.uuid4().hex[:6]}"
    for i in range(3):  # A's checkpoint moves past B's only message
        dovecot.append(make_mail(f"{tag} early in A {i}").as_bytes(), user=mb["_user"])
    await _wait_subjects(stack, f"{tag} early in A", 3, timeout=20)
    user_b, password_b = _new_user(dovecot)
    dovecot.append(make_mail(f"{tag} waiting in B").as_bytes(), user=user_b)
    settings = {k: mb[k] for k in ("host", "port", "security", "auth", "poll_interval_s")}
    edited = {**settings, "inbox_id": SUPPORT, "username": user_b, "after_fetch": "seen"}

    # Tried before saving: the stored secret is A's, so B refuses it; B's own is accepted.
    code, out = await api_call(stack, admin, "POST", f"{path}/test", edited)
    assert code == 200 and not out["ok"] and "login refused" in out["detail"], out
    code, out = await api_call(
        stack, admin, "POST", f"{path}/test", {**edited, "secret": password_b}
    )
    assert code == 200 and out["ok"], out

    # Bad input changes nothing.
    code, out = await api_call(stack, admin, "PUT", path, {**edited, "port": 0})
    assert code == 400 and out["error"]["field"] == "port"
    code, out = await api_call(stack, admin, "PUT", f"/api/v1/mailboxes/{uuid.uuid4()}", edited)
    assert code == 404
    code, out = await api_call(stack, await login(stack), "PUT", path, edited)
    assert code == 403
    code, listed = await api_call(stack, admin, "GET", "/api/v1/mailboxes")
    [still] = [m for m in listed["items"] if m["id"] == mb["id"]]
    assert still["username"] == mb["_user"] and still["port"] == mb["port"]

    code, saved = await api_call(stack, admin, "PUT", path, {**edited, "secret": password_b})
    assert code == 200 and saved["username"] == user_b and password_b not in str(saved)
    # Another account: read from its first message, and A is no longer fetched.
    await _wait_subjects(stack, f"{tag} waiting in B", 1, timeout=20)
    dovecot.append(make_mail(f"{tag} late in A").as_bytes(), user=mb["_user"])

    # An edit without a secret keeps B's: the mailbox still logs in and fetches.
    code, saved = await api_call(stack, admin, "PUT", path, {**edited, "poll_interval_s": 7})
    assert code == 200 and saved["poll_interval_s"] == 7
    await eventually(lambda: _state(stack, mb["id"], "idle"), timeout=20)
    dovecot.append(make_mail(f"{tag} second in B").as_bytes(), user=user_b)
    await _wait_subjects(stack, f"{tag} second in B", 1, timeout=20)
    assert await _subjects(stack, f"{tag} late in A") == []
    assert "\\Seen" not in dovecot.flags(mb["_user"])[4]  # A's new mail was left alone
    state = await _state(stack, mb["id"])
    assert state["last_error"] is None and state["last_uid"] == 2
