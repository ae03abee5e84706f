"""Outbound settings on the running system (issue 7): SMTP routes chosen by recipient
domain, inbox and default, with their passwords sealed; DKIM signatures that verify;
automatic acknowledgements once per sender, never to automatic mail — so two Switchboard
inboxes answering each other stop after the first reply; form confirmations; and header
injection through every field an operator controls fails closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import dkim
import pytest

from services.devstack.infra import free_port
from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_compose import CUSTOMER, desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import Tenant, eventually, make_mail, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture
def relay() -> Any:
    """A second SMTP server, which wants a login (a marketplace's relay, an inbox's ESP)."""
    peer = SmtpPeer(login=("relay-user", "s3cret-パス")).start()
    yield peer
    peer.stop()


async def route(stack: Stack, admin: str, **body: Any) -> tuple[int, dict[str, Any]]:
    code, out, _ = await call(
        stack,
        "POST",
        "/api/v1/smtp-routes",
        {"host": "127.0.0.1", "security": "none", **body},
        token=admin,
    )
    return code, out


async def test_routes_by_recipient_domain_and_inbox_with_sealed_passwords(
    stack: Stack, smtp_peer: SmtpPeer, relay: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    marketplace = f"relay.{uuid.uuid4().hex[:6]}.example"
    code, made = await route(
        stack,
        admin,
        name="Marketplace relay",
        scope="domain",
        domain=marketplace.upper(),
        port=relay.port,
        username="relay-user",
        password="s3cret-パス",
    )
    assert code == 201, made
    assert made["domain"] == marketplace and made["has_password"] is True
    assert "password" not in made and "s3cret" not in str(made)
    assert (await route(stack, agent, name="x", port=25))[0] == 403
    code, dup = await route(stack, admin, name="again", scope="domain", domain=marketplace, port=1)
    assert code == 409, dup
    for bad, field in (
        ({"scope": "inbox"}, "inbox_id"),
        ({"scope": "domain", "domain": "not a domain"}, "domain"),
        ({"host": "bad host\r\nRCPT TO:<x@y>"}, "host"),
        ({"security": "ssl"}, "security"),
        ({"port": 0}, "port"),
        ({"username": "a\r\nb"}, "username"),
    ):
        code, body = await route(stack, admin, **{"name": "bad", "port": 25, **bad})
        assert code == 400 and body["error"]["field"] == field, (bad, body)

    # the password is stored sealed, not in clear
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        sealed = await conn.fetchval(
            "SELECT password_sealed FROM smtp_routes WHERE id = $1", uuid.UUID(made["id"])
        )
    finally:
        await conn.close()
    assert sealed and "s3cret-パス".encode() not in bytes(sealed)

    # a mail to the marketplace's masked address goes through the relay, logged in
    ticket = await mail_ticket(stack, tenant, agent, f"Marketplace {uuid.uuid4().hex[:6]}")
    masked = f"buyer-8812@{marketplace}"
    draft, fence = await reply_draft(stack, tenant, agent, ticket, to=[masked])
    _c, item = await send_draft(stack, agent, draft["id"], fence)
    await settled(stack, agent, item["id"], "sent")
    assert [r.message_id for r in relay.to(masked)] == [item["message_id"]]
    assert relay.logins == ["relay-user"] and not smtp_peer.to(masked)
    # mixing the relay's recipients with others cannot go as one mail
    ticket2 = await mail_ticket(stack, tenant, agent, f"Mixed {uuid.uuid4().hex[:6]}")
    draft2, fence2 = await reply_draft(
        stack, tenant, agent, ticket2, to=[masked, "taro@customer.example"]
    )
    code, body = await send_draft(stack, agent, draft2["id"], fence2)
    assert code == 409 and "separate" in body["error"]["message"], body

    # the inbox's own route, then removed: back to the platform relay
    code, inbox_route = await route(
        stack,
        admin,
        name="Help ESP",
        scope="inbox",
        inbox_id=tenant.inbox_id,
        port=relay.port,
        username="relay-user",
        password="wrong",
    )
    assert code == 201
    ticket3 = await mail_ticket(stack, tenant, agent, f"Inbox route {uuid.uuid4().hex[:6]}")
    draft3, fence3 = await reply_draft(stack, tenant, agent, ticket3)
    _c, item3 = await send_draft(stack, agent, draft3["id"], fence3)
    failed = await settled(stack, agent, item3["id"], "failed")  # 535: a wrong password
    assert failed["last_reply"]["code"] == 535, failed
    code, updated, _ = await call(
        stack,
        "PUT",
        f"/api/v1/smtp-routes/{inbox_route['id']}",
        {
            "name": "Help ESP",
            "scope": "inbox",
            "inbox_id": tenant.inbox_id,
            "host": "127.0.0.1",
            "port": relay.port,
            "security": "none",
            "username": "relay-user",
            "password": "s3cret-パス",
        },
        token=admin,
    )
    assert code == 200, updated
    draft3b, fence3b = await _reopened(stack, tenant, agent, ticket3, draft3)
    _c, item3b = await send_draft(stack, agent, draft3b["id"], fence3b)
    await settled(stack, agent, item3b["id"], "sent")
    assert [r.message_id for r in relay.to("taro@customer.example")] == [item3b["message_id"]]
    code, _b, _ = await call(
        stack, "DELETE", f"/api/v1/smtp-routes/{inbox_route['id']}", token=admin
    )
    assert code == 204
    code, listed, _ = await call(stack, "GET", "/api/v1/smtp-routes", token=admin)
    assert [r["name"] for r in listed["items"]] == ["Marketplace relay"]


async def _reopened(
    stack: Stack, tenant: Tenant, token: str, ticket: dict[str, Any], draft: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    from tests.e2e.test_outbound import _reopen_and_edit

    return await _reopen_and_edit(stack, tenant, token, ticket, draft, "Sent again.")


async def test_dkim_signatures_verify(stack: Stack, smtp_peer: SmtpPeer) -> None:
    tenant, admin, agent, _ = await desk(stack)
    domain = tenant.address.split("@")[1]
    code, key, _ = await call(
        stack, "PUT", f"/api/v1/dkim-keys/{domain}", {"selector": "sb2026"}, token=admin
    )
    assert code == 200, key
    assert key["dns_name"] == f"sb2026._domainkey.{domain}"
    assert key["dns_txt"].startswith("v=DKIM1; k=rsa; p=")
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/dkim-keys/{domain}",
        {"selector": "x", "private_key_pem": "-----BEGIN nonsense"},
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "private_key_pem"

    ticket = await mail_ticket(stack, tenant, agent, f"署名 {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, body="日本語の本文です。")
    _c, item = await send_draft(stack, agent, draft["id"], fence)
    done = await settled(stack, agent, item["id"], "sent")
    assert done["dkim_signed"] is True
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name.decode().rstrip(".") == key["dns_name"]
        return key["dns_txt"].encode()

    assert got.data.startswith(b"DKIM-Signature:")
    assert dkim.verify(got.data, dnsfunc=dns)
    tampered = got.data.replace(b"\r\n\r\n", b"\r\n\r\nA line added on the way.\r\n", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)
    code, _b, _ = await call(stack, "DELETE", f"/api/v1/dkim-keys/{domain}", token=admin)
    assert code == 204


async def _auto_reply(
    stack: Stack, admin: str, inbox_id: str, template_id: str, **body: Any
) -> dict[str, Any]:
    code, out, _ = await call(
        stack,
        "PUT",
        f"/api/v1/inboxes/{inbox_id}/auto-reply",
        {"enabled": True, "mode": "always", "template_id": template_id, **body},
        token=admin,
    )
    assert code == 200, out
    return out


async def _template(stack: Stack, admin: str, subject: str, body: str) -> str:
    code, tpl, _ = await call(
        stack,
        "POST",
        "/api/v1/templates",
        {"name": f"Ack {uuid.uuid4().hex[:4]}", "subject": subject, "body_text": body},
        token=admin,
    )
    assert code == 201, tpl
    return str(tpl["id"])


async def _sends(stack: Stack, token: str, kind: str) -> list[dict[str, Any]]:
    code, listed, _ = await call(stack, "GET", "/api/v1/sends?limit=200", token=token)
    assert code == 200, listed
    return [s for s in listed["items"] if s["kind"] == kind]


async def test_the_automatic_reply_goes_once_per_sender_and_never_to_automatic_mail(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    tpl = await _template(
        stack,
        admin,
        "【受付】{{original.subject}}",
        "{{customer.name}} 様\nお問い合わせを受け付けました。",
    )
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/inboxes/{tenant.inbox_id}/auto-reply",
        {"enabled": True},
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "template_id"
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/inboxes/{tenant.inbox_id}/auto-reply",
        {"enabled": True, "template_id": tpl, "hours": [{"weekday": 8, "start": "9", "end": "x"}]},
        token=admin,
    )
    assert code == 400, body
    settings = await _auto_reply(stack, admin, tenant.inbox_id, tpl, period_hours=24)
    assert settings["mode"] == "always" and settings["period_hours"] == 24
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/sla-policies",
        {"name": "An hour", "inbox_ids": [tenant.inbox_id], "first_response_minutes": 60},
        token=admin,
    )
    assert code == 201, body

    subject = f"注文について {uuid.uuid4().hex[:6]}"
    first = await mail_ticket(stack, tenant, agent, subject)

    async def acked() -> Any:
        got = [
            r for r in smtp_peer.to("taro@customer.example") if subject in str(r.message["Subject"])
        ]
        return got

    [ack] = await eventually(acked, timeout=20)
    msg = ack.message
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert str(msg["Subject"]) == f"【受付】{subject}"
    assert "Taro Yamada 様" in msg.get_body(("plain",)).get_content()
    assert msg["In-Reply-To"]

    # the same sender again within the period, and a mail that is itself automatic: nothing
    await mail_ticket(stack, tenant, agent, f"もう一通 {uuid.uuid4().hex[:6]}")
    robot = make_mail(
        f"Out of office {uuid.uuid4().hex[:6]}", sender="robot@other.example", to=tenant.address
    )
    robot["Auto-Submitted"] = "auto-replied"
    await asyncio.to_thread(send, stack.smtp_port, robot, [tenant.address])
    await _ticket_count(stack, agent, 3)
    await asyncio.sleep(1.5)
    acks = await _sends(stack, agent, "auto_reply")
    assert len(acks) == 1 and acks[0]["ticket_id"] == first["id"], acks
    assert not smtp_peer.to("robot@other.example")

    # filed in its ticket, as our own mail
    async def filed() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{first['id']}", token=agent)
        return any(m["channel"] == "sent" for m in t["messages"])

    await eventually(filed)

    # the acknowledgement is no first response: the SLA clock runs on until an operator
    # answers (and the reports count no reply either: tests/unit/test_reporting_facts.py)
    before_reply = datetime.now(UTC)
    draft, fence = await reply_draft(
        stack, tenant, agent, first, body="ご連絡ありがとうございます。"
    )
    _c, item = await send_draft(stack, agent, draft["id"], fence)
    await settled(stack, agent, item["id"], "sent")

    async def met() -> Any:
        _c, sla, _ = await call(stack, "GET", f"/api/v1/tickets/{first['id']}/sla", token=admin)
        [target] = [t for t in sla["targets"] if t["kind"] == "first_response"]
        return target if target["state"] == "met" else None

    target = await eventually(met, timeout=30)
    assert datetime.fromisoformat(target["met_at"]) >= before_reply, target


async def _ticket_count(stack: Stack, token: str, n: int) -> None:
    async def count() -> Any:
        _c, listed, _ = await call(stack, "GET", "/api/v1/tickets?limit=50", token=token)
        return len(listed["items"]) >= n

    await eventually(count)


async def test_two_switchboard_inboxes_answering_each_other_stop_after_the_first_reply(
    stack: Stack,
) -> None:
    """Tenant A and tenant B both answer every mail automatically, and both send through
    Switchboard's own SMTP intake, so each one's reply lands in the other's inbox."""
    a, admin_a = await admin_of(stack)
    b, admin_b = await admin_of(stack)
    for tenant, admin in ((a, admin_a), (b, admin_b)):
        code, _r = await route(stack, admin, name="loopback", scope="default", port=stack.smtp_port)
        assert code == 201
        tpl = await _template(stack, admin, "", "We received your mail.")
        await _auto_reply(stack, admin, tenant.inbox_id, tpl)
    subject = f"Hello from B {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, sender=b.address, to=a.address), [a.address]
    )

    async def b_got_the_reply() -> Any:
        _c, listed, _ = await call(stack, "GET", "/api/v1/tickets?limit=50", token=admin_b)
        return [t for t in listed["items"] if subject in t["subject"]]

    [in_b] = await eventually(b_got_the_reply, timeout=30)
    await asyncio.sleep(3)  # time for a second round, which must not come
    assert len(await _sends(stack, admin_a, "auto_reply")) == 1
    assert await _sends(stack, admin_b, "auto_reply") == []
    _c, listed, _ = await call(stack, "GET", "/api/v1/tickets?limit=50", token=admin_a)
    assert [t["message_count"] for t in listed["items"] if subject in t["subject"]] == [2]
    _c, detail, _ = await call(stack, "GET", f"/api/v1/tickets/{in_b['id']}", token=admin_b)
    assert detail["message_count"] == 1


