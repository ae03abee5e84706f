"""The first real path, through real processes: a mail sent by SMTP becomes an open
ticket listed by the gateway and pushed to connected operators."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import time
import uuid

import aiohttp
import pytest

from services.devstack.stack import Stack
from services.runtime import registry
from tests.conftest import SMTP_MAX_BYTES
from tests.helpers import all_tickets, api_get, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e


async def _find(stack: Stack, token: str, subject: str) -> list[dict]:  # type: ignore[type-arg]
    return [t for t in await all_tickets(stack, token, "open") if t["subject"] == subject]


async def test_health_reports_every_service_serving(stack: Stack) -> None:
    status, body = await stack.health()
    assert status == 200
    assert body["status"] == "ok"
    assert list(body["services"]) == list(registry.SERVICE_NAMES)  # every registered one
    assert set(body["services"].values()) == {"SERVING"}


async def test_japanese_mail_becomes_open_ticket_with_decoded_subject_and_sender(
    stack: Stack,
) -> None:
    token = await login(stack)
    subject = f"お問い合わせ {uuid.uuid4().hex[:6]} 配送について"
    msg = make_mail(
        subject,
        sender="山田 太郎 <taro@example.jp>",
        body="商品がまだ届きません。\n",
        charset="iso-2022-jp",
    )
    raw = msg.as_bytes()
    assert subject.encode() not in raw  # it travels encoded (RFC 2047), not as UTF-8
    started = time.monotonic()
    await asyncio.to_thread(send, stack.smtp_port, msg)
    [ticket] = await eventually(lambda: _find(stack, token, subject))
    elapsed = time.monotonic() - started
    assert ticket["status"] == "open"
    assert ticket["from"] == {"name": "山田 太郎", "address": "taro@example.jp"}
    assert ticket["inbox"]["name"] == "Support"
    assert ticket["assignee"] is None
    assert ticket["received_at"].endswith("Z")
    print(f"mail to listed ticket: {elapsed:.3f}s")

    code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 200
    [message] = detail["messages"]
    assert message["channel"] == "smtp"
    assert message["snippet"].startswith("商品がまだ届きません")
    assert message["parse_problems"] == []


async def test_live_websocket_pushes_the_new_ticket(stack: Stack) -> None:
    token = await login(stack, "agent2@demo.example")
    subject = f"Live push {uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello"
            assert hello["operator"]["login"] == "agent2@demo.example"
            await asyncio.to_thread(send, stack.smtp_port, make_mail(subject))
            deadline = time.monotonic() + 10
            while True:
                msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.1))
                event = json.loads(msg.data)
                if event["type"] == "ticket.created" and event["ticket"]["subject"] == subject:
                    break
    assert event["ticket"]["status"] == "open"
    assert event["ticket"]["from"]["address"] == "customer@example.com"


async def test_live_websocket_refuses_a_client_without_a_valid_token(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-a-session"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{stack.gateway_url}/api/v1/live", headers=headers)
            assert err.value.status == 401


async def test_unknown_recipient_is_refused_with_550(stack: Stack) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        await asyncio.to_thread(send, stack.smtp_port, make_mail("x"), ["nobody@demo.example"])
    assert err.value.recipients["nobody@demo.example"][0] == 550


async def test_oversized_mail_is_refused_with_552_and_creates_nothing(stack: Stack) -> None:
    token = await login(stack)
    subject = f"Too big {uuid.uuid4().hex[:8]}"
    msg = make_mail(subject, body="x" * (SMTP_MAX_BYTES + 1000))
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as err:
        await asyncio.to_thread(send, stack.smtp_port, msg)
    assert err.value.smtp_code == 552
    await asyncio.sleep(0.5)
    assert await _find(stack, token, subject) == []


async def test_recipient_lookup_trouble_answers_451_so_the_sender_retries(stack: Stack) -> None:
    accounts = stack.procs["accounts"]
    os.kill(accounts.pid, signal.SIGSTOP)  # accounts hangs: the address cannot be checked
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
            await asyncio.to_thread(
                send, stack.smtp_port, make_mail("x"), [f"new-{uuid.uuid4().hex[:6]}@demo.example"]
            )
    finally:
        os.kill(accounts.pid, signal.SIGCONT)
    [(code, _)] = err.value.recipients.values()
    assert code == 451


async def test_the_same_mail_delivered_twice_is_one_ticket(stack: Stack) -> None:
    token = await login(stack)
    subject = f"Retried delivery {uuid.uuid4().hex[:8]}"
    raw = make_mail(subject).as_bytes()
    await asyncio.to_thread(send, stack.smtp_port, raw)
    await asyncio.to_thread(send, stack.smtp_port, raw)  # e.g. the sender missed our 250
    await eventually(lambda: _find(stack, token, subject))
    await asyncio.sleep(1.0)
    assert len(await _find(stack, token, subject)) == 1


async def test_mail_to_two_inboxes_of_one_tenant_is_routed_once(stack: Stack) -> None:
    token = await login(stack)
    subject = f"To both {uuid.uuid4().hex[:8]}"
    msg = make_mail(subject, to="support@demo.example, sales@demo.example")
    await asyncio.to_thread(send, stack.smtp_port, msg)
    await eventually(lambda: _find(stack, token, subject))
    await asyncio.sleep(1.0)
    [ticket] = await _find(stack, token, subject)
    assert ticket["inbox"]["name"] == "Support"  # the first addressed inbox


async def test_api_refuses_bad_input_with_clear_errors(stack: Stack) -> None:
    token = await login(stack)
    cases = [
        ("/api/v1/tickets?status=someday", 400, "status"),
        ("/api/v1/tickets?limit=0", 400, "limit"),
        ("/api/v1/tickets?limit=ten", 400, "limit"),
        ("/api/v1/tickets?cursor=%%%", 400, "cursor"),
        ("/api/v1/tickets/not-a-uuid", 400, "ticket_id"),
        (f"/api/v1/tickets/{uuid.uuid4()}", 404, "ticket_id"),
    ]
    for path, status, field in cases:
        code, body = await api_get(stack, token, path)
        assert (code, body["error"].get("field")) == (status, field), (path, body)
        assert body["error"]["message"]


async def test_login_with_a_wrong_password_is_401_and_bad_bodies_are_400(stack: Stack) -> None:
    url = f"{stack.gateway_url}/api/v1/sessions"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"login": "agent1@demo.example", "password": "nope"}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthenticated"
        async with http.post(url, json={"login": "ghost@demo.example", "password": "nope"}) as r:
            assert r.status == 401
        json_type = {"Content-Type": "application/json"}
        async with http.post(url, data=b"{not json", headers=json_type) as r:
            assert r.status == 400
        async with http.post(url, data=b"login=a&password=b") as r:  # a cross-site form's body
            assert r.status == 415
            assert (await r.json())["error"]["code"] == "unsupported_media_type"
        async with http.post(url, json={"login": "agent1@demo.example"}) as r:
            assert r.status == 400 and (await r.json())["error"]["field"] == "password"
        async with http.get(f"{stack.gateway_url}/api/v1/tickets") as r:
            assert r.status == 401


async def test_a_browser_can_authenticate_the_websocket_by_subprotocol(stack: Stack) -> None:
    token = await login(stack)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", protocols=("switchboard.v1", f"bearer.{token}")
        ) as ws:
            assert ws.protocol == "switchboard.v1"  # the token is never echoed back
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["operator"]["login"] == "agent1@demo.example"


async def test_request_ids_are_echoed_and_garbage_ones_replaced(stack: Stack) -> None:
    token = await login(stack)
    async with aiohttp.ClientSession() as http:
        for given, kept in (("req-123.abc", True), ("café ünïcode", False), ("a" * 300, False)):
            async with http.get(
                f"{stack.gateway_url}/api/v1/tickets?limit=1",
                headers={"Authorization": f"Bearer {token}", "X-Request-Id": given},
            ) as resp:
                assert resp.status == 200, await resp.text()
                echoed = resp.headers["X-Request-Id"]
                assert (echoed == given) is kept and echoed.isascii()
