"""The rule actions with effects outside the ticket (issue 18) on the real stack: a rule's
automatic reply reaches the SMTP catcher once through outbound's loop-safe path (and
never answers an automatic mail), a notify action reaches the named operators' live
sockets, a webhook reaches a local receiver signed, is retried after the receiver fails
and lands in the dead letters when it keeps failing (then retried by hand); bad input is
a 400 naming the field with nothing saved. Each test works in a tenant of its own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.devstack.infra import free_port
from services.devstack.stack import Stack
from services.routing import webhook_sign
from tests.e2e.test_access import own_operator
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_compose import CUSTOMER, mail_ticket
from tests.helpers import eventually, make_mail, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


def _rule(name: str, word: str, *actions: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "subject", "operator": "contains", "value": word}],
        },
        "actions": list(actions),
        **more,
    }


async def _audit(stack: Stack, token: str, ticket_id: str) -> list[str]:
    code, body, _ = await call(
        stack, "GET", f"/api/v1/tickets/{ticket_id}/audit?limit=200", token=token
    )
    assert code == 200, body
    return [e["comment"] for e in body["items"] if e["comment"]]


async def _rules(stack: Stack, token: str) -> list[dict[str, Any]]:
    code, body, _ = await call(stack, "GET", "/api/v1/rules", token=token)
    assert code == 200, body
    return list(body["rules"])


async def _template(stack: Stack, admin: str) -> str:
    code, tpl, _ = await call(
        stack,
        "POST",
        "/api/v1/templates",
        {
            "name": f"返品受付 {uuid.uuid4().hex[:4]}",
            "subject": "【返品受付】{{original.subject}}",
            "body_text": "{{customer.name}} 様\n返品のご依頼を受け付けました。",
        },
        token=admin,
    )
    assert code == 201, tpl
    return str(tpl["id"])


async def test_an_auto_reply_rule_answers_once_through_the_loop_safe_path(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    missing = str(uuid.uuid4())
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/rules",
        _rule("返品受付", "返品", {"type": "auto_reply", "value": missing}),
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "actions[0].value", body
    assert "template" in body["error"]["message"]
    assert await _rules(stack, admin) == []

    tpl = await _template(stack, admin)
    code, rule, _ = await call(
        stack,
        "POST",
        "/api/v1/rules",
        _rule("返品受付", "返品", {"type": "auto_reply", "value": tpl}),
        token=admin,
    )
    assert code == 201, rule
    assert rule["actions"] == [{"type": "auto_reply", "value": tpl}]

    subject = f"返品したい {uuid.uuid4().hex[:6]}"
    ticket = await mail_ticket(stack, tenant, admin, subject)

    async def answered() -> Any:
        return [r for r in smtp_peer.to("taro@customer.example") if subject in r.message["Subject"]]

    [reply] = await eventually(answered, timeout=30)
    assert reply.message["Auto-Submitted"] == "auto-replied"
    assert str(reply.message["Subject"]) == f"【返品受付】{subject}"
    assert "Taro Yamada 様" in reply.message.get_body(("plain",)).get_content()
    assert f"rule 返品受付: automatic reply with template {tpl}" in await _audit(
        stack, admin, ticket["id"]
    )

    # an automatic mail matching the rule: the rule runs (audit), nothing is sent to it
    robot_subject = f"返品 out of office {uuid.uuid4().hex[:6]}"
    robot = make_mail(robot_subject, sender="robot@other.example", to=tenant.address)
    robot["Auto-Submitted"] = "auto-replied"
    await asyncio.to_thread(send, stack.smtp_port, robot, [tenant.address])
    robot_ticket = await eventually(lambda: _ticket(stack, admin, robot_subject), timeout=30)
    assert any(
        c.startswith("rule 返品受付: automatic reply with template")
        for c in await _audit(stack, admin, robot_ticket["id"])
    )
    # a mail another rule marks as spam: the ticket is in the trash, nothing is sent
    code, spam_rule, _ = await call(
        stack, "POST", "/api/v1/rules", _rule("迷惑", "当選", {"type": "mark_spam"}), token=admin
    )
    assert code == 201, spam_rule
    spam_subject = f"返品 当選 {uuid.uuid4().hex[:6]}"
    spam = make_mail(spam_subject, sender="lucky@spam.example", to=tenant.address)
    await asyncio.to_thread(send, stack.smtp_port, spam, [tenant.address])

    async def trashed() -> Any:
        _code, body, _ = await call(stack, "GET", "/api/v1/tickets?status=trash", token=admin)
        return [t for t in body["items"] if t["subject"] == spam_subject]

    await eventually(trashed, timeout=30)
    await asyncio.sleep(2)  # time for a wrong reply to go out, which must not
    assert not smtp_peer.to("robot@other.example")
    assert not smtp_peer.to("lucky@spam.example")
    code, sends, _ = await call(stack, "GET", "/api/v1/sends?limit=200", token=admin)
    assert [s["ticket_id"] for s in sends["items"] if s["kind"] == "auto_reply"] == [ticket["id"]]
    assert len(await answered()) == 1


async def _ticket(stack: Stack, token: str, subject: str) -> dict[str, Any] | None:
    code, body, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=token)
    assert code == 200, body
    return next((t for t in body["items"] if t["subject"] == subject), None)


async def _notes(ws: aiohttp.ClientWebSocketResponse, until: str, wait_s: float) -> list[Any]:
    """The pushes of `ws` until one mentions `until` and `wait_s` more seconds."""
    got: list[Any] = []
    loop = asyncio.get_running_loop()
    end: float | None = None
    while end is None or loop.time() < end:
        try:
            msg = await ws.receive(timeout=(end - loop.time()) if end else 20)
        except TimeoutError:
            break
        got.append(json.loads(msg.data))
        if end is None and until in msg.data:
            end = loop.time() + wait_s
    return got


async def test_a_notify_rule_reaches_the_named_operators_sockets_only(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    _sup_id, _l, supervisor = await own_operator(stack, admin, tenant, roles=["supervisor"])
    agent_id, _l, agent = await own_operator(stack, admin, tenant, roles=["agent"])
    bad = _rule("VIP", "至急", {"type": "notify", "value": "見てください", "to": ["everyone"]})
    code, body, _ = await call(stack, "POST", "/api/v1/rules", bad, token=admin)
    assert code == 400 and body["error"]["field"] == "actions[0].to[0]", body
    unknown = {"type": "notify", "value": "x", "to": [f"operator:{uuid.uuid4()}"]}
    code, body, _ = await call(
        stack, "POST", "/api/v1/rules", _rule("VIP", "至急", unknown), token=admin
    )
    assert code == 400 and body["error"]["field"] == "actions[0].to[0]", body
    assert await _rules(stack, admin) == []

    notify = {"type": "notify", "value": "至急の問い合わせです", "to": ["role:supervisor"]}
    code, rule, _ = await call(
        stack, "POST", "/api/v1/rules", _rule("至急通知", "至急", notify), token=admin
    )
    assert code == 201, rule
    assert rule["actions"] == [notify]

    subject = f"至急お願いします {uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        url = f"{stack.gateway_url}/api/v1/live"
        async with (
            http.ws_connect(url, headers={"Authorization": f"Bearer {supervisor}"}) as sup_ws,
            http.ws_connect(url, headers={"Authorization": f"Bearer {agent}"}) as agent_ws,
        ):
            await sup_ws.receive(timeout=5)  # hello
            await agent_ws.receive(timeout=5)
            msg = make_mail(subject, sender=CUSTOMER, to=tenant.address)
            await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
            sup_got, agent_got = await asyncio.gather(
                _notes(sup_ws, '"kind": "rule"', 0.5), _notes(agent_ws, subject, 2.0)
            )
    [note] = [n for n in sup_got if n.get("type") == "notification"]
    assert note["kind"] == "rule"
    assert note["message"] == "至急の問い合わせです"
    assert note["rule"] == {"id": rule["id"], "name": "至急通知"}
    assert note["trigger"] == "new_ticket"
    assert note["ticket"]["subject"] == subject
    assert any(subject in json.dumps(n, ensure_ascii=False) for n in agent_got)  # it saw the ticket
    assert not [n for n in agent_got if n.get("type") == "notification"]
    assert agent_id


@dataclass
class Receiver:
    """A local webhook receiver: answers each POST with the next of `answers` (then the
    last one), keeping what came."""

    answers: list[int] = field(default_factory=lambda: [200])
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        status = self.answers[min(len(self.got), len(self.answers)) - 1]
        return web.Response(status=status, text="ok" if status < 300 else "no")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@asynccontextmanager
async def receiver(*answers: int) -> AsyncIterator[Receiver]:
    r = Receiver(answers=list(answers) or [200], port=free_port())
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", r.port)
    await site.start()
    try:
        yield r
    finally:
        await runner.cleanup()


def _now(check: Any) -> Any:
    """`check()` as a probe for `eventually`."""

    async def probe() -> Any:
        return check()

    return probe


async def _deliveries(stack: Stack, token: str, state: str) -> list[dict[str, Any]]:
    code, body, _ = await call(
        stack, "GET", f"/api/v1/rules/webhook-deliveries?state={state}", token=token
    )
    assert code == 200, body
    return list(body["deliveries"])


async def test_a_webhook_is_signed_retried_after_a_failure_and_dead_lettered(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/rules",
        _rule("hook", "返品", {"type": "webhook", "value": "ftp://hooks.example/x"}),
        token=admin,
    )
    assert code == 400 and body["error"]["field"] == "actions[0].value", body
    assert await _rules(stack, admin) == []
    code, body, _ = await call(
        stack, "GET", "/api/v1/rules/webhook-deliveries?state=x", token=admin
    )
    assert code == 400 and body["error"]["field"] == "state", body

    code, none, _ = await call(stack, "GET", "/api/v1/rules/webhook-secret", token=admin)
    assert code == 200 and none["configured"] is False, none
    code, made, _ = await call(stack, "POST", "/api/v1/rules/webhook-secret", token=admin)
    assert code == 200, made
    secret = made["secret"]
    assert secret.startswith("whsec_") and made["hint"] == "…" + secret[-4:]
    code, shown, _ = await call(stack, "GET", "/api/v1/rules/webhook-secret", token=admin)
    assert shown == {"configured": True, "hint": made["hint"], "created_at": made["created_at"]}

    async with receiver(500, 200) as flaky, receiver(503) as broken:
        for name, word, url in (
            ("返品フック", "返品", flaky.url),
            ("壊れたフック", "故障", broken.url),
        ):
            code, rule, _ = await call(
                stack,
                "POST",
                "/api/v1/rules",
                _rule(name, word, {"type": "webhook", "value": url}),
                token=admin,
            )
            assert code == 201, rule
        subject = f"返品の件 {uuid.uuid4().hex[:6]}"
        ticket = await mail_ticket(stack, tenant, admin, subject)
        await eventually(_now(lambda: len(flaky.got) >= 2), timeout=30)
        # the failed attempt and its retry: the same delivery, both validly signed
        for headers, raw in flaky.got:
            assert webhook_sign.verify(
                secret,
                headers["X-Switchboard-Timestamp"],
                raw,
                headers["X-Switchboard-Signature"],
            )
            assert not webhook_sign.verify(
                "whsec_other",
                headers["X-Switchboard-Timestamp"],
                raw,
                headers["X-Switchboard-Signature"],
            )
        assert flaky.got[0][1] == flaky.got[1][1]
        payload = json.loads(flaky.got[0][1])
        assert payload["type"] == "rule.webhook" and payload["trigger"] == "new_ticket"
        assert payload["rule"]["name"] == "返品フック"
        assert payload["ticket"]["id"] == ticket["id"]
        assert payload["ticket"]["number"] == ticket["number"]
        assert payload["ticket"]["subject"] == subject
        assert payload["ticket"]["inbox"] == {"id": tenant.inbox_id, "name": "Help"}
        assert flaky.got[0][0]["X-Switchboard-Delivery"] == payload["id"]

        async def delivered() -> Any:
            return [
                d for d in await _deliveries(stack, admin, "delivered") if d["id"] == payload["id"]
            ]

        [done] = await eventually(delivered, timeout=15)
        assert done["attempts"] == 2 and done["ticket"]["number"] == ticket["number"]
        assert any(
            c == f"rule 返品フック: call webhook {flaky.url}"
            for c in await _audit(stack, admin, ticket["id"])
        )

        # a receiver that keeps failing: dead after 3 attempts, listed, retried by hand
        await mail_ticket(stack, tenant, admin, f"故障です {uuid.uuid4().hex[:6]}")
        [dead] = await eventually(lambda: _deliveries(stack, admin, "dead"), timeout=30)
        assert (dead["attempts"], dead["last_error"], dead["rule"]["name"]) == (
            3,
            "HTTP 503",
            "壊れたフック",
        )
        assert len(broken.got) == 3
        assert secret not in json.dumps(dead)
        code, body, _ = await call(
            stack, "POST", f"/api/v1/rules/webhook-deliveries/{done['id']}/retry", token=admin
        )
        assert code == 409 and body["error"]["field"] == "state", body
        code, body, _ = await call(
            stack, "POST", f"/api/v1/rules/webhook-deliveries/{uuid.uuid4()}/retry", token=admin
        )
        assert code == 404, body
        broken.answers = [204]
        code, again, _ = await call(
            stack, "POST", f"/api/v1/rules/webhook-deliveries/{dead['id']}/retry", token=admin
        )
        assert code == 200 and again["state"] == "pending", again
        await eventually(_now(lambda: len(broken.got) == 4), timeout=15)

        async def redelivered() -> Any:
            return [
                d for d in await _deliveries(stack, admin, "delivered") if d["id"] == dead["id"]
            ]

        await eventually(redelivered, timeout=15)
        assert await _deliveries(stack, admin, "dead") == []


async def test_a_webhook_to_a_loopback_address_not_allowed_is_dead_at_once(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    async with receiver(200) as r:
        # 127.0.0.2 is loopback too, but only 127.0.0.1 is allow-listed (SB_CONNECT_ALLOW)
        url = r.url.replace("127.0.0.1", "127.0.0.2")
        code, rule, _ = await call(
            stack,
            "POST",
            "/api/v1/rules",
            _rule("内部", "内部", {"type": "webhook", "value": url}),
            token=admin,
        )
        assert code == 201, rule
        await mail_ticket(stack, tenant, admin, f"内部 {uuid.uuid4().hex[:6]}")
        [dead] = await eventually(lambda: _deliveries(stack, admin, "dead"), timeout=30)
        assert dead["attempts"] == 1
        assert dead["last_error"].startswith("address not allowed"), dead
        assert r.got == []


async def test_a_ticket_changed_rule_replies_to_the_latest_customer_mail_and_calls_its_webhook(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    """The same actions from a decision on a stored ticket (ApplyRoutingDecision)."""
    tenant, admin = await admin_of(stack)
    tpl = await _template(stack, admin)
    async with receiver(200) as r:
        rule = {
            "name": "エスカレーション",
            "triggers": ["ticket_changed"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "labels", "operator": "equals", "value": "escalate"}],
            },
            "actions": [
                {"type": "auto_reply", "value": tpl},
                {"type": "webhook", "value": r.url},
            ],
            "once_per_ticket": True,
        }
        code, made, _ = await call(stack, "POST", "/api/v1/rules", rule, token=admin)
        assert code == 201, made
        subject = f"配送の件 {uuid.uuid4().hex[:6]}"
        ticket = await mail_ticket(stack, tenant, admin, subject)
        code, body, _ = await call(
            stack,
            "PATCH",
            f"/api/v1/tickets/{ticket['id']}",
            {"add_labels": ["escalate"]},
            token=admin,
        )
        assert code == 200, body
        await eventually(_now(lambda: r.got), timeout=30)
        payload = json.loads(r.got[0][1])
        assert payload["trigger"] == "ticket_changed"
        assert payload["ticket"]["number"] == ticket["number"]

        async def answered() -> Any:
            return [
                m for m in smtp_peer.to("taro@customer.example") if subject in m.message["Subject"]
            ]

        [reply] = await eventually(answered, timeout=30)
        assert reply.message["Auto-Submitted"] == "auto-replied"
        audit = await _audit(stack, admin, ticket["id"])
        assert f"rule エスカレーション: call webhook {r.url}" in audit
        await asyncio.sleep(1.5)
        assert len(r.got) == 1 and len(await answered()) == 1
