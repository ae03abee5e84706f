"""Composing replies through the gateway (issue 6), on the running system: templates
shared the moment they are saved, reserved words filled in from the ticket, suggestions,
drafts that need the reply lock's fence and keep every revision, attachments carried over
on forwarding, pre-send checks, the preview of the exact mail, diffs — and a ticket marked
as editing while a draft is open."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.e2e.test_access import operator_token, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import Tenant, eventually, make_mail, send

pytestmark = pytest.mark.e2e

CUSTOMER = "Taro Yamada <taro@customer.example>"


async def desk(stack: Stack) -> tuple[Tenant, str, str, str]:
    """A tenant with its administrator, an agent and a supervisor (logged in)."""
    tenant, admin = await admin_of(stack)
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    supervisor = await operator_token(stack, admin, tenant, roles=["supervisor"])
    return tenant, admin, agent, supervisor


async def mail_ticket(
    stack: Stack, tenant: Tenant, token: str, subject: str, body: str = "Hello\n", **kw: Any
) -> dict[str, Any]:
    msg = kw.pop("msg", None) or make_mail(
        subject, sender=CUSTOMER, to=tenant.address, body=body, **kw
    )
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    return await ticket_by_subject(stack, token, subject)


async def lock(stack: Stack, token: str, ticket_id: str) -> int:
    code, body, _ = await call(stack, "POST", f"/api/v1/tickets/{ticket_id}/lock", token=token)
    assert code == 200, body
    return int(body["fence"])


async def test_templates_are_shared_at_once_and_filled_in_from_the_ticket(stack: Stack) -> None:
    tenant, admin, agent, _ = await desk(stack)
    code, folder, _ = await call(
        stack, "POST", "/api/v1/template-folders", {"name": "配送"}, token=admin
    )
    assert code == 201
    template = {
        "name": "配送遅延のお詫び",
        "folder_id": folder["id"],
        "subject": "【{{inbox.name}}】#{{ticket.number}} {{original.subject}}",
        "body_text": (
            "{{customer.name}} 様\n\n{{today}}\nご連絡が遅れ申し訳ございません。\n"
            "担当: {{operator.name}}\n{{customer.age}}"
        ),
        "keywords": ["配送", "届かない"],
    }
    assert (await call(stack, "POST", "/api/v1/templates", template, token=agent))[0] == 403
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {agent}"}
        ) as ws:
            await ws.receive(timeout=5)  # hello
            code, made, _ = await call(stack, "POST", "/api/v1/templates", template, token=admin)
            assert code == 201 and made["version"] == 1
            pushed = json.loads((await ws.receive(timeout=10)).data)
            assert pushed["type"] == "template.changed" and pushed["template_id"] == made["id"]
            assert pushed["action"] == "created"
    code, listed, _ = await call(stack, "GET", "/api/v1/templates?q=お詫び", token=agent)
    assert [t["id"] for t in listed["items"]] == [made["id"]]
    code, listed, _ = await call(
        stack, "GET", f"/api/v1/templates?folder_id={folder['id']}", token=agent
    )
    assert [t["name"] for t in listed["items"]] == ["配送遅延のお詫び"]

    ticket = await mail_ticket(stack, tenant, agent, f"商品が届かない {uuid.uuid4().hex[:4]}")
    code, rendered, _ = await call(
        stack,
        "POST",
        f"/api/v1/templates/{made['id']}/render",
        {"ticket_id": ticket["id"], "use": True},
        token=agent,
    )
    assert code == 200, rendered
    assert rendered["subject"] == f"【Help】#{ticket['number']} {ticket['subject']}"
    assert rendered["body_text"].startswith("Taro Yamada 様\n\n20")
    assert "担当: New Operator" in rendered["body_text"]
    assert "{{customer.age}}" in rendered["body_text"]
    assert [(p["word"], p["reason"]) for p in rendered["problems"]] == [("customer.age", "unknown")]
    code, again, _ = await call(stack, "GET", f"/api/v1/templates/{made['id']}", token=agent)
    assert again["usage_count"] == 1

    # saving with a stale version is refused; a good save is version 2
    stale = {**template, "expected_version": 1}
    code, saved, _ = await call(stack, "PUT", f"/api/v1/templates/{made['id']}", stale, token=admin)
    assert code == 200 and saved["version"] == 2
    code, body, _ = await call(stack, "PUT", f"/api/v1/templates/{made['id']}", stale, token=admin)
    assert code == 409 and body["error"]["field"] == "expected_version"
    code, body, _ = await call(
        stack, "DELETE", f"/api/v1/template-folders/{folder['id']}", token=admin
    )
    assert code == 409  # not empty


async def test_suggestions_rank_the_matching_template_first(stack: Stack) -> None:
    tenant, admin, agent, _ = await desk(stack)
    for name, body, keywords in (
        ("返金のご案内", "返金の手続きをご案内いたします。", ["返金", "キャンセル"]),
        ("配送状況のご案内", "配送状況を確認いたしました。", ["配送", "届かない", "到着"]),
        ("Password reset", "To reset your password, follow the link.", ["password", "login"]),
    ):
        code, _, _ = await call(
            stack,
            "POST",
            "/api/v1/templates",
            {"name": name, "subject": name, "body_text": body, "keywords": keywords},
            token=admin,
        )
        assert code == 201
    ja = await mail_ticket(
        stack,
        tenant,
        agent,
        f"注文の件 {uuid.uuid4().hex[:4]}",
        body="先週注文した商品がまだ届かないのですが、配送状況を教えてください。",
        charset="utf-8",
    )
    code, found, _ = await call(
        stack, "GET", f"/api/v1/tickets/{ja['id']}/template-suggestions", token=agent
    )
    assert code == 200 and found["items"][0]["template"]["name"] == "配送状況のご案内"
    assert set(found["items"][0]["matched_keywords"]) >= {"配送", "届かない"}
    en = await mail_ticket(
        stack,
        tenant,
        agent,
        f"Cannot login {uuid.uuid4().hex[:4]}",
        body="I forgot my password.",
    )
    code, found, _ = await call(
        stack, "GET", f"/api/v1/tickets/{en['id']}/template-suggestions?limit=1", token=agent
    )
    assert [s["template"]["name"] for s in found["items"]] == ["Password reset"]


async def test_a_reply_draft_needs_the_fence_and_keeps_every_revision(stack: Stack) -> None:
    tenant, admin, agent, supervisor = await desk(stack)
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/signatures",
        {"inbox_id": tenant.inbox_id, "body_text": "--\n{{inbox.name}} {{operator.name}}"},
        token=admin,
    )
    assert code == 200
    subject = f"Where is my order {uuid.uuid4().hex[:4]}"
    msg = make_mail(subject, sender=CUSTOMER, to=tenant.address, body="It has not come.\n")
    msg["Cc"] = "Hanako <hanako@customer.example>"
    ticket = await mail_ticket(stack, tenant, agent, subject, msg=msg)
    tid = ticket["id"]

    code, body, _ = await call(
        stack, "POST", f"/api/v1/tickets/{tid}/drafts", {"kind": "reply", "fence": 1}, token=agent
    )
    assert code == 409  # no lock held
    fence = await lock(stack, agent, tid)
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{tid}/drafts",
        {"kind": "reply_all", "fence": fence, "include_quote": True},
        token=agent,
    )
    assert code == 201, draft
    cur = draft["current"]
    assert cur["to"] == ["Taro Yamada <taro@customer.example>"]
    assert cur["cc"] == ["Hanako <hanako@customer.example>"]
    assert cur["from_address"] == tenant.address
    assert cur["subject"] == f"Re: {subject}"
    assert cur["signature_text"] == "--\nHelp New Operator"
    assert "> It has not come." in cur["quote_text"] and cur["include_quote"]

    # released lock: still "editing", because a draft is open
    await call(stack, "DELETE", f"/api/v1/tickets/{tid}/lock?fence={fence}", token=agent)

    async def marked() -> bool:
        _code, row, _ = await call(stack, "GET", f"/api/v1/tickets/{tid}", token=agent)
        return bool(row["editing"]) and row["lock"] is None

    await eventually(marked)
    fence = await lock(stack, agent, tid)

    save = {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "Help",
        "to": cur["to"],
        "cc": [],
        "subject": cur["subject"],
        "body_text": "Thank you. We will reply soon.",
        "signature_text": cur["signature_text"],
        "include_quote": True,
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 200 and saved["current"]["revision"] == 2
    code, saved, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {**save, "body_text": "Thank you. We will reply within a day."},
        token=agent,
    )
    assert saved["current"]["revision"] == 3 and len(saved["revisions"]) == 3

    # a supervisor takes the lock over: the agent's fence is stale from now on
    code, taken, _ = await call(
        stack, "POST", f"/api/v1/tickets/{tid}/lock/takeover", token=supervisor
    )
    assert code == 200
    code, body, _ = await call(
        stack, "PUT", f"/api/v1/drafts/{draft['id']}", {**save, "body_text": "late"}, token=agent
    )
    assert code == 409 and body["error"]["field"] == "fence"
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {**save, "fence": taken["fence"], "body_text": "Reviewed and sent by the supervisor."},
        token=supervisor,
    )
    assert code == 200 and body["current"]["saved_by"]["name"] == "New Operator"
    code, one, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}?revision=3", token=agent)
    assert one["current"]["body_text"] == "Thank you. We will reply within a day."

    code, d, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}/diff?from=2&to=3", token=agent
    )
    assert code == 200
    [body_diff] = [f for f in d["fields"] if f["field"] == "body_text"]
    assert [(o["op"], o["text"]) for o in body_diff["ops"]] == [
        ("equal", "Thank you. We will reply "),
        ("delete", "soon"),
        ("insert", "within a day"),
        ("equal", "."),
    ]
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/diff?from=1", token=agent)
    assert {f["field"] for f in d["fields"]} == {"body_text", "cc"}

    code, previewed, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=agent
    )
    assert code == 200
    headers = {h["name"]: h["value"] for h in previewed["headers"]}
    assert headers["To"] == "Taro Yamada <taro@customer.example>"
    assert headers["In-Reply-To"].startswith("<") and "References" in headers
    assert previewed["text"].startswith("Reviewed and sent by the supervisor.\n\n--\nHelp")
    assert "> It has not come." in previewed["text"]

    code, listed, _ = await call(stack, "GET", f"/api/v1/tickets/{tid}/drafts", token=agent)
    assert [x["id"] for x in listed["items"]] == [draft["id"]]
    code, _, _ = await call(
        stack, "DELETE", f"/api/v1/drafts/{draft['id']}?fence={taken['fence']}", token=supervisor
    )
    assert code == 204

    async def not_editing() -> bool:
        await call(
            stack, "DELETE", f"/api/v1/tickets/{tid}/lock?fence={taken['fence']}", token=supervisor
        )
        _code, row, _ = await call(stack, "GET", f"/api/v1/tickets/{tid}", token=agent)
        return not row["editing"]

    await eventually(not_editing)
    code, listed, _ = await call(stack, "GET", f"/api/v1/tickets/{tid}/drafts", token=agent)
    assert listed["items"] == []


async def test_the_quote_header_is_in_the_language_asked_for_else_the_profiles(
    stack: Stack,
) -> None:
    tenant, admin, _, _ = await desk(stack)
    agent = await operator_token(stack, admin, tenant, roles=["agent"], language="ja")
    subject = f"Late parcel {uuid.uuid4().hex[:4]}"
    ticket = await mail_ticket(stack, tenant, agent, subject, body="It has not come.\n")
    tid = ticket["id"]
    fence = await lock(stack, agent, tid)

    async def draft(kind: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        body = {"kind": kind, "fence": fence, "include_quote": True, **extra}
        code, made, _ = await call(
            stack, "POST", f"/api/v1/tickets/{tid}/drafts", body, token=agent
        )
        return code, made

    code, refused = await draft("reply", language="fr")
    assert code == 400 and "language" in json.dumps(refused), refused
    # an English UI over a Japanese profile: the customer reads "… wrote:"
    code, english = await draft("reply", language="en")
    assert code == 201, english
    head = english["current"]["quote_text"].splitlines()[0]
    assert head.endswith("Taro Yamada <taro@customer.example> wrote:"), head
    # without one, the profile's language
    code, profile = await draft("reply_all")
    assert code == 201, profile
    head = profile["current"]["quote_text"].splitlines()[0]
    assert head.endswith("さんは書きました："), head
    code, japanese = await draft("forward", language="ja")
    assert code == 201 and "さんは書きました：" in japanese["current"]["quote_text"]


async def test_the_preview_names_what_the_customer_sees_apart_from_the_raw_source(
    stack: Stack,
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    subject = f"配送について {uuid.uuid4().hex[:4]}"
    ticket = await mail_ticket(stack, tenant, agent, subject, body="まだ届きません。\n")
    fence = await lock(stack, agent, ticket["id"])
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "reply", "fence": fence},
        token=agent,
    )
    assert code == 201, draft
    save = {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "サポート",
        "to": [CUSTOMER],
        "cc": ["Hanako <hanako@customer.example>"],
        "subject": f"Re: {subject}",
        "body_text": "お問い合わせありがとうございます。",
        "include_quote": False,
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 200, saved
    code, seen, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=agent)
    assert code == 200, seen
    assert seen["from"] == {"name": "サポート", "address": tenant.address}
    assert seen["to"] == [{"name": "Taro Yamada", "address": "taro@customer.example"}]
    assert seen["cc"] == [{"name": "Hanako", "address": "hanako@customer.example"}]
    assert seen["subject"] == f"Re: {subject}"  # decoded, where the header is encoded
    assert seen["date"].endswith("Z")
    assert seen["text"].startswith("お問い合わせありがとうございます。")
    # the raw source: the headers as they travel, and a Message-ID the fields leave out
    source = seen["source"]
    assert "Message-ID: <preview." in source and "=?utf-8?" in source
    assert f"Subject: Re: {subject}" not in source and seen["source_truncated"] is False
    parsed = email.message_from_string(source, policy=email.policy.default)
    assert parsed["Subject"] == f"Re: {subject}"
    assert parsed.get_body(("plain",)).get_content().startswith("お問い合わせ")


async def test_header_injection_through_any_field_is_refused_and_nothing_saved(
    stack: Stack,
) -> None:
    tenant, _, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Injection {uuid.uuid4().hex[:4]}")
    fence = await lock(stack, agent, ticket["id"])
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "reply", "fence": fence},
        token=agent,
    )
    good = {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "Help",
        "to": ["taro@customer.example"],
        "cc": [],
        "bcc": [],
        "subject": "Re: x",
        "body_text": "ok",
    }
    for field, value in (
        ("to", ["taro@customer.example\r\nBcc: all@victims.example"]),
        ("cc", ["Eve <eve@x.example>\nX-Evil: 1"]),
        ("bcc", ["a@b.example\u0000"]),
        ("subject", "Hello\r\nBcc: all@victims.example"),
        ("from_name", "Help\r\nReply-To: eve@x.example"),
        ("from_address", "eve@elsewhere.example"),
        ("to", ["not an address"]),
    ):
        code, body, _ = await call(
            stack, "PUT", f"/api/v1/drafts/{draft['id']}", {**good, field: value}, token=agent
        )
        assert code == 400 and body["error"]["field"] == field, (field, body)
    code, now, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=agent)
    assert now["current"]["revision"] == 1


async def test_checks_catch_what_must_not_go_out_and_forward_carries_attachments(
    stack: Stack,
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    msg = EmailMessage()
    subject = f"見積もり {uuid.uuid4().hex[:4]}"
    msg["From"], msg["To"], msg["Subject"] = CUSTOMER, tenant.address, subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@customer.example>"
    msg.set_content("見積書を添付します。ご確認ください。")
    msg.add_attachment(
        b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="見積書.pdf"
    )
    ticket = await mail_ticket(stack, tenant, agent, subject, msg=msg)
    fence = await lock(stack, agent, ticket["id"])
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "forward", "fence": fence},
        token=agent,
    )
    assert code == 201, draft
    cur = draft["current"]
    assert cur["subject"] == f"Fw: {subject}" and cur["to"] == []
    [carried] = cur["attachments"]
    assert carried["filename"] == "見積書.pdf" and carried["source"] == "original"
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}{carried['download_url']}",
            headers={"Authorization": f"Bearer {agent}"},
        ) as r:
            assert r.status == 200 and await r.read() == b"%PDF-1.4 quote"

    save = {
        "fence": fence,
        "from_address": tenant.address,
        "to": ["boss@partner.example"],
        "subject": "Fw: ○○の件",
        "body_text": "{{customer.name}} 様の件、添付のとおりです。",
        "attachment_ids": [],
    }
    code, _, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 200
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=agent)
    assert found["blocked"] is True
    assert {(f["code"], f["severity"]) for f in found["findings"]} == {
        ("attachment_forgotten", "warning"),
        ("error_keyword", "blocking"),
        ("unresolved_word", "blocking"),
        ("recipient_not_participant", "warning"),
    }

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/drafts/{draft['id']}/attachments"
            f"?filename=図.png&inline=true&fence={fence}",
            data=b"\x89PNG\r\n\x1a\n",
            headers={"Authorization": f"Bearer {agent}", "Content-Type": "image/png"},
        ) as r:
            assert r.status == 201
            image = await r.json()
    assert image["inline"] and image["content_id"]
    code, _, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {
            **save,
            "subject": "Fw: 見積書",
            "body_text": "見積書を添付します。",
            "body_html": f"<p>見積書です</p><img src='cid:{image['content_id']}'>"
            "<script>alert(1)</script>",
            "attachment_ids": [carried["id"], image["id"]],
            "to": ["taro@customer.example"],
        },
        token=agent,
    )
    assert code == 200
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=agent)
    assert found == {"blocked": False, "findings": []}
    code, previewed, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=agent
    )
    assert (
        "<script" not in (previewed["html"] or "")
        and f"cid:{image['content_id']}" in previewed["html"]
    )
    assert [a["filename"] for a in previewed["attachments"]] == ["見積書.pdf", "図.png"]
    assert previewed["size_bytes"] > 0

    # a stale fence is refused for uploads too
    await call(stack, "POST", f"/api/v1/tickets/{ticket['id']}/lock/takeover", token=admin)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/drafts/{draft['id']}/attachments?filename=a.txt&fence={fence}",
            data=b"x",
            headers={"Authorization": f"Bearer {agent}", "Content-Type": "text/plain"},
        ) as r:
            assert r.status == 409


async def test_a_new_mail_from_an_inbox_and_the_check_words_of_the_tenant(stack: Stack) -> None:
    tenant, admin, agent, _ = await desk(stack)
    code, draft, _ = await call(
        stack, "POST", "/api/v1/drafts", {"inbox_id": tenant.inbox_id}, token=agent
    )
    assert code == 201 and draft["ticket_id"] is None and draft["kind"] == "new"
    assert draft["current"]["from_address"] == tenant.address
    code, settings, _ = await call(stack, "GET", "/api/v1/compose-settings", token=agent)
    assert "添付" in settings["attachment_words"] and "○○" in settings["error_keywords"]
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/compose-settings",
        {"attachment_words": ["同封"], "error_keywords": ["TBD"]},
        token=admin,
    )
    assert code == 200
    save = {
        "from_address": tenant.address,
        "to": ["someone@partner.example"],
        "subject": "Price",
        "body_text": "Price: TBD. 資料を同封します。",
    }
    code, _, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 200
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=agent)
    assert {f["code"] for f in found["findings"]} == {"error_keyword", "attachment_forgotten"}
    other = await operator_token(stack, admin, tenant, roles=["agent"])
    code, _body, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=other)
    assert code == 403  # only its author writes a draft without a ticket
    # the raw mail a draft becomes parses back
    code, previewed, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=agent
    )
    headers = {h["name"]: h["value"] for h in previewed["headers"]}
    assert headers["Subject"] == "Price" and "In-Reply-To" not in headers
    parsed = email.message_from_string(
        "".join(f"{h['name']}: {h['value']}\r\n" for h in previewed["headers"]) + "\r\n",
        policy=email.policy.default,
    )
    assert parsed["To"].addresses[0].addr_spec == "someone@partner.example"


async def test_an_agent_who_may_not_see_addresses_replies_to_a_masked_customer(
    stack: Stack,
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    # may send, may not see customers' addresses (a trainee may not reply at all, issue 16)
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/roles/masked-agent",
        {"description": "sends, addresses masked", "permissions": ["send_without_approval"]},
        token=admin,
    )
    assert code in (200, 201)
    trainee = await operator_token(stack, admin, tenant, roles=["masked-agent"])
    ticket = await mail_ticket(stack, tenant, agent, f"Masked {uuid.uuid4().hex[:4]}")
    fence = await lock(stack, trainee, ticket["id"])
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "reply", "fence": fence},
        token=trainee,
    )
    assert code == 201
    shown = draft["current"]["to"]
    assert shown == ["Taro Yamada <t***@c***.example>"]
    save = {
        "fence": fence,
        "from_address": tenant.address,
        "to": shown,
        "subject": "Re: x",
        "body_text": "Thank you.",
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=trainee)
    assert code == 200 and saved["current"]["to"] == shown
    # the preview's fields are masked; its raw source (base64 parts) is not given at all
    code, seen, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=trainee)
    assert code == 200 and seen["to"] == [{"name": "Taro Yamada", "address": "t***@c***.example"}]
    assert seen["source"] is None and "taro@customer.example" not in json.dumps(seen)
    code, seen, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=agent)
    assert seen["current"]["to"] == ["Taro Yamada <taro@customer.example>"]
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {**save, "to": ["Someone <s***@o***.example>"]},
        token=trainee,
    )
    assert code == 400 and "masked" in body["error"]["message"]
