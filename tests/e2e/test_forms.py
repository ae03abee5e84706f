"""Web inquiry forms (ING-2): a public endpoint per form turns a submission into a ticket
from the submitter and announces form.submitted once; bots (honeypot), floods (rate
limit), oversized or malformed submissions and header injection get nowhere."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import nats
import pytest
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from tests.helpers import Tenant, all_tickets, api_get, create_tenant, eventually, login

pytestmark = pytest.mark.e2e


async def _form(stack: Stack, tenant: Tenant, **extra: str) -> dict[str, Any]:
    token = await login(stack, tenant.login, tenant.password)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/forms",
            json={"inbox_id": tenant.inbox_id, "name": "Contact us", **extra},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            body = await resp.json()
            assert resp.status == 201, body
            return body


async def _submit(
    stack: Stack, url: str, data: Any, *, as_json: bool = False, headers: dict | None = None
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        kw: dict[str, Any] = {"json": data} if as_json else {"data": data}
        async with http.post(
            f"{stack.gateway_url}{url}", allow_redirects=False, headers=headers or {}, **kw
        ) as resp:
            body = await resp.read()
            resp.error_field = (  # type: ignore[attr-defined]
                (await resp.json()).get("error", {}).get("field") if body.startswith(b"{") else None
            )
            return resp


@pytest.fixture
async def tenant(stack: Stack) -> Tenant:
    return await create_tenant(stack)


async def test_a_submission_becomes_a_ticket_from_the_submitter_and_is_announced(
    stack: Stack, tenant: Tenant
) -> None:
    form = await _form(stack, tenant)
    nc = await nats.connect(stack.nats_url)
    announced: list[events_pb2.EventEnvelope] = []

    async def on_msg(msg: Any) -> None:
        announced.append(events_pb2.EventEnvelope.FromString(msg.data))

    await nc.subscribe("sb.ingest.form.submitted", cb=on_msg)
    subject = f"Order question {uuid.uuid4().hex[:6]}"
    resp = await _submit(
        stack,
        form["submit_url"],
        {
            "name": "佐藤 花子\r\nBcc: victim@example.com",
            "email": "hanako@example.jp",
            "subject": subject,
            "message": "注文番号 123 について教えてください。",
            "order_number": "123",
            "website": "",
        },
    )
    assert resp.status == 201
    token = await login(stack, tenant.login, tenant.password)

    async def found() -> list[dict[str, Any]]:
        return [t for t in await all_tickets(stack, token) if t["subject"] == subject]

    [ticket] = await eventually(found)
    assert ticket["from"] == {
        "name": "佐藤 花子 Bcc: victim@example.com",
        "address": "hanako@example.jp",
    }
    code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 200
    [message] = detail["messages"]
    assert message["channel"] == "form"
    assert message["snippet"].startswith("注文番号 123 について")
    assert message["to"] == [{"name": "", "address": tenant.address}]
    assert message["cc"] == []
    await eventually(lambda: asyncio.sleep(0, bool(announced)), timeout=10)
    await nc.close()
    [event] = [e for e in announced if e.form_submitted.form_id == form["id"]]
    assert event.tenant_id == tenant.tenant_id
    assert event.form_submitted.submitter.address == "hanako@example.jp"
    assert event.form_submitted.message_id == message["id"]


async def test_the_honeypot_drops_bots_quietly(stack: Stack, tenant: Tenant) -> None:
    form = await _form(stack, tenant)
    subject = f"Cheap pills {uuid.uuid4().hex[:6]}"
    resp = await _submit(
        stack,
        form["submit_url"],
        {"email": "bot@spam.example", "subject": subject, "message": "buy", "website": "x"},
    )
    assert resp.status == 201  # the bot learns nothing
    await asyncio.sleep(1.5)
    token = await login(stack, tenant.login, tenant.password)
    assert not [t for t in await all_tickets(stack, token) if t["subject"] == subject]


async def test_bad_submissions_are_refused_with_the_field_named(
    stack: Stack, tenant: Tenant
) -> None:
    form = await _form(stack, tenant)
    url = form["submit_url"]
    ok = {"email": "a@example.com", "message": "hi"}
    for data, status, field in [
        ({"message": "hi"}, 400, "email"),
        ({"email": "a@example.com\r\nBcc: x@y.z", "message": "hi"}, 400, "email"),
        ({"email": "a@example.com"}, 400, "message"),
    ]:
        resp = await _submit(stack, url, data)
        assert (resp.status, resp.error_field) == (status, field), data  # type: ignore[attr-defined]
    resp = await _submit(stack, url, {**ok, "message": "x" * 70_000})
    assert resp.status == 413
    resp = await _submit(stack, f"/api/v1/forms/{uuid.uuid4()}/submissions", ok)
    assert resp.status == 404
    resp = await _submit(
        stack, url, b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 400
    resp = await _submit(stack, url, b"<xml/>", headers={"Content-Type": "text/xml"})
    assert resp.status == 415
    resp = await _submit(stack, url, {**ok, "extra": 5}, as_json=True)
    assert resp.status == 400
    await stack.wait_healthy(timeout=10)


async def test_a_browser_is_redirected_and_floods_are_limited(stack: Stack, tenant: Tenant) -> None:
    form = await _form(stack, tenant, redirect_url="https://shop.example/thanks")
    ok = {"email": "a@example.com", "message": "hi"}
    resp = await _submit(stack, form["submit_url"], ok)
    assert resp.status == 303 and resp.headers["Location"] == "https://shop.example/thanks"
    statuses = [
        (
            await _submit(stack, form["submit_url"], {**ok, "message": f"hi {i}"}, as_json=True)
        ).status
        for i in range(12)
    ]
    assert statuses[:9] == [201] * 9 and statuses[-1] == 429  # 10 a minute per client


async def test_only_administrators_manage_forms(stack: Stack, tenant: Tenant) -> None:
    agent = await login(stack)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/forms",
            json={"inbox_id": tenant.inbox_id, "name": "x"},
            headers={"Authorization": f"Bearer {agent}"},
        ) as resp:
            assert resp.status == 403
    token = await login(stack, tenant.login, tenant.password)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/forms",
            json={"inbox_id": tenant.inbox_id, "name": "x", "redirect_url": "javascript:alert(1)"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["field"] == "redirect_url"
