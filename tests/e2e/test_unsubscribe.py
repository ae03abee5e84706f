"""The suppression list and RFC 8058 one-click unsubscribe (issue 20, OUT-6) on the
running system: a mail provider's one-click POST unsubscribes without login, cookie or
CSRF token, idempotently and announced once; a GET (a mail scanner following the link)
never does; other bodies and tampered tokens are refused with a page; a permanent DSN
for a mail outbound sent suppresses its recipient while replies to a suppressed
contact's inquiries still go; the list's API is the tenant's own and needs
manage_outreach."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from services.outbound import suppression
from tests.e2e.test_accounts import call, client_ip
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import eventually, published, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def link(stack: Stack, tenant_id: str, address: str, language: str = "ja", **ids: str) -> str:
    """The link a campaign mail of this tenant would carry (the campaigns engine's call)."""
    config = suppression.config_from(
        own=None,
        secret_key=stack.config.secret_key,
        survey_secret=None,
        public_url=stack.gateway_url,
    )
    headers = suppression.unsubscribe_headers(
        config,
        tenant_id=tenant_id,
        address=address,
        campaign_id=ids.get("campaign_id", ""),
        recipient_id=ids.get("recipient_id", ""),
        language=language,
    )
    assert headers[1] == ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    return headers[0][1].strip("<>")


async def page(
    url: str, *, method: str = "GET", data: Any = None, client: str = "", **headers: str
) -> tuple[int, str]:
    """As a mail provider or a browser without any session: no cookie, no token."""
    h = {"X-Forwarded-For": client or client_ip(), **headers}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, data=data, headers=h) as r:
            return r.status, await r.text()


async def listed(stack: Stack, token: str, query: str = "") -> list[dict[str, Any]]:
    code, out, _ = await call(stack, "GET", f"/api/v1/suppressions?query={query}", token=token)
    assert code == 200, out
    entries: list[dict[str, Any]] = out["suppressions"]
    return entries