async def test_a_web_form_submission_gets_its_confirmation(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    tpl = await _template(
        stack, admin, "お問い合わせありがとうございます", "{{customer.name}} 様\n受け付けました。"
    )
    code, out, _ = await call(
        stack,
        "PUT",
        f"/api/v1/inboxes/{tenant.inbox_id}/auto-reply",
        {"enabled": True, "form_template_id": tpl},
        token=admin,
    )
    assert code == 200, out
    code, form, _ = await call(
        stack,
        "POST",
        "/api/v1/forms",
        {"inbox_id": tenant.inbox_id, "name": "Contact"},
        token=admin,
    )
    assert code == 201, form
    address = f"hanako-{uuid.uuid4().hex[:6]}@example.jp"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}{form['submit_url']}",
            data={"name": "佐藤 花子", "email": address, "subject": "質問", "message": "教えて"},
        ) as resp:
            assert resp.status == 201, await resp.text()

    async def confirmed() -> Any:
        return smtp_peer.to(address)

    [got] = await eventually(confirmed, timeout=20)
    assert got.message["Auto-Submitted"] == "auto-replied"
    assert "佐藤 花子 様" in got.message.get_body(("plain",)).get_content()
    assert [s["kind"] for s in await _sends(stack, admin, "form_confirmation")] == [
        "form_confirmation"
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Re: hello\r\nBcc: victim@evil.example"),
        ("subject", "Re: hello\nX-Injected: 1"),
        ("subject", "nul\x00byte"),
        ("from_name", "Help\r\nBcc: victim@evil.example"),
        ("to", ["victim@evil.example\r\nBcc: other@evil.example"]),
        ("to", ["Name\n <victim@evil.example>"]),
        ("cc", ["a@b.example>\r\nX: y"]),
        ("bcc", ["x@y.example\rRCPT TO:<z@evil.example>"]),
        ("from_address", "help@x.example\r\nBcc: v@evil.example"),
    ],
)
async def test_header_injection_through_any_operator_field_fails_closed(
    stack: Stack, smtp_peer: SmtpPeer, field: str, value: Any
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Inject {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    before = len(smtp_peer.received)
    save = {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "Help",
        "to": draft["current"]["to"],
        "subject": draft["current"]["subject"],
        "body_text": "x",
        field: value,
    }
    code, body, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 400, body
    code, sent = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, sent  # the last good revision goes, unchanged
    done = await settled(stack, agent, sent["id"], "sent")
    got = [r for r in smtp_peer.received[before:] if r.message_id == done["message_id"]]
    assert len(got) == 1
    head = got[0].data.split(b"\r\n\r\n", 1)[0]
    assert b"evil.example" not in head and b"X-Injected" not in head
    assert got[0].rcpt_tos == ["taro@customer.example"]
    assert CUSTOMER.split("<")[1].rstrip(">") in got[0].rcpt_tos


async def test_a_route_connection_test_logs_in_and_says_what_failed(
    stack: Stack, relay: SmtpPeer
) -> None:
    _, admin, agent, _ = await desk(stack)
    settings = {
        "name": "ESP",
        "host": "127.0.0.1",
        "port": relay.port,
        "security": "none",
        "username": "relay-user",
        "password": "s3cret-パス",
    }

    async def test(body: dict[str, Any]) -> dict[str, Any]:
        code, out, _ = await call(stack, "POST", "/api/v1/smtp-routes/test", body, token=admin)
        assert code == 200, out
        return out

    good = await test(settings)
    assert good["ok"] and good["step"] == "ok" and "logged in as relay-user" in good["detail"]
    wrong = await test({**settings, "password": "wrong"})
    assert not wrong["ok"] and wrong["step"] == "auth", wrong
    assert wrong["detail"] == "login refused (535)", wrong
    assert "s3cret" not in good["detail"] + wrong["detail"]
    closed = await test({**settings, "port": free_port()})
    assert not closed["ok"] and closed["step"] == "connect", closed
    code, out, _ = await call(
        stack, "POST", "/api/v1/smtp-routes/test", {**settings, "port": 0}, token=admin
    )
    assert code == 400 and out["error"]["field"] == "port"
    assert (await call(stack, "GET", "/api/v1/smtp-routes", token=admin))[1]["items"] == []

    code, made = await route(stack, admin, **{k: v for k, v in settings.items() if k != "host"})
    assert code == 201, made
    code, out, _ = await call(stack, "POST", f"/api/v1/smtp-routes/{made['id']}/test", token=admin)
    assert code == 200 and out["ok"], out  # with the stored, sealed password
    code, _, _ = await call(stack, "POST", f"/api/v1/smtp-routes/{made['id']}/test", token=agent)
    assert code == 403

    # edited settings tried before saving: the stored password unless another is given
    edited = {k: v for k, v in settings.items() if k != "password"}
    tried = f"/api/v1/smtp-routes/{made['id']}/test"
    code, out, _ = await call(stack, "POST", tried, {**edited, "name": "ESP 2"}, token=admin)
    assert code == 200 and out["ok"], out
    code, out, _ = await call(stack, "POST", tried, {**edited, "password": "wrong"}, token=admin)
    assert code == 200 and not out["ok"] and "535" in out["detail"], out
    code, out, _ = await call(stack, "POST", tried, {**edited, "port": free_port()}, token=admin)
    assert code == 200 and not out["ok"], out
    code, out, _ = await call(stack, "POST", tried, {**edited, "port": 0}, token=admin)
    assert code == 400 and out["error"]["field"] == "port"
    listed = (await call(stack, "GET", "/api/v1/smtp-routes", token=admin))[1]["items"]
    assert [(r["name"], r["port"]) for r in listed] == [("ESP", relay.port)]  # nothing saved
    assert relay.received == []  # nothing was sent


async def test_a_route_may_not_lead_to_internal_addresses_nor_read_their_banners(
    stack: Stack, relay: SmtpPeer
) -> None:
    """Issue 16: the test stack allow-lists 127.0.0.1 only (where its servers listen);
    every other loopback, private, link-local or unspecified address is refused — when
    tried and when saved — before anything connects; and an allowed address that is not a
    mail server (the stack's NATS) gets a verdict, not the server's first line."""
    _, admin, _, _ = await desk(stack)
    settings = {"name": "Internal", "host": "127.0.0.1", "port": relay.port, "security": "none"}
    for host in ("127.0.0.2", "[::1]", "0.0.0.0", "[::ffff:127.0.0.2]"):
        code, out, _ = await call(
            stack, "POST", "/api/v1/smtp-routes/test", {**settings, "host": host}, token=admin
        )
        assert code == 400 and out["error"]["field"] == "host", (host, out)
        code, out = await route(stack, admin, **{**settings, "host": host})
        assert code == 400 and out["error"]["field"] == "host", (host, out)
    assert (await call(stack, "GET", "/api/v1/smtp-routes", token=admin))[1]["items"] == []

    nats_port = int(stack.nats_url.rsplit(":", 1)[1].strip("/"))
    code, out, _ = await call(
        stack, "POST", "/api/v1/smtp-routes/test", {**settings, "port": nats_port}, token=admin
    )
    assert code == 200 and not out["ok"] and out["step"] in ("greeting", "timeout"), out
    assert "INFO" not in out["detail"] and "server_id" not in out["detail"], out
    assert "version" not in out["detail"].lower(), out
