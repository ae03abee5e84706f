"""Agentless notifications (issue 20, OUT-6) on the running system, to the aiosmtpd peer,
called with a personal API token: sent exactly once per idempotency key — a repeated
request answers the first notification and sends nothing, ten concurrent ones send one
mail, the same key with another request is a 409; a composition template's words are
filled in; the state follows the mail (sent, bounced); bad input is a 400 naming the
field and stores nothing; a bounced address gets nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk
from tests.e2e.test_unsubscribe import dsn
from tests.helpers import Tenant, eventually, send
from tests.smtp_peer import Received, SmtpPeer

pytestmark = pytest.mark.e2e
PATH = "/api/v1/notifications"


async def api_token(stack: Stack, session: str) -> str:
    code, made, _ = await call(
        stack,
        "POST",
        "/api/v1/me/tokens",
        {"name": "notifications", "expires_in_days": 7},
        token=session,
    )
    assert code == 201, made
    return str(made["secret"])


def request(tenant: Tenant, marker: str, **over: Any) -> dict[str, Any]:
    return {
        "inbox_id": tenant.inbox_id,
        "to": {"address": f"hanako-{marker}@customer.example", "name": "山田 花子"},
        "subject": "ご注文 {{var.order}} を発送しました",
        "body": (
            "{{to.name}} 様\n\nご注文 {{ var.order }}（{{var.count}} 点）を発送しました。\n"
            "{{inbox.name}}"
        ),
        "variables": {"order": f"A-{marker}", "count": 3},
        **over,
    }


def mails_to(peer: SmtpPeer, address: str) -> list[Received]:
    return [r for r in peer.received if address in r.rcpt_tos]


async def state(stack: Stack, token: str, notification_id: str, *states: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        code, got, _ = await call(stack, "GET", f"{PATH}/{notification_id}", token=token)
        assert code == 200, got
        return got if got["state"] in states else None

    result: dict[str, Any] = await eventually(probe, timeout=30, every=0.1)
    return result


async def test_sent_once_per_key_and_a_repeated_key_answers_the_first(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    token = await api_token(stack, admin)
    marker = uuid.uuid4().hex[:8]
    body = request(tenant, marker, idempotency_key=f"order-{marker}-shipped")
    code, first, _ = await call(stack, "POST", PATH, body, token=token)
    assert code == 202, first
    # accepted: queued — or already on its way, the dispatcher being woken at once
    assert first["state"] in ("queued", "sent"), first
    assert first["subject"] == f"ご注文 A-{marker} を発送しました"
    assert first["to"] == body["to"] and first["idempotency_key"] == body["idempotency_key"]
    done = await state(stack, token, first["id"], "sent")
    assert done["sent_at"] and done["error"] == ""
    address = body["to"]["address"]
    [mail] = mails_to(smtp_peer, address)
    msg = mail.message
    assert mail.mail_from == tenant.address and msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    assert "山田 花子 様" in text and f"ご注文 A-{marker}（3 点）" in text

    # the same request again (the body's key, or the header): the first, nothing sent
    code, again, _ = await call(stack, "POST", PATH, body, token=token)
    assert code == 200 and again["id"] == first["id"] and again["state"] == "sent"
    no_key = {k: v for k, v in body.items() if k != "idempotency_key"}
    code, again, _ = await call(
        stack,
        "POST",
        PATH,
        no_key,
        token=token,
        headers={"Idempotency-Key": body["idempotency_key"]},
    )
    assert code == 200 and again["id"] == first["id"]
    # the same key for something else: 409 naming it
    changed = {**body, "variables": {"order": "B-1", "count": 1}}
    code, out, _ = await call(stack, "POST", PATH, changed, token=token)
    assert code == 409 and out["error"]["field"] == "idempotency_key"
    assert body["idempotency_key"] in out["error"]["message"]
    code, out, _ = await call(
        stack, "POST", PATH, body, token=token, headers={"Idempotency-Key": "another"}
    )
    assert code == 400 and out["error"]["field"] == "idempotency_key"
    await asyncio.sleep(1.5)
    assert len(mails_to(smtp_peer, address)) == 1

    # listed, newest first, in pages; agents may not; another tenant sees nothing
    code, listed, _ = await call(stack, "GET", f"{PATH}?state=sent&limit=1", token=token)
    assert code == 200 and [n["id"] for n in listed["notifications"]] == [first["id"]]
    _other, other_admin, agent, _ = await desk(stack)
    code, listed, _ = await call(stack, "GET", PATH, token=other_admin)
    assert code == 200 and listed["notifications"] == []
    code, _out, _ = await call(stack, "GET", f"{PATH}/{first['id']}", token=other_admin)
    assert code == 404
    code, _out, _ = await call(stack, "POST", PATH, {**body, "idempotency_key": "x"}, token=agent)
    assert code == 403


async def test_ten_concurrent_requests_with_one_key_send_one_mail(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    token = await api_token(stack, admin)
    marker = uuid.uuid4().hex[:8]
    body = request(tenant, marker, idempotency_key=f"burst-{marker}")
    results = await asyncio.gather(
        *(call(stack, "POST", PATH, body, token=token) for _ in range(10))
    )
    codes = sorted(code for code, _out, _h in results)
    assert codes == [200] * 9 + [202], [out for _c, out, _h in results]
    assert len({out["id"] for _c, out, _h in results}) == 1
    await state(stack, token, results[0][1]["id"], "sent")
    await asyncio.sleep(1.5)
    assert len(mails_to(smtp_peer, body["to"]["address"])) == 1


async def test_a_template_is_filled_in_and_unknown_words_are_refused(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    marker = uuid.uuid4().hex[:8]
    template = {
        "name": f"発送のお知らせ {marker}",
        "subject": "【{{inbox.name}}】発送のお知らせ {{var.order}}",
        "body_text": (
            "{{customer.name}} 様\n\nご注文 {{var.order}} を発送しました。\n宛先: {{to.address}}"
        ),
    }
    code, made, _ = await call(stack, "POST", "/api/v1/templates", template, token=admin)
    assert code == 201, made
    body = request(tenant, marker, idempotency_key=f"t-{marker}", template_id=made["id"])
    del body["subject"], body["body"]
    code, out, _ = await call(stack, "POST", PATH, body, token=admin)
    assert code == 202, out
    assert (
        out["subject"].endswith(f"発送のお知らせ A-{marker}") and out["template_id"] == made["id"]
    )
    await state(stack, admin, out["id"], "sent")
    [mail] = mails_to(smtp_peer, body["to"]["address"])
    text = mail.message.get_body(("plain",)).get_content()
    assert "山田 花子 様" in text and f"ご注文 A-{marker} を発送しました" in text
    assert f"宛先: hanako-{marker}@customer.example" in text

    # a template with a word of replies (a ticket's) cannot serve: 400, nothing stored
    code, reply_words, _ = await call(
        stack,
        "POST",
        "/api/v1/templates",
        {"name": f"返信 {marker}", "subject": "#{{ticket.number}}", "body_text": "x"},
        token=admin,
    )
    assert code == 201
    key = f"t2-{marker}"
    code, out, _ = await call(
        stack,
        "POST",
        PATH,
        {**body, "template_id": reply_words["id"], "idempotency_key": key},
        token=admin,
    )
    assert code == 400 and out["error"]["field"] == "template_id"
    assert "ticket.number" in out["error"]["message"]
    code, out, _ = await call(stack, "POST", PATH, {**body, "idempotency_key": key}, token=admin)
    assert code == 202  # the key was not taken by the refused request


async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    marker = uuid.uuid4().hex[:8]
    key = f"bad-{marker}"
    good = request(tenant, marker, idempotency_key=key)
    for over, field in (
        ({"body": "{{var.missing}} です"}, "variables.missing"),
        ({"subject": "{{order}}"}, "subject"),
        ({"body": "{{ticket.number}}"}, "body"),
        ({"variables": {"Order": "x"}}, "variables"),
        ({"to": {"address": "not an address"}}, "to.address"),
        ({"to": {"address": "Hanako <h@customer.example>"}}, "to.address"),
        ({"to": {"address": "h@customer.example", "name": "a\r\nBcc: x@evil.example"}}, "to.name"),
        ({"subject": ""}, "subject"),
        ({"inbox_id": str(uuid.uuid4())}, "inbox_id"),
        ({"idempotency_key": "with space"}, "idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"template_id": str(uuid.uuid4())}, "template_id"),
        ({"surprise": 1}, "surprise"),
    ):
        code, out, _ = await call(stack, "POST", PATH, {**good, **over}, token=admin)
        assert code in (400, 404), (over, out)
        assert out["error"]["field"].startswith(field), (over, out)
    no_key = {k: v for k, v in good.items() if k != "idempotency_key"}
    code, out, _ = await call(stack, "POST", PATH, no_key, token=admin)
    assert code == 400 and out["error"]["field"] == "idempotency_key"
    code, listed, _ = await call(stack, "GET", PATH, token=admin)
    assert listed["notifications"] == []
    assert mails_to(smtp_peer, good["to"]["address"]) == []
    code, _out, _ = await call(stack, "GET", f"{PATH}/{uuid.uuid4()}", token=admin)
    assert code == 404
    code, out, _ = await call(stack, "GET", f"{PATH}?state=lost", token=admin)
    assert code == 400 and out["error"]["field"] == "state"
    # the key is still free
    code, out, _ = await call(stack, "POST", PATH, good, token=admin)
    assert code == 202, out


async def test_a_bounce_is_the_notifications_state_and_a_bounced_address_gets_nothing(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    marker = uuid.uuid4().hex[:8]
    body = request(tenant, marker, idempotency_key=f"b-{marker}")
    address = body["to"]["address"]
    code, first, _ = await call(stack, "POST", PATH, body, token=admin)
    assert code == 202, first
    await state(stack, admin, first["id"], "sent")
    [mail] = mails_to(smtp_peer, address)
    await asyncio.to_thread(
        send,
        stack.smtp_port,
        dsn(tenant.address, address, mail.message_id, "5.1.1"),
        [tenant.address],
    )
    bounced = await state(stack, admin, first["id"], "bounced")
    assert "5.1.1" in bounced["error"]
    code, listed, _ = await call(stack, "GET", f"/api/v1/suppressions?query={marker}", token=admin)
    assert [(e["address"], e["reason"]) for e in listed["suppressions"]] == [(address, "bounced")]

    code, second, _ = await call(
        stack, "POST", PATH, {**body, "idempotency_key": f"b2-{marker}"}, token=admin
    )
    assert code == 202 and second["state"] == "failed" and "bounced" in second["error"]
    await asyncio.sleep(1.5)
    assert len(mails_to(smtp_peer, address)) == 1