async def test_one_click_unsubscribes_without_login_once_and_a_get_never_does(
    stack: Stack,
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    campaign, recipient = str(uuid.uuid4()), str(uuid.uuid4())
    address = f"Hanako.{uuid.uuid4().hex[:6]}@Customer.example"
    url = link(stack, tenant.tenant_id, address, campaign_id=campaign, recipient_id=recipient)
    async with published(stack, "sb.outbound.contact.>") as seen:
        # mail scanners and link previews follow the link: asked, never unsubscribed
        for _ in range(2):
            code, html = await page(url)
            assert code == 200, html
            assert "配信を停止しますか" in html and 'value="One-Click"' in html
            assert f"{address[0].lower()}***@customer.example" in html
            assert address.lower() not in html  # the page shows the address masked
        code, html = await page(url, method="HEAD")
        assert code == 200
        assert await listed(stack, admin, address.lower()) == []

        # the mail provider's RFC 8058 POST: no cookie, no CSRF token, no login
        code, html = await page(url, method="POST", data=ONE_CLICK)
        assert code == 200 and "配信を停止しました" in html
        # again (the provider retries, the recipient clicks the button too): still one
        code, html = await page(url, method="POST", data=ONE_CLICK)
        assert code == 200 and "配信を停止しました" in html
        [entry] = await listed(stack, admin, address.lower())
        assert entry["address"] == address.lower() and entry["reason"] == "unsubscribed"
        assert entry["campaign_id"] == campaign
        code, html = await page(url)
        assert code == 200 and "すでに配信停止" in html and "<form" not in html

        async def announced() -> list[Any] | None:
            mine = [e for e in seen if e.tenant_id == tenant.tenant_id]
            return mine or None

        [event] = await eventually(announced, timeout=15)
        await asyncio.sleep(1.0)  # a second one would have come by now
        assert len([e for e in seen if e.tenant_id == tenant.tenant_id]) == 1
    assert event.type == "contact.unsubscribed"
    p = event.contact_unsubscribed
    assert (p.address, p.campaign_id, p.recipient_id, p.language) == (
        address.lower(),
        campaign,
        recipient,
        "ja",
    )

    # multipart/form-data, as RFC 8058 prefers it; the English page
    other = f"mp-{uuid.uuid4().hex[:6]}@customer.example"
    en = link(stack, tenant.tenant_id, other, "en")
    code, html = await page(en)
    assert code == 200 and "Stop campaign mails to" in html and 'lang="en"' in html
    form = aiohttp.FormData()
    form.add_field("List-Unsubscribe", "One-Click")
    form.add_field("x", b"1", filename="x.txt")  # forces multipart
    code, html = await page(en, method="POST", data=form)
    assert code == 200 and "You are unsubscribed" in html
    assert [e["reason"] for e in await listed(stack, admin, other)] == ["unsubscribed"]


async def test_other_bodies_and_tampered_tokens_are_refused_and_change_nothing(
    stack: Stack,
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    address = f"kept-{uuid.uuid4().hex[:6]}@customer.example"
    url = link(stack, tenant.tenant_id, address, "en")
    for data, headers in (
        ({"List-Unsubscribe": "yes"}, {}),
        ({"unsubscribe": "1"}, {}),
        ('{"List-Unsubscribe": "One-Click"}', {"Content-Type": "application/json"}),
        (None, {}),
        (
            "List-Unsubscribe=One-Click&" + "x" * 5000,
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ):
        code, html = await page(url, method="POST", data=data, **headers)
        assert code in (400, 413), (data, code, html)
        assert "not a one-click unsubscribe" in html
    token = url.rsplit("/", 1)[1]
    body, _, sig = token.rpartition(".")
    base = url.rsplit("/", 1)[0]
    for bad in (
        f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{sig}",
        token[:-2],
        "not-a-token",
    ):
        code, html = await page(f"{base}/{bad}", method="POST", data=ONE_CLICK)
        assert code == 400 and "not valid" in html, html
        code, html = await page(f"{base}/{bad}", **{"Accept-Language": "ja,en;q=0.5"})
        assert code == 400 and "無効" in html
    # a token another deployment signed
    foreign = suppression.unsubscribe_url(
        suppression.config_from(
            own="another-key", secret_key=None, survey_secret=None, public_url=stack.gateway_url
        ),
        tenant_id=tenant.tenant_id,
        address=address,
        campaign_id="",
        recipient_id="",
        language="en",
    )
    code, _html = await page(foreign, method="POST", data=ONE_CLICK)
    assert code == 400
    assert await listed(stack, admin, address) == []


async def test_the_page_is_limited_per_client_address(stack: Stack) -> None:
    tenant, _admin, _agent, _ = await desk(stack)
    url = link(stack, tenant.tenant_id, f"r-{uuid.uuid4().hex[:6]}@customer.example", "en")
    client = client_ip()
    codes = [(await page(url, client=client))[0] for _ in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429
    code, html = await page(url, method="POST", data=ONE_CLICK, client=client)
    assert code == 429 and "Too many requests" in html
    assert (await page(url))[0] == 200  # another address is not limited


def dsn(tenant_address: str, recipient: str, message_id: str, status: str) -> bytes:
    return (
        f"From: MAILER-DAEMON@peer.example\r\nTo: {tenant_address}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@peer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; peer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()


async def test_a_hard_bounce_suppresses_and_replies_to_a_suppressed_contact_still_go(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Bounce {uuid.uuid4().hex[:6]}")
    delayed = f"slow-{uuid.uuid4().hex[:6]}@peer.example"
    gone = f"Gone-{uuid.uuid4().hex[:6]}@peer.example"
    draft, fence = await reply_draft(stack, tenant, agent, ticket, to=[delayed, gone])
    _s, item = await send_draft(stack, agent, draft["id"], fence)
    await settled(stack, agent, item["id"], "sent")
    # a delay notice (4.x.x) suppresses nobody; a permanent failure its recipient
    await asyncio.to_thread(
        send,
        stack.smtp_port,
        dsn(tenant.address, delayed, item["message_id"], "4.4.1"),
        [tenant.address],
    )
    await asyncio.to_thread(
        send,
        stack.smtp_port,
        dsn(tenant.address, gone, item["message_id"], "5.1.1"),
        [tenant.address],
    )
    await settled(stack, agent, item["id"], "bounced")

    async def suppressed() -> list[dict[str, Any]] | None:
        return await listed(stack, admin, "peer.example") or None

    [entry] = await eventually(suppressed, timeout=20)
    assert entry["address"] == gone.lower() and entry["reason"] == "bounced"

    # the contact of the inquiry is on the list (by hand): a reply to them still goes
    code, out, _ = await call(
        stack, "POST", "/api/v1/suppressions", {"address": "taro@customer.example"}, token=admin
    )
    assert code == 201, out
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    _s, reply = await send_draft(stack, agent, draft["id"], fence)
    await settled(stack, agent, reply["id"], "sent")
    [got] = [r for r in smtp_peer.received if r.message_id == reply["message_id"]]
    assert got.rcpt_tos == ["taro@customer.example"]


async def test_the_list_api_is_the_tenants_own_and_needs_manage_outreach(stack: Stack) -> None:
    _tenant, admin, agent, supervisor = await desk(stack)
    _other, other_admin, _a, _s = await desk(stack)
    path = "/api/v1/suppressions"
    marker = uuid.uuid4().hex[:6]
    code, made, _ = await call(
        stack, "POST", path, {"address": f"Foo-{marker}@Example.COM"}, token=admin
    )
    assert code == 201, made
    assert made["address"] == f"foo-{marker}@example.com" and made["reason"] == "manual"
    assert made["campaign_id"] is None and made["created_at"]
    # the same address again: its first entry
    code, again, _ = await call(
        stack, "POST", path, {"address": f"foo-{marker}@example.com"}, token=admin
    )
    assert code == 201 and again["created_at"] == made["created_at"]
    for bad in ("not an address", "Foo <foo@example.com>", "foo@", "a\r\nb@example.com", ""):
        code, out, _ = await call(stack, "POST", path, {"address": bad}, token=admin)
        assert code == 400 and out["error"]["field"] == "address", (bad, out)
    code, out, _ = await call(stack, "POST", path, {"email": "x@example.com"}, token=admin)
    assert code == 400
    # supervisors hold manage_outreach; agents do not
    code, _out, _ = await call(
        stack, "POST", path, {"address": f"bar-{marker}@example.com"}, token=supervisor
    )
    assert code == 201
    for method, p, body in (
        ("GET", path, None),
        ("POST", path, {"address": f"baz-{marker}@example.com"}),
        ("DELETE", f"{path}/foo-{marker}@example.com", None),
    ):
        code, out, _ = await call(stack, method, p, body, token=agent)
        assert code == 403, (method, out)

    # searched and paged; another tenant sees none of it and cannot delete it
    assert [e["address"] for e in await listed(stack, admin, f"FOO-{marker}")] == [
        f"foo-{marker}@example.com"
    ]
    for n in range(3):
        await call(stack, "POST", path, {"address": f"p{n}-{marker}@example.com"}, token=admin)
    code, first, _ = await call(stack, "GET", f"{path}?query={marker}&limit=2", token=admin)
    assert code == 200 and len(first["suppressions"]) == 2 and first["next_cursor"]
    code, rest, _ = await call(
        stack, "GET", f"{path}?query={marker}&limit=2&cursor={first['next_cursor']}", token=admin
    )
    seen = [e["address"] for e in first["suppressions"] + rest["suppressions"]]
    code, last, _ = await call(
        stack, "GET", f"{path}?query={marker}&limit=2&cursor={rest['next_cursor']}", token=admin
    )
    seen += [e["address"] for e in last["suppressions"]]
    assert len(seen) == len(set(seen)) == 5 and last["next_cursor"] == ""
    assert seen[0] == f"p2-{marker}@example.com"  # newest first
    assert await listed(stack, other_admin, marker) == []
    code, _out, _ = await call(
        stack, "DELETE", f"{path}/foo-{marker}@example.com", token=other_admin
    )
    assert code == 404
    code, out, _ = await call(stack, "GET", f"{path}?cursor=garbage!", token=admin)
    assert code == 400 and out["error"]["field"] == "cursor"

    code, _out, _ = await call(stack, "DELETE", f"{path}/FOO-{marker}@example.com", token=admin)
    assert code == 204
    code, _out, _ = await call(stack, "DELETE", f"{path}/foo-{marker}@example.com", token=admin)
    assert code == 404
    code, out, _ = await call(stack, "DELETE", f"{path}/not-an-address", token=admin)
    assert code == 400 and out["error"]["field"] == "address"
    assert await listed(stack, admin, f"foo-{marker}") == []
